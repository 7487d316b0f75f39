"""PostgreSQL away, slow, or back: quick 503s, readiness, recovery, and no acknowledged write lost.

These run on a PostgreSQL server of their own (`throwaway_postgres`), which they stop and
start, or on addresses where no database answers. The shared test server is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url

from conftest import JWT_KEY, add_account, make_settings, own_engine
from throwaway_postgres import ThrowawayPostgres, free_port
from ticketdesk.app import create_app
from ticketdesk.auth.security import create_token
from ticketdesk.db import Db, Statement, open_database
from ticketdesk.jobs import repository as jobs
from ticketdesk.jobs import worker as jobs_worker
from ticketdesk.jobs.repository import ClaimedJob, NewJob

UNAVAILABLE = {"detail": "the database is unavailable; retry shortly"}
TOO_SLOW = {"detail": "the database took too long to answer; retry shortly"}
NOT_READY = {"status": "database unreachable"}
NEW_TICKET = {"topic": "printer", "text": "it jams"}
NEW_USER = {"email": "new@example.com", "username": "new", "password": "long enough password"}
PASSWORD = "pa55-w0rd-never-logged"
UNUSED_PORTS = range(8700, 8750)


@asynccontextmanager
async def running(url: URL, tmp_path: Path, **overrides: Any) -> AsyncIterator[FastAPI]:
    app = create_app(make_settings(url, tmp_path, **overrides))
    async with app.router.lifespan_context(app), own_engine(url) as engine:
        app.state.tests_engine = engine  # the tests' own, for adding accounts
        yield app


def client_of(app: FastAPI) -> httpx.AsyncClient:
    # Unhandled errors are raised here, not answered 500: a test sees any of them.
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def assert_unavailable(response: httpx.Response, body: dict[str, str] = UNAVAILABLE) -> None:
    assert response.status_code == 503, response.text
    assert response.json() == body
    assert int(response.headers["retry-after"]) >= 1


@pytest.fixture
def closed_port() -> int:
    """A port where nothing listens: connecting is refused at once."""
    return free_port(UNUSED_PORTS)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word, like a hung server."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", free_port(UNUSED_PORTS)))
        listener.listen(64)  # the kernel completes the handshakes; nobody reads
        yield listener.getsockname()[1]


def unreachable(port: int) -> URL:
    return make_url(f"postgresql+asyncpg://ticketdesk:{PASSWORD}@127.0.0.1:{port}/ticketdesk")


async def test_requests_fail_fast_with_503_while_the_database_refuses_connections(
    closed_port: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ticketdesk")
    token = _signed_token()
    async with running(unreachable(closed_port), tmp_path) as app, client_of(app) as client:
        started = time.monotonic()
        responses = [
            await client.get("/tickets", headers=token),  # the readers' pool
            await client.get("/tickets/1", headers=token),
            await client.post("/tickets", json=NEW_TICKET, headers=token),
        ]
        elapsed = time.monotonic() - started
        # The writers' pool; the password is hashed first, which takes its time.
        responses.append(await client.post("/users", json=NEW_USER))
        ready = await client.get("/readyz")
        healthy = await client.get("/healthz")
    for response in responses:
        assert_unavailable(response)
    assert elapsed < 1
    assert (ready.status_code, ready.json()) == (503, NOT_READY)
    assert (healthy.status_code, healthy.json()) == (200, {"status": "ok"})
    failures = [r.getMessage() for r in caplog.records if "database is unavailable" in r.message]
    assert len(failures) == len(responses)  # one line each
    assert all(f"127.0.0.1', {closed_port}" in line for line in failures)
    assert PASSWORD not in caplog.text
    assert not any(r.exc_info for r in caplog.records)  # no stack traces


async def test_a_database_that_never_answers_is_503_within_the_connect_timeout(
    silent_port: int, tmp_path: Path
) -> None:
    url = unreachable(silent_port)
    async with running(url, tmp_path, db_connect_timeout=0.5) as app, client_of(app) as client:
        for request in (client.get("/tickets", headers=_signed_token()), client.get("/readyz")):
            started = time.monotonic()
            response = await request
            assert response.status_code == 503
            assert 0.4 < time.monotonic() - started < 2.5  # waited for the timeout, no longer
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await app.state.database.acquire()  # the pool itself
        assert 0.4 < time.monotonic() - started < 2.5
        assert_unavailable(await client.post("/users", json=NEW_USER))


def _signed_token() -> dict[str, str]:
    """A token that passes the signature check: its request goes on to the database."""
    token, _ = create_token(user_id=1, version=0, key=JWT_KEY.encode(), lifetime_seconds=600)
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Outcome:
    kind: str
    started: float
    finished: float
    response: httpx.Response

    @property
    def status(self) -> int:
        return self.response.status_code


@pytest.mark.slow
async def test_an_outage_under_load_is_503_quickly_then_recovers_and_no_201_is_lost(
    own_postgres: ThrowawayPostgres, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ticketdesk")
    pg = own_postgres
    outcomes: list[Outcome] = []
    done = asyncio.Event()
    back = float("inf")  # when the database is accepting connections again
    recovered = {"write": asyncio.Event(), "read": asyncio.Event()}
    # Without rate limits: the load writes faster than one user's budget allows.
    settings = {"db_connect_timeout": 2, "rate_limits": False}
    async with running(pg.url, tmp_path, **settings) as app, client_of(app) as client:
        account = await add_account(app.state.tests_engine, "load@example.com")

        async def load(kind: str) -> None:
            path = "/tickets" if kind == "write" else "/tickets?limit=5"
            while not done.is_set():
                started = time.monotonic()
                if kind == "write":
                    response = await client.post(path, json=NEW_TICKET, headers=account.headers)
                else:
                    response = await client.get(path, headers=account.headers)
                outcomes.append(Outcome(kind, started, time.monotonic(), response))
                if started >= back and response.is_success:
                    recovered[kind].set()
                await asyncio.sleep(0.02)

        clients = [asyncio.create_task(load(kind)) for kind in ("write", "read") * 4]
        await asyncio.sleep(1)
        await asyncio.to_thread(pg.stop)
        stopped = time.monotonic()
        await asyncio.sleep(1.5)
        ready_while_down = await client.get("/readyz")
        starting = time.monotonic()
        await asyncio.to_thread(pg.start)
        back = time.monotonic()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):  # back within 10 s, on both pools, without a restart
                await asyncio.gather(*(event.wait() for event in recovered.values()))
        done.set()
        await asyncio.gather(*clients)
        ready_after = await client.get("/readyz")

    assert {o.status for o in outcomes} <= {200, 201, 503}
    for outcome in outcomes:
        if outcome.status == 503:
            assert_unavailable(outcome.response)
    assert max(o.finished - o.started for o in outcomes) < 3  # none hung
    down = [o for o in outcomes if o.started >= stopped and o.finished <= starting]
    assert {o.kind for o in down} == {"read", "write"}
    assert {o.status for o in down} == {503}
    assert (ready_while_down.status_code, ready_while_down.json()) == (503, NOT_READY)
    assert all(event.is_set() for event in recovered.values())
    assert ready_after.status_code == 200
    # Every ticket the clients were told was created is there.
    acknowledged = {o.response.json()["id"] for o in outcomes if o.status == 201}
    assert len(acknowledged) > 10
    assert acknowledged <= await _ticket_ids(pg.url)
    # One warning line per 503, and no stack trace.
    warned = [r for r in caplog.records if "the database is unavailable on" in r.message]
    assert len(warned) == sum(o.status == 503 for o in outcomes)
    assert not any(r.exc_info for r in caplog.records)


async def _ticket_ids(url: URL) -> set[int]:
    conn = await asyncpg.connect(_dsn(url))
    try:
        return {row["id"] for row in await conn.fetch("SELECT id FROM tickets")}
    finally:
        await conn.close()


def _dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.mark.slow
async def test_connections_a_restart_closed_are_replaced_before_anyone_uses_them(
    own_postgres: ThrowawayPostgres, tmp_path: Path
) -> None:
    async with running(own_postgres.url, tmp_path) as app, client_of(app) as client:
        account = await add_account(app.state.tests_engine, "restart@example.com")
        assert (await client.post("/tickets", json=NEW_TICKET, headers=account.headers)).is_success
        assert (await client.get("/tickets", headers=account.headers)).is_success
        await asyncio.to_thread(own_postgres.stop)
        await asyncio.to_thread(own_postgres.start)
        # Each pool holds a connection the server closed; neither is handed to a request.
        assert (await client.post("/tickets", json=NEW_TICKET, headers=account.headers)).is_success
        assert (await client.get("/tickets", headers=account.headers)).is_success
        # asyncpg notices a closed connection on its own: no round trip is spent on a ping.


DIE_AT_COMMIT = """
CREATE FUNCTION die_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_terminate_backend(pg_backend_pid());
    PERFORM pg_sleep(5);
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER die_at_commit AFTER INSERT ON tickets
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.topic = 'die at commit') EXECUTE FUNCTION die_at_commit();
"""


@pytest.mark.slow
async def test_a_write_whose_commit_fails_is_never_acknowledged(
    own_postgres: ThrowawayPostgres, tmp_path: Path
) -> None:
    admin = await asyncpg.connect(_dsn(own_postgres.url))
    await admin.execute(DIE_AT_COMMIT)
    try:
        async with running(own_postgres.url, tmp_path) as app, client_of(app) as client:
            account = await add_account(app.state.tests_engine, "commit@example.com")
            doomed = {"topic": "die at commit", "text": "the connection drops at COMMIT"}
            response = await client.post("/tickets", json=doomed, headers=account.headers)
            assert_unavailable(response)
            response = await client.post("/tickets", json=NEW_TICKET, headers=account.headers)
            assert response.status_code == 201
        topics = await admin.fetch("SELECT topic FROM tickets")
        count = await admin.fetchval("SELECT tickets_count FROM users WHERE id = $1", account.id)
        assert ([row["topic"] for row in topics], count) == (["printer"], 1)
    finally:
        await admin.execute("DROP TRIGGER die_at_commit ON tickets; DROP FUNCTION die_at_commit()")
        await admin.close()


@pytest.mark.slow
async def test_every_connection_of_both_pools_has_the_statement_timeout(
    own_postgres: ThrowawayPostgres, tmp_path: Path
) -> None:
    show = Statement(text("SHOW statement_timeout"), writes=False)
    for seconds, expected in ((0.25, "250ms"), (10, "10s"), (0, "0")):
        async with running(own_postgres.url, tmp_path, db_statement_timeout=seconds) as app:
            async with app.state.database.session() as db:
                for_reads = await db.scalar(show)
            async with app.state.database.session() as db:
                await db.begin()
                for_writes = await db.scalar(show)
        assert (for_writes, for_reads) == (expected, expected)


@asynccontextmanager
async def locked(url: URL, table: str) -> AsyncIterator[None]:
    """Another session holds `table` locked: statements on it wait until it lets go."""
    conn = await asyncpg.connect(_dsn(url))
    try:
        async with conn.transaction():
            await conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            yield
    finally:
        await conn.close()


@pytest.mark.slow
async def test_a_statement_past_the_timeout_is_503_and_its_transaction_rolled_back(
    own_postgres: ThrowawayPostgres, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ticketdesk")
    url = own_postgres.url
    async with running(url, tmp_path, db_statement_timeout=0.3) as app, client_of(app) as client:
        account = await add_account(app.state.tests_engine, "slow@example.com")
        first = (await client.post("/tickets", json=NEW_TICKET, headers=account.headers)).json()
        started = time.monotonic()
        # The ticket's row is written, then its first message waits on the lock.
        async with locked(url, "messages"):
            slow_write = await client.post("/tickets", json=NEW_TICKET, headers=account.headers)
        async with locked(url, "tickets"):
            slow_read = await client.get(f"/tickets/{first['id']}", headers=account.headers)
        elapsed = time.monotonic() - started
        # The same pools serve again: each cancelled statement's connection came back clean.
        assert (await client.post("/tickets", json=NEW_TICKET, headers=account.headers)).is_success
        assert (await client.get(f"/tickets/{first['id']}", headers=account.headers)).is_success
    assert_unavailable(slow_write, TOO_SLOW)
    assert_unavailable(slow_read, TOO_SLOW)
    assert elapsed < 3
    assert len(await _ticket_ids(url)) == 2  # the cancelled ticket was rolled back
    lines = [r.message for r in caplog.records if "took too long" in r.message]
    assert lines == [
        "the database took too long to answer on POST /tickets: "
        "QueryCanceledError: canceling statement due to statement timeout",
        f"the database took too long to answer on GET /tickets/{first['id']}: "
        "QueryCanceledError: canceling statement due to statement timeout",
    ]


@pytest.mark.slow
async def test_the_lifespan_closes_its_connections_on_shutdown(
    own_postgres: ThrowawayPostgres, tmp_path: Path
) -> None:
    count = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE application_name IN ('ticketdesk', 'ticketdesk-listen')"
    )
    admin = await asyncpg.connect(_dsn(own_postgres.url))
    try:
        async with running(own_postgres.url, tmp_path) as app, client_of(app) as client:
            account = await add_account(app.state.tests_engine, "close@example.com")
            assert (
                await client.post("/tickets", json=NEW_TICKET, headers=account.headers)
            ).is_success
            assert (await client.get("/tickets", headers=account.headers)).is_success
            while not app.state.token_checks.listening:  # noqa: ASYNC110 - its own connection
                await asyncio.sleep(0.05)
            assert await admin.fetchval(count) == 2  # the pool's one, and the listener's
        # Still in this process: only the pools' own closing can have ended them.
        async with asyncio.timeout(5):
            while await admin.fetchval(count):  # noqa: ASYNC110 - polling the server
                await asyncio.sleep(0.05)
    finally:
        await admin.close()


@pytest.mark.slow
async def test_a_hung_database_is_503_within_the_statement_timeout_and_readyz_within_2s(
    own_postgres: ThrowawayPostgres, tmp_path: Path
) -> None:
    """Stopped, not refusing: requests that hold a connection answer within
    DB_STATEMENT_TIMEOUT and a second, /readyz within its 2 s."""
    async with running(own_postgres.url, tmp_path, db_statement_timeout=1.0) as app:
        account = await add_account(app.state.tests_engine, "hung@example.com")
        async with client_of(app) as client:
            warm = await client.get("/tickets", headers=account.headers)
            assert warm.status_code == 200  # a connection waits in the pool
            own_postgres.freeze()
            try:
                async with asyncio.timeout(20):  # without a bound, this waits for the thaw
                    started = time.monotonic()
                    held = await client.get("/tickets", headers=account.headers)
                    took = time.monotonic() - started
                    started = time.monotonic()
                    ready = await client.get("/readyz")
                    ready_took = time.monotonic() - started
            finally:
                own_postgres.thaw()
    assert_unavailable(held)
    assert took < 1.0 + 1.0 + 2.0  # the statement timeout, the grace, and slack
    assert ready.status_code == 503 and ready.json() == NOT_READY
    assert ready_took < 2.5


@pytest.mark.slow
async def test_an_open_event_stream_ends_cleanly_when_the_database_goes_away(
    own_postgres: ThrowawayPostgres, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(own_postgres.url, tmp_path) as app, client_of(app) as client:
        agent = await add_account(app.state.tests_engine, "agent@example.com", role="staff")
        # The test transport hands the answer over once it has ended; an error is raised here.
        answer = asyncio.create_task(client.get("/events/stream", headers=agent.headers))
        await asyncio.sleep(1)
        assert not answer.done()
        await asyncio.to_thread(own_postgres.stop)
        try:
            async with asyncio.timeout(15):
                response = await answer
        finally:
            await asyncio.to_thread(own_postgres.start)
    assert response.status_code == 200
    assert response.text.startswith("retry: 2000")
    assert "an event stream ended: the database is unavailable" in caplog.text


@pytest.mark.slow
async def test_a_reset_asked_for_while_the_database_restarts_is_made_once_it_is_back(
    own_postgres: ThrowawayPostgres, tmp_path: Path
) -> None:
    async with running(own_postgres.url, tmp_path, smtp_host="127.0.0.1") as app:
        engine = app.state.tests_engine
        await add_account(engine, "forgetful@example.com")
        async with client_of(app) as client:
            await asyncio.to_thread(own_postgres.stop)
            # The answer comes at once; the test transport hands it over once the link is made.
            asked = asyncio.create_task(
                client.post("/password-reset", json={"email": "forgetful@example.com"})
            )
            await asyncio.sleep(2)
            await asyncio.to_thread(own_postgres.start)
            async with asyncio.timeout(30):
                response = await asked
        assert response.status_code == 202
    async with own_engine(own_postgres.url) as fresh, fresh.connect() as conn:
        links = await conn.scalar(text("SELECT count(*) FROM password_resets"))
        mails = await conn.scalar(text("SELECT count(*) FROM jobs WHERE kind = 'mail'"))
    assert (links, mails) == (1, 1)


@pytest.mark.slow
async def test_an_outcome_the_database_restart_kept_out_is_recorded_once_it_is_back(
    own_postgres: ThrowawayPostgres, tmp_path: Path
) -> None:
    # A mail sent whose outcome is lost is sent again when its lease ends: a duplicate.
    settings = make_settings(own_postgres.url, tmp_path, job_lease_seconds=30)
    database = await open_database(settings)
    ran: list[str] = []
    restarted: list[asyncio.Task[None]] = []

    async def restart_later() -> None:
        await asyncio.sleep(2)
        await asyncio.to_thread(own_postgres.start)

    async def send(job: ClaimedJob) -> jobs_worker.Outcome:
        ran.append(job.key)
        await asyncio.to_thread(own_postgres.stop)  # after the work, before its outcome
        restarted.append(asyncio.create_task(restart_later()))
        return jobs_worker.Outcome(250)

    async def claim(db: Db, now: datetime, lease_end: datetime, limit: int) -> list[ClaimedJob]:
        return await jobs.claim(db, kind="mail", now=now, lease_end=lease_end, limit=limit)

    async def nothing_to_dispatch(db: Db) -> int:
        return 0

    try:
        async with database.session() as db:
            await jobs.queue(db, [NewJob("once", "mail", "{}")], now=datetime.now(UTC))
        kinds = {"mail": jobs_worker.Kind(send, claim, slots=1, deadline=5)}
        worker = jobs_worker.Worker(database, settings, kinds, nothing_to_dispatch)
        await worker.step()
        async with asyncio.timeout(30):
            await worker.drain()
            await asyncio.gather(*restarted)
    finally:
        await database.close(5)
    async with own_engine(own_postgres.url) as fresh, fresh.connect() as conn:
        row = (await conn.execute(text("SELECT status, attempts FROM jobs"))).one()
    assert ran == ["once"]
    assert tuple(row) == ("done", 1)
