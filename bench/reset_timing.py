"""Does the time a password reset request takes tell whether the address has an account?

Starts `ticketdesk serve` (one process) on a PostgreSQL database of its own, with mail on
(so a known address does all its work; no job runner, so nothing is really sent) and rate
limits off, registers one account, then asks for resets for that account's address and for
an unknown one: the same number of each, in pairs whose order is drawn at random, one
request at a time on one kept-alive connection, after a warm-up. It prints the median, 90th
percentile and mean of both, and checks that the known address got a link per request (the
work was done, whether before or after the answer).

    .venv/bin/python bench/reset_timing.py
    .venv/bin/python bench/reset_timing.py --requests 400 --database td_reset
    .venv/bin/python bench/reset_timing.py --source /path/to/another/checkout/src

`--source` runs another version of the service (its `src` directory) with this venv.
The database (default `ticketdesk_reset_timing`) is created when missing and emptied
(its `public` schema dropped) at the start of every run. Every figure also goes to
`bench/results/reset-timing-<UTC timestamp>.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path

import asyncpg
import httpx
from common import BENCH_DIR, MAINTENANCE_DB, PG_HOST, PG_PORT, PG_USER, RESULTS_DIR, dsn, log
from server import Server, ServerConfig

KNOWN = "known@reset-timing.example"
UNKNOWN = "unknown@reset-timing.example"
PASSWORD = "reset-timing-password"
WARMUP = 20
"""Requests of each kind sent first and not counted (connections, caches, statements)."""
LINKS_WAIT_S = 30.0


@dataclass(frozen=True)
class Figures:
    requests: int
    median_ms: float
    p90_ms: float
    mean_ms: float


def figures(times_s: list[float]) -> Figures:
    ms = [t * 1000 for t in times_s]
    return Figures(
        requests=len(ms),
        median_ms=round(statistics.median(ms), 3),
        p90_ms=round(statistics.quantiles(ms, n=10)[8], 3),
        mean_ms=round(statistics.fmean(ms), 3),
    )


async def fresh_database(name: str) -> None:
    """The database exists, with an empty public schema (the server migrates it)."""
    admin = await asyncpg.connect(dsn(MAINTENANCE_DB))
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(dsn(name))
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()


async def links_of(database: str, email: str) -> int:
    conn = await asyncpg.connect(dsn(database))
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM password_resets JOIN users ON users.id = user_id "
            "WHERE users.email = $1",
            email,
        )
        return count
    finally:
        await conn.close()


def wait_for_links(database: str, expected: int) -> int:
    """How many links the known address has, once it has `expected` (or the wait is over):
    links made after the answer may still be on their way."""
    deadline = time.monotonic() + LINKS_WAIT_S
    while True:
        count = asyncio.run(links_of(database, KNOWN))
        if count >= expected or time.monotonic() > deadline:
            return count
        time.sleep(0.2)


def measure(base_url: str, pairs: int, seed: int) -> list[tuple[str, float]]:
    """Each request's address and seconds, in the order sent: `pairs` of each address,
    in a random order per pair."""
    order = random.Random(seed)
    sent: list[tuple[str, float]] = []
    answers: set[tuple[int, bytes]] = set()
    with httpx.Client(base_url=base_url, timeout=30) as client:

        def ask(email: str) -> float:
            start = time.perf_counter()
            response = client.post("/password-reset", json={"email": email})
            took = time.perf_counter() - start
            answers.add((response.status_code, response.content))
            return took

        for _ in range(WARMUP):
            ask(KNOWN)
            ask(UNKNOWN)
        for _ in range(pairs):
            pair = [KNOWN, UNKNOWN]
            order.shuffle(pair)
            sent.extend((email, ask(email)) for email in pair)
    if len(answers) != 1:
        raise RuntimeError(f"the answers differ: {answers}")
    return sent


def by_address(sent: list[tuple[str, float]]) -> dict[str, list[float]]:
    return {email: [took for to, took in sent if to == email] for email in (KNOWN, UNKNOWN)}


def by_previous_address(sent: list[tuple[str, float]]) -> dict[str, list[float]]:
    """The requests that came right after one for each address: work a known address left
    for after its answer would slow these down."""
    following: dict[str, list[float]] = {KNOWN: [], UNKNOWN: []}
    for (previous, _), (_, took) in pairwise(sent):
        following[previous].append(took)
    return following


def register(base_url: str) -> None:
    response = httpx.post(
        f"{base_url}/users",
        json={"email": KNOWN, "password": PASSWORD, "username": "known"},
        timeout=30,
    )
    response.raise_for_status()


def ticketdesk(env: dict[str, str], *arguments: str) -> str:
    """Run Python with the service's environment (and sources); what it printed."""
    done = subprocess.run(
        [sys.executable, *arguments],
        env={**os.environ, **env},
        cwd=BENCH_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def run(args: argparse.Namespace) -> dict[str, object]:
    asyncio.run(fresh_database(args.database))
    extra_env = {
        "DATABASE_URL": dsn(args.database),
        # Mail on, so that a known address makes its link and queues its mail; no job
        # runner, so that nothing is sent (and nothing else runs beside the requests).
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": "2",
        "JOBS_IN_SERVER": "false",
    }
    if args.source is not None:
        extra_env["PYTHONPATH"] = str(Path(args.source).resolve())
    served = ticketdesk(extra_env, "-c", "import ticketdesk; print(ticketdesk.__file__)")
    log(f"serving {served}")
    ticketdesk(extra_env, "-m", "ticketdesk", "migrate")
    config = ServerConfig(port=args.port, workers=1, extra_env=extra_env)
    with Server(config) as server:
        register(server.base_url)
        sent = measure(server.base_url, args.requests, args.seed)
        links = wait_for_links(args.database, WARMUP + args.requests)
    times, following = by_address(sent), by_previous_address(sent)
    known, unknown = figures(times[KNOWN]), figures(times[UNKNOWN])
    return {
        "source": served,
        "database": f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{args.database}",
        "seed": args.seed,
        "known": asdict(known),
        "unknown": asdict(unknown),
        "median_difference_ms": round(known.median_ms - unknown.median_ms, 3),
        "after_known": asdict(figures(following[KNOWN])),
        "after_unknown": asdict(figures(following[UNKNOWN])),
        "links_made_for_known": links,
        "links_expected": WARMUP + args.requests,
        "sent": [[email, round(took * 1000, 3)] for email, took in sent],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="per address (default 300)")
    parser.add_argument("--database", default="ticketdesk_reset_timing", help="emptied first")
    parser.add_argument("--source", help="the src directory of the version to run")
    parser.add_argument("--port", type=int, default=8211)
    parser.add_argument("--seed", type=int, default=1, help="of the order within each pair")
    args = parser.parse_args()
    if args.requests < 10:
        parser.error("--requests must be at least 10")
    result = run(args)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"reset-timing-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"{'requests':<14} {'count':>8} {'median ms':>10} {'p90 ms':>8} {'mean ms':>8}")
    for name in ("known", "unknown", "after_known", "after_unknown"):
        row = result[name]
        assert isinstance(row, dict)
        print(
            f"{name:<14} {row['requests']:>8} {row['median_ms']:>10.2f} "
            f"{row['p90_ms']:>8.2f} {row['mean_ms']:>8.2f}"
        )
    print(f"median difference (known - unknown): {result['median_difference_ms']:+.2f} ms")
    print(f"links made for the known address: {result['links_made_for_known']}")
    print(f"of {result['links_expected']} expected; every figure in {path}")
    if result["links_made_for_known"] != result["links_expected"]:
        sys.exit("the known address did not get a link per request")


if __name__ == "__main__":
    main()
