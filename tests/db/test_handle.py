"""The Db handle: reads without a transaction, one transaction from the first write, one commit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from sqlalchemy import bindparam, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from ticketdesk.db import Database, Statement, UniqueViolation
from ticketdesk.models import users

NOW = datetime(2026, 1, 1, tzinfo=UTC)
_ADD_USER = Statement(
    insert(users).values(
        email=bindparam("email"),
        username="u",
        password_hash="!",
        is_staff=False,
        is_superuser=False,
        is_active=True,
        tickets_count=0,
        token_version=0,
        created_at=bindparam("now"),
    )
)
_COUNT = Statement(select(func.count()).select_from(users))
_SELECT_ONE = Statement(text("SELECT 1"), writes=False)


async def _users(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(users))).scalar_one())


def _database(app: FastAPI) -> Database:
    database: Database = app.state.database
    return database


async def test_reads_open_no_transaction_and_the_first_write_does(app: FastAPI) -> None:
    db = _database(app).handle()
    assert await db.scalar(_SELECT_ONE) == 1
    assert not db.in_transaction
    await db.execute(_ADD_USER, {"email": "a@example.com", "now": NOW})
    assert db.in_transaction
    assert await db.scalar(_COUNT) == 1  # a read after the write sees it
    await db.finish(commit=True)


async def test_nothing_is_stored_when_the_handle_rolls_back(
    app: FastAPI, engine: AsyncEngine
) -> None:
    db = _database(app).handle()
    await db.execute(_ADD_USER, {"email": "a@example.com", "now": NOW})
    await db.execute(_ADD_USER, {"email": "b@example.com", "now": NOW})
    await db.finish(commit=False)
    assert await _users(engine) == 0
    db = _database(app).handle()
    await db.execute(_ADD_USER, {"email": "a@example.com", "now": NOW})
    await db.finish(commit=True)
    assert await _users(engine) == 1


async def test_a_duplicate_is_a_unique_violation_and_the_transaction_is_not_kept(
    app: FastAPI, engine: AsyncEngine
) -> None:
    async with _database(app).session() as db:
        await db.execute(_ADD_USER, {"email": "a@example.com", "now": NOW})
    db = _database(app).handle()
    with pytest.raises(UniqueViolation):
        await db.execute(_ADD_USER, {"email": "a@example.com", "now": NOW})
    await db.finish(commit=False)
    assert await _users(engine) == 1


async def test_callbacks_run_after_commit_and_never_after_a_rollback(app: FastAPI) -> None:
    ran: list[str] = []
    db = _database(app).handle()
    await db.execute(_ADD_USER, {"email": "a@example.com", "now": NOW})
    db.after_commit(lambda: ran.append("committed"))
    assert ran == []  # not before the commit
    await db.finish(commit=True)
    assert ran == ["committed"]
    db = _database(app).handle()
    await db.execute(_ADD_USER, {"email": "b@example.com", "now": NOW})
    db.after_commit(lambda: ran.append("rolled back"))
    await db.finish(commit=False)
    assert ran == ["committed"]


async def test_notifications_reach_this_process_once_committed(app: FastAPI) -> None:
    heard: list[str] = []
    database = _database(app)
    database.listen("test_channel", heard.append, lambda _listening: None)
    db = database.handle()
    await db.execute(_ADD_USER, {"email": "a@example.com", "now": NOW})
    db.notify("test_channel", "hello")
    assert heard == []
    await db.finish(commit=True)
    assert heard == ["hello"]


async def test_a_handle_can_go_on_after_it_gave_its_connection_back(
    app: FastAPI, engine: AsyncEngine
) -> None:
    db = _database(app).handle()
    assert await db.scalar(_COUNT) == 0
    await db.finish(commit=False)  # e.g. before hashing a password
    await db.execute(_ADD_USER, {"email": "a@example.com", "now": NOW})
    await db.finish(commit=True)
    assert await _users(engine) == 1


@pytest.mark.postgresql_only
async def test_an_atomic_statement_runs_alone_and_nothing_may_write_after_it(
    app: FastAPI, engine: AsyncEngine
) -> None:
    atomic = Statement(
        None,
        postgres=text(
            "INSERT INTO users (email, username, password_hash, is_staff, is_superuser,"
            " is_active, tickets_count, token_version, created_at)"
            " VALUES (:email, 'u', '!', false, false, true, 0, 0, now())"
        ),
        atomic=True,
    )
    db = _database(app).handle()
    await db.execute(atomic, {"email": "a@example.com"})
    assert not db.in_transaction  # it committed by itself
    assert await _users(engine) == 1
    with pytest.raises(RuntimeError):
        await db.execute(_ADD_USER, {"email": "b@example.com", "now": NOW})
    await db.finish(commit=True)
    assert await _users(engine) == 1
