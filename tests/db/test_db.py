"""The request handle: one connection per request, given back before the response is sent."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message

from conftest import Account, open_ticket
from ticketdesk.db.database import Database, PostgresDatabase, SqliteDatabase


def _idle(database: Database) -> bool:
    """Every connection the pools opened is back in them."""
    if isinstance(database, PostgresDatabase):
        return bool(database.pool.get_idle_size() == database.pool.get_size())
    assert isinstance(database, SqliteDatabase)
    engines = (database.readers, database.writers)
    return sum(e.pool.checkedout() for e in engines) == 0  # type: ignore[attr-defined]


@pytest.fixture
def checkouts(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the connections requests take from the PostgreSQL pool."""
    taken: list[int] = []
    original = PostgresDatabase.acquire

    async def counting(self: PostgresDatabase) -> Any:
        taken.append(1)
        return await original(self)

    monkeypatch.setattr(PostgresDatabase, "acquire", counting)
    return taken


async def test_a_read_request_takes_one_connection_for_all_its_statements(
    app: FastAPI, client: httpx.AsyncClient, customer: Account, checkouts: list[int]
) -> None:
    ticket_id = await open_ticket(client, customer)
    checkouts.clear()
    # Two statements: the token check, then the ticket.
    response = await client.get(f"/tickets/{ticket_id}", headers=customer.headers)
    assert response.status_code == 200
    if isinstance(app.state.database, PostgresDatabase):
        assert len(checkouts) <= 1  # none at all when the token is remembered
    assert _idle(app.state.database)


async def test_a_write_request_checks_its_token_and_writes_on_one_connection(
    app: FastAPI, client: httpx.AsyncClient, customer: Account, checkouts: list[int]
) -> None:
    response = await client.post(
        "/tickets", json={"topic": "t", "text": "t"}, headers=customer.headers
    )
    assert response.status_code == 201
    if isinstance(app.state.database, PostgresDatabase):
        assert len(checkouts) == 1
    assert _idle(app.state.database)


async def test_the_connection_is_given_back_before_the_response_is_sent(
    app: FastAPI, client: httpx.AsyncClient, customer: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    path = f"/tickets/{ticket_id}"
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"cookie", f"token={customer.token}".encode())],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
        "state": {},
    }
    sent: list[tuple[str, bool]] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        # A slow client would stall here; by now no connection may be held for it.
        sent.append((message["type"], _idle(app.state.database)))

    await app(scope, receive, send)
    assert sent == [("http.response.start", True), ("http.response.body", True)]


async def test_a_failed_read_gives_its_connection_back(
    app: FastAPI, client: httpx.AsyncClient, customer: Account
) -> None:
    response = await client.get("/tickets/999999", headers=customer.headers)
    assert response.status_code == 404
    response = await client.get("/tickets", headers={"Authorization": "Bearer nonsense"})
    assert response.status_code == 401
    assert _idle(app.state.database)


class _Recording:
    """A pooled connection that notes every statement sent through it."""

    def __init__(self, conn: Any, sent: list[str]) -> None:
        self.conn = conn
        self.sent = sent

    async def fetch(self, sql: str, *args: Any) -> Any:
        self.sent.append(sql)
        return await self.conn.fetch(sql, *args)

    async def execute(self, sql: str, *args: Any) -> Any:
        self.sent.append(sql)
        return await self.conn.execute(sql, *args)


@pytest.fixture
def statements(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQL that requests send over pooled PostgreSQL connections, in order."""
    sent: list[str] = []
    acquire, release = PostgresDatabase.acquire, PostgresDatabase.release

    async def recording_acquire(self: PostgresDatabase) -> Any:
        return _Recording(await acquire(self), sent)

    async def unwrapping_release(self: PostgresDatabase, conn: Any) -> None:
        await release(self, conn.conn)

    monkeypatch.setattr(PostgresDatabase, "acquire", recording_acquire)
    monkeypatch.setattr(PostgresDatabase, "release", unwrapping_release)
    return sent


async def token_checks_listening(app: FastAPI) -> None:
    """Until the process listens for token changes: before that, no token is remembered
    and every request checks its token in the database (a loaded machine can take a while)."""
    async with asyncio.timeout(10):
        while not app.state.token_checks.listening:  # noqa: ASYNC110 - set by the listener
            await asyncio.sleep(0.01)


@pytest.mark.postgresql_only
async def test_a_new_ticket_and_a_new_message_are_one_statement_each(
    app: FastAPI, client: httpx.AsyncClient, customer: Account, statements: list[str]
) -> None:
    await token_checks_listening(app)
    ticket_id = await open_ticket(client, customer)  # the token is remembered from here on
    await client.get(f"/tickets/{ticket_id}", headers=customer.headers)
    statements.clear()
    body = {"topic": "t", "text": "t"}
    assert (await client.post("/tickets", json=body, headers=customer.headers)).status_code == 201
    assert len(statements) == 1, statements  # no BEGIN, no COMMIT, no token check
    statements.clear()
    path = f"/tickets/{ticket_id}/messages"
    response = await client.post(path, json={"text": "t"}, headers=customer.headers)
    assert response.status_code == 201
    assert len(statements) == 1, statements
    statements.clear()
    assert (await client.get(f"/tickets/{ticket_id}", headers=customer.headers)).is_success
    assert len(statements) == 1, statements


@pytest.mark.postgresql_only
async def test_a_retry_key_puts_the_claim_the_work_and_the_answer_in_one_transaction(
    app: FastAPI, client: httpx.AsyncClient, customer: Account, statements: list[str]
) -> None:
    await token_checks_listening(app)
    await open_ticket(client, customer)  # the token is remembered from here on
    statements.clear()
    headers = {**customer.headers, "Idempotency-Key": "one"}
    body = {"topic": "t", "text": "t"}
    assert (await client.post("/tickets", json=body, headers=headers)).status_code == 201
    assert statements[0] == "BEGIN"
    assert statements[-1] == "COMMIT"
