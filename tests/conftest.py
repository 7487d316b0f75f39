"""Every test runs on SQLite and on the real PostgreSQL, each starting from empty tables.

PostgreSQL comes from TEST_DATABASE_URL (default: the local server's `ticketdesk_test`
database, created when missing; one database per worker under pytest-xdist). The suite
refuses a database that holds tables it did not create (see databases.py). When the server
cannot be reached the PostgreSQL tests fail; they are never skipped.
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, insert, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from databases import postgres_url, take_database
from throwaway_postgres import ThrowawayPostgres
from ticketdesk import migrate
from ticketdesk.app import create_app
from ticketdesk.auth.security import PASSWORD_HASHER, create_token
from ticketdesk.db import Db, Statement, open_database
from ticketdesk.models import metadata, users
from ticketdesk.settings import Settings

pytest_plugins = ["receivers"]  # the real SMTP server and webhook receiver, as fixtures

JWT_KEY = "k" * 48
STAFF_TOKEN = "the-staff-token-of-the-tests"
PASSWORD = "correct horse battery"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        choices=["all", "sqlite", "postgresql"],
        default="all",
        help="database backend(s) to run the tests on (default: all)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        choice = metafunc.config.getoption("--backend")
        backends = ["sqlite", "postgresql"] if choice == "all" else [choice]
        if metafunc.definition.get_closest_marker("postgresql_only"):
            # What only a server can do (several processes, notifications): not run, not
            # skipped, on SQLite.
            backends = [b for b in backends if b == "postgresql"]
        metafunc.parametrize("backend", backends, scope="session")


@pytest.fixture(scope="session")
def database_url(
    backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> URL:
    """A freshly migrated database for the backend."""
    if backend == "sqlite":
        url = make_url(f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}")
    else:
        url = postgres_url()
        try:
            asyncio.run(take_database(url))  # fails loudly when PostgreSQL is down
        except pytest.UsageError as refusal:
            # The run stops here (every worker's, under xdist), rather than one error a test.
            request.session.shouldstop = str(refusal)
            raise
    migrate.upgrade(url)
    return url


def make_settings(database_url: URL, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url.render_as_string(hide_password=False),
        "jwt_key": JWT_KEY,
        "staff_token": STAFF_TOKEN,
        "jwt_key_file": tmp_path / "unused.jwt-key",
        "data_dir": tmp_path / "data",
        # The delivery engine's tests start workers of their own, when they want them.
        "jobs_in_server": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def empty_tables(engine: AsyncEngine) -> None:
    names = [table.name for table in metadata.sorted_tables]
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
        else:
            for name in reversed(names):
                await conn.execute(text(f"DELETE FROM {name}"))


@pytest.fixture
def settings(database_url: URL, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path)


@asynccontextmanager
async def own_engine(url: URL) -> AsyncIterator[AsyncEngine]:
    """The tests' own SQLAlchemy engine on the database: for setting up and looking at rows."""
    # SQLite: the tests' own statements wait up to 30 s for the write lock (not the driver's
    # 5 s), since a delivery attempt of the previous test's app may still be recording.
    options = {"connect_args": {"timeout": 30}} if url.get_backend_name() == "sqlite" else {}
    engine = create_async_engine(url, **options)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The tests' engine on the backend's database, its tables emptied."""
    async with own_engine(settings.database) as result:
        for attempt in range(3):
            try:
                await empty_tables(result)
                break
            except OperationalError as exc:
                # SQLite, rarely under xdist: a connection an earlier test's app left behind
                # still holds the write lock; collected, it lets go (see the note in
                # own_engine). Anything else, or a third time, is the test's error.
                if "database is locked" not in str(exc) or attempt == 2:
                    raise
                gc.collect()
                await asyncio.sleep(1)
        yield result


@pytest.fixture
async def app(settings: Settings, engine: AsyncEngine) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@asynccontextmanager
async def client_with(
    database_url: URL, tmp_path: Path, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a second app on the same database, built with other settings."""
    other = create_app(make_settings(database_url, tmp_path, **overrides))
    async with other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=other)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


@pytest.fixture
async def unsafe_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client that gets the 500 of an unhandled error instead of the error itself."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture(scope="session")
def password_hash() -> str:
    """One real argon2id hash of PASSWORD, shared so fixtures need not hash again."""
    return PASSWORD_HASHER.hash(PASSWORD)


@dataclass
class Account:
    id: int
    email: str
    token: str
    password: str = PASSWORD
    headers: dict[str, str] = field(default_factory=dict)


MakeUser = Callable[..., Awaitable[Account]]


