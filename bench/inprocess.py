"""CPU cost of one `GET /tickets/{id}` inside the process: the ASGI app called directly.

No server, no sockets: a relative measure, for comparing one version of the request path
with another on the same machine. SQLite in a temporary directory unless `--database-url`
names a PostgreSQL database (its schema is migrated, and a user and a ticket are added).
`--path /healthz` measures the framework and middleware alone, without the database.

    .venv/bin/python bench/inprocess.py [--requests 3000] [--rounds 7] [--path /healthz]

Logging is configured as `ticketdesk serve` configures it, writing to /dev/null.
LOG_LEVEL is warning, as in the load runs of `make bench` (no request lines).
"""

from __future__ import annotations

import argparse
import asyncio
import logging.config
import statistics
import tempfile
import time
import uuid
from typing import Any

from sqlalchemy import URL, insert, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from ticketdesk import migrate
from ticketdesk.app import create_app
from ticketdesk.auth.security import create_token
from ticketdesk.models import tickets, users
from ticketdesk.settings import Settings


def _configure_logging(devnull: Any, level: str) -> None:
    try:
        from ticketdesk.logs import logging_config
    except ImportError:  # a version without JSON logs
        return
    logging.config.dictConfig(logging_config(level, stream=devnull))


async def _measure(
    url: URL,
    requests: int,
    rounds: int,
    path: str | None,
    ticket_count: int = 1,
    body: str | None = None,
    clients: int = 1,
) -> list[float]:
    requests -= requests % clients
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=url.render_as_string(hide_password=False),
        jwt_key="k" * 48,
        rate_limits=False,  # as in the load runs of `make bench`
    )
    app = create_app(settings)
    engine = create_async_engine(url)
    async with app.router.lifespan_context(app):
        async with engine.begin() as conn:
            user_id = (
                await conn.execute(
                    insert(users)
                    .values(
                        email=f"{uuid.uuid4().hex}@example.com", username="a", password_hash="x"
                    )
                    .returning(users.c.id)
                )
            ).scalar_one()
            ticket_id = (
                await conn.execute(
                    insert(tickets).values(author_id=user_id, topic="t").returning(tickets.c.id)
                )
            ).scalar_one()
            if ticket_count > 1:
                await conn.execute(
                    insert(tickets),
                    [{"author_id": user_id, "topic": f"t{n}"} for n in range(1, ticket_count)],
                )
        await engine.dispose()
        token, _ = create_token(
            user_id=user_id, version=0, key=app.state.signing_key, lifetime_seconds=3600
        )
        path, _, query = (path or f"/tickets/{ticket_id}").format(id=ticket_id).partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST" if body is not None else "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [
                (b"host", b"127.0.0.1:8089"),
                (b"user-agent", b"curl/8.0"),
                (b"accept", b"*/*"),
                (b"authorization", f"Bearer {token}".encode()),
                *([(b"content-type", b"application/json")] if body is not None else []),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8089),
        }
        statuses: list[int] = []

        content = (body or "").encode()

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": content, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        per_request: list[float] = []
        for round_number in range(rounds + 1):
            statuses.clear()
            start = time.process_time()

            async def one_client(count: int) -> None:
                for _ in range(count):
                    await app(dict(scope, state={}), receive, send)

            await asyncio.gather(*(one_client(requests // clients) for _ in range(clients)))
            elapsed = time.process_time() - start
            assert statuses == [201 if body is not None else 200] * requests, set(statuses)
            if round_number:  # the first round warms up
                per_request.append(elapsed / requests * 1e6)
        return per_request


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--path", help="the path to GET, `{id}` the ticket's (default: /tickets/{id})"
    )
    parser.add_argument(
        "--tickets", type=int, default=1, help="the user's tickets (default 1; 20 for a list)"
    )
    parser.add_argument(
        "--clients", type=int, default=1, help="requests in flight at once (default 1)"
    )
    parser.add_argument("--body", help="a JSON body to POST to the path instead of a GET")
    parser.add_argument("--database-url", help="a PostgreSQL database (default: SQLite)")
    parser.add_argument(
        "--log-level", default="warning", help="LOG_LEVEL (default: warning, as `make bench`)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory, open("/dev/null", "w") as devnull:
        url = make_url(args.database_url or f"sqlite+aiosqlite:///{directory}/bench.db")
        migrate.upgrade(url)
        _configure_logging(devnull, args.log_level)
        per_request = asyncio.run(
            _measure(
                url, args.requests, args.rounds, args.path, args.tickets, args.body, args.clients
            )
        )
    print(
        f"{'POST' if args.body else 'GET'} {args.path or '/tickets/{id}'}: "
        f"median {statistics.median(per_request):.1f} µs CPU, "
        f"min {min(per_request):.1f} µs, over {args.rounds} rounds of {args.requests}"
    )


if __name__ == "__main__":
    main()
