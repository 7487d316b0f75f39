"""Parallel requests: every write lands once, and the status machine holds."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from conftest import Account, make_settings, open_ticket
from ticketdesk.app import create_app
from ticketdesk.db.database import PostgresDatabase, SqliteDatabase
from ticketdesk.models import messages, users
from ticketdesk.settings import Settings


async def test_fifty_parallel_messages_are_each_stored_once(
    client: httpx.AsyncClient, customer: Account, staff: Account, engine: AsyncEngine
) -> None:
    ticket_id = await open_ticket(client, customer)
    texts = [f"message {i}" for i in range(50)]

    async def send(i: int, text: str) -> httpx.Response:
        author = staff if i % 2 else customer
        return await client.post(
            f"/tickets/{ticket_id}/messages", json={"text": text}, headers=author.headers
        )

    responses = await asyncio.gather(*(send(i, t) for i, t in enumerate(texts)))
    assert [r.status_code for r in responses] == [201] * 50
    async with engine.connect() as conn:
        stored = (
            (await conn.execute(select(messages.c.text).where(messages.c.ticket_id == ticket_id)))
            .scalars()
            .all()
        )
    assert sorted(stored) == sorted([*texts, "it jams"])
    assert len({r.json()["id"] for r in responses}) == 50


async def test_parallel_staff_changes_leave_a_valid_state(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    await client.post(f"/tickets/{ticket_id}/messages", json={"text": "ok"}, headers=staff.headers)
    statuses = ["pending", "resolved", "unresolved"] * 7

    async def change(status: str) -> httpx.Response:
        return await client.patch(
            f"/tickets/{ticket_id}", json={"status": status}, headers=staff.headers
        )

    responses = await asyncio.gather(*(change(s) for s in statuses))
    assert all(r.status_code == 200 for r in responses)
    final = (await client.get(f"/tickets/{ticket_id}", headers=staff.headers)).json()
    assert final["status"] in set(statuses)


async def test_cancel_racing_staff_changes_stays_canceled(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    await client.post(f"/tickets/{ticket_id}/messages", json={"text": "ok"}, headers=staff.headers)

    async def change(account: Account, status: str) -> httpx.Response:
        return await client.patch(
            f"/tickets/{ticket_id}", json={"status": status}, headers=account.headers
        )

    calls = [change(staff, s) for s in ["resolved", "unresolved", "pending"] * 4]
    calls.insert(6, change(customer, "canceled"))
    responses = await asyncio.gather(*calls)
    assert responses[6].status_code == 200
    assert {r.status_code for r in responses} <= {200, 409}
    final = (await client.get(f"/tickets/{ticket_id}", headers=customer.headers)).json()
    assert final["status"] == "canceled"


async def test_ticket_counter_is_exact_under_parallel_creation(
    client: httpx.AsyncClient, customer: Account, staff: Account, engine: AsyncEngine
) -> None:
    results = await asyncio.gather(
        *(open_ticket(client, customer, topic=f"t{i}") for i in range(30))
    )
    assert len(set(results)) == 30
    async with engine.connect() as conn:
        count = (
            await conn.execute(select(users.c.tickets_count).where(users.c.id == customer.id))
        ).scalar_one()
    assert count == 30
    listed = (await client.get("/users", headers=staff.headers)).json()
    assert listed[0]["tickets_count"] == 30


async def test_the_connection_pools_are_bounded(
    app: FastAPI,
    client: httpx.AsyncClient,
    customer: Account,
    engine: AsyncEngine,
    settings: Settings,
) -> None:
    ticket_id = await open_ticket(client, customer)
    reads = (client.get(f"/tickets/{ticket_id}", headers=customer.headers) for _ in range(60))
    writes = (
        client.post(f"/tickets/{ticket_id}/messages", json={"text": "t"}, headers=customer.headers)
        for _ in range(20)
    )
    responses = await asyncio.gather(*reads, *writes)
    assert {r.status_code for r in responses} == {200, 201}
    database = app.state.database
    if isinstance(database, PostgresDatabase):
        assert 1 <= database.pool.get_size() <= settings.db_pool_size
        async with engine.connect() as conn:
            open_connections = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE application_name = 'ticketdesk' AND datname = current_database()"
                    )
                )
            ).scalar_one()
        # One pool of at most DB_POOL_SIZE, and the connection that listens for revocations.
        assert 2 <= open_connections <= settings.db_pool_size + 1
        return
    assert isinstance(database, SqliteDatabase)
    for sqlite_engine in (database.readers, database.writers):
        pool = sqlite_engine.pool
        assert isinstance(pool, AsyncAdaptedQueuePool)
        assert pool.overflow() <= 0
        assert pool.checkedin() <= pool.size() == settings.db_pool_size


def _hold_only_connection(app: FastAPI, pool: str) -> AbstractAsyncContextManager[object]:
    database = app.state.database
    if isinstance(database, PostgresDatabase):
        return database.pool.acquire()  # one pool serves reads and writes
    assert isinstance(database, SqliteDatabase)
    return (database.writers if pool == "writes" else database.readers).connect()


@pytest.mark.parametrize("pool", ["reads", "writes"])
async def test_an_exhausted_pool_is_503_with_retry_after(
    database_url: URL, tmp_path: Path, customer: Account, pool: str
) -> None:
    settings = make_settings(database_url, tmp_path, db_pool_size=1, db_pool_timeout=0.2)
    app = create_app(settings)
    new_ticket = {"topic": "t", "text": "t"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            async with _hold_only_connection(app, pool):
                response = await client.post("/tickets", json=new_ticket, headers=customer.headers)
            assert response.status_code == 503
            assert response.headers["retry-after"] == "1"
            assert response.json() == {"detail": "the service is busy; retry shortly"}
            assert (await client.get("/tickets", headers=customer.headers)).json() == []
            response = await client.post("/tickets", json=new_ticket, headers=customer.headers)
            assert response.status_code == 201