async def add_account(
    engine: AsyncEngine,
    email: str,
    *,
    role: str = "customer",
    username: str = "someone",
    password_hash: str = "!",  # noqa: S107 - no hash matches it: no one logs in with it
    key: bytes = JWT_KEY.encode(),
    lifetime_seconds: int = 600,
) -> Account:
    """Insert an account directly and hand back a valid token for it (signed with JWT_KEY)."""
    async with engine.begin() as conn:
        user_id = (
            await conn.execute(
                insert(users)
                .values(
                    email=email,
                    username=username,
                    password_hash=password_hash,
                    is_staff=role in ("staff", "superuser"),
                    is_superuser=role == "superuser",
                )
                .returning(users.c.id)
            )
        ).scalar_one()
    token, _ = create_token(user_id=user_id, version=0, key=key, lifetime_seconds=lifetime_seconds)
    return Account(user_id, email, token, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def make_user(app: FastAPI, engine: AsyncEngine, password_hash: str) -> MakeUser:
    """Insert an account directly and hand back a valid token for it."""
    counter = 0

    async def make(
        role: str = "customer", *, email: str | None = None, username: str = "someone"
    ) -> Account:
        nonlocal counter
        counter += 1
        return await add_account(
            engine,
            email or f"{role}{counter}@example.com",
            role=role,
            username=username,
            password_hash=password_hash,
            key=app.state.signing_key,
            lifetime_seconds=app.state.settings.token_lifetime_seconds,
        )

    return make


@pytest.fixture
async def customer(make_user: MakeUser) -> Account:
    return await make_user("customer")


@pytest.fixture
async def other_customer(make_user: MakeUser) -> Account:
    return await make_user("customer")


@pytest.fixture
async def staff(make_user: MakeUser) -> Account:
    return await make_user("staff")


@pytest.fixture
async def superuser(make_user: MakeUser) -> Account:
    return await make_user("superuser")


async def open_ticket(
    client: httpx.AsyncClient, account: Account, topic: str = "printer", text: str = "it jams"
) -> int:
    response = await client.post(
        "/tickets", json={"topic": topic, "text": text}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    ticket_id: int = response.json()["id"]
    return ticket_id


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, f"the server for {url} exited"
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{url} did not start"
        time.sleep(0.2)


@contextmanager
def running_servers(
    count: int, database_url: URL, tmp_path: Path, **env: str
) -> Iterator[list[str]]:
    """`count` separate `ticketdesk serve` processes on the database, as a deployment runs them."""
    environment = {
        **os.environ,
        "DATABASE_URL": database_url.render_as_string(hide_password=False),
        "JWT_KEY": JWT_KEY,
        "STAFF_TOKEN": STAFF_TOKEN,
        "LOG_LEVEL": "warning",
        **env,
    }
    ports = [_free_port() for _ in range(count)]
    command = [sys.executable, "-m", "ticketdesk", "serve", "--workers", "1", "--no-migrate"]
    processes = [
        subprocess.Popen([*command, "--port", str(port)], env=environment, cwd=tmp_path)
        for port in ports
    ]
    try:
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for url, process in zip(urls, processes, strict=True):
            _wait_until_up(url, process)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


@pytest.fixture(scope="session")
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    """A migrated PostgreSQL server of the tests' own, which tests may stop and start."""
    server = ThrowawayPostgres()
    try:
        server.init()
        migrate.upgrade(server.url)
        yield server
    finally:
        server.destroy()


@pytest.fixture
async def own_postgres(throwaway_postgres: ThrowawayPostgres) -> ThrowawayPostgres:
    """The throwaway server, running, with empty tables."""
    if not throwaway_postgres.running():
        throwaway_postgres.start()
    engine = create_async_engine(throwaway_postgres.url)
    try:
        await empty_tables(engine)
    finally:
        await engine.dispose()
    return throwaway_postgres


# The service tests: services called on a `Db` handle of their own, no app and no HTTP.

SERVICE_FIXTURE = "db"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A service test (one that takes `db`) runs on SQLite alone, unless it is marked
    `both_backends` (it goes through SQL written twice, once per backend) or
    `postgresql_only`.

    Only what differs between the backends is worth the second run, and SQLite's is the
    faster one. The HTTP tests keep running on every backend `--backend` names; with
    `--backend postgresql` the service tests run on PostgreSQL. The copies left out are
    never collected, as `postgresql_only` tests are never made for SQLite.
    """
    if config.getoption("--backend") != "all":
        return
    items[:] = [item for item in items if not _second_backend_of_a_service_test(item)]


def _second_backend_of_a_service_test(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return (
        callspec is not None
        and callspec.params.get("backend") == "postgresql"
        and SERVICE_FIXTURE in getattr(item, "fixturenames", ())
        and item.get_closest_marker("both_backends") is None
        and item.get_closest_marker("postgresql_only") is None
    )


_EMPTY = [Statement(delete(table)) for table in reversed(metadata.sorted_tables)]
"""Children before their parents, as the foreign keys want."""


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Db]:
    """A handle inside a transaction on the backend's migrated database, its tables emptied
    in that transaction; everything the test wrote is rolled back when it ends.

    The rows earlier tests left (the HTTP tests commit theirs) are deleted in the same
    transaction, so the test sees empty tables and leaves the database as it found it."""
    database = await open_database(settings)
    handle = database.handle()
    try:
        await handle.begin()
        for statement in _EMPTY:
            await handle.execute(statement)
        yield handle
    finally:
        await handle.finish(commit=False)
        await database.close(5)
