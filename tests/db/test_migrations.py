"""The migrations build exactly the schema that models.py describes, and undo it step by step.

A downgrade is the way back from a release gone wrong, and it runs on a database full of
data: each revision is walked down, up and down again with a row in every table, and must
leave the schema that revision's upgrade left on a fresh database, with the rows of the
tables that remain. An upgrade likewise meets old rows: a database of the first revision
with data upgrades to one the app works on.
"""

from __future__ import annotations

import asyncio
import json
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, insert, inspect, make_url, select, text, update
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import add_account, client_with, own_engine
from databases import postgres_url, take_database
from ticketdesk import migrate
from ticketdesk.models import (
    attachments,
    idempotency_keys,
    inbound_mails,
    job_cursors,
    jobs,
    messages,
    metadata,
    password_resets,
    revoked_tokens,
    staff_keys,
    tags,
    ticket_events,
    ticket_presence,
    ticket_tags,
    tickets,
    users,
    webhooks,
)


def _revisions() -> list[str]:
    """Every revision, the first one first (the URL is not used: nothing is connected to)."""
    scripts = ScriptDirectory.from_config(migrate.alembic_config(URL.create("sqlite")))
    return [script.revision for script in reversed(list(scripts.walk_revisions()))]


REVISIONS = _revisions()

FIRST = REVISIONS[0]
TEAM_FEATURES = "6a1c2e9d4b70"
"""Brought internal notes: its downgrade deletes them, since the old CHECK forbids them."""

TABLES_CREATED = {
    "3da621599b06": {"users", "revoked_tokens", "staff_keys", "tickets", "messages"},
    "f70359c0c72d": {"idempotency_keys"},
    TEAM_FEATURES: {"ticket_events"},
    "4c8e1a7f2d93": {"attachments"},
    "2f6a8c3e9b41": {"ticket_presence"},
    "8c4f1e6b2d07": {"job_cursors", "password_resets", "webhooks", "jobs"},
    "3d9a5f7c1e28": {"inbound_mails"},
    "6f0c2d8e4a17": {"tags", "ticket_tags"},
}
"""The tables of models.py that each revision's upgrade creates (and its downgrade drops)."""

T = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)

Schema = dict[str, Any]
Rows = dict[str, list[dict[str, Any]]]


@pytest.fixture
async def migrations_url(backend: str, tmp_path: Path) -> URL:
    """An empty database of these tests' own, beside the one the other tests share."""
    if backend == "sqlite":
        return make_url(f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}")
    shared = postgres_url()
    url = shared.set(database=f"{shared.database}_migrations")
    await take_database(url)
    return url


async def _alembic(action: str, url: URL, revision: str) -> None:
    """Alembic's command in a thread: its environment runs an event loop of its own."""
    run = command.upgrade if action == "upgrade" else command.downgrade
    await asyncio.to_thread(run, migrate.alembic_config(url), revision)


async def _version(url: URL) -> str | None:
    async with own_engine(url) as engine, engine.connect() as conn:
        version: str | None = await conn.scalar(text("SELECT version_num FROM alembic_version"))
        return version


def _plain(value: Any) -> Any:
    """The reflected value with types and clauses as their text, so two can be compared."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _sorted(items: list[Any]) -> list[Any]:
    return sorted((_plain(item) for item in items), key=lambda item: json.dumps(item))


def _describe(conn: Connection) -> Schema:
    """Each table's columns, keys, indexes and constraints, and what the backend keeps
    beside them: the SQL of SQLite's indexes and triggers (expression indexes and the search
    triggers, which reflection does not see), PostgreSQL's index and constraint definitions
    and its sequences. alembic_version is left out: a downgrade to base leaves it, empty."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        inspector = inspect(conn)
        aspects: dict[str, dict[tuple[str | None, str], Any]] = {
            "columns": inspector.get_multi_columns(),
            "primary key": inspector.get_multi_pk_constraint(),
            "foreign keys": inspector.get_multi_foreign_keys(),
            "indexes": inspector.get_multi_indexes(),
            "unique": inspector.get_multi_unique_constraints(),
            "checks": inspector.get_multi_check_constraints(),
        }
    schema: Schema = {
        name: {
            aspect: _plain(found[None, name])
            if aspect in ("columns", "primary key")
            else _sorted(found[None, name])
            for aspect, found in aspects.items()
        }
        for _, name in aspects["columns"]
        if name != "alembic_version"
    }
    if conn.dialect.name == "sqlite":
        statements = [
            "SELECT type, name, tbl_name, sql FROM sqlite_master"
            " WHERE type IN ('index', 'trigger') AND tbl_name <> 'alembic_version'"
        ]
    else:
        statements = [
            "SELECT tablename, indexname, indexdef FROM pg_indexes"
            " WHERE schemaname = 'public' AND tablename <> 'alembic_version'",
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
            " FROM pg_constraint WHERE connamespace = 'public'::regnamespace"
            " AND conrelid::regclass::text <> 'alembic_version'",
            "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'",
        ]
    schema[""] = [sorted(tuple(row) for row in conn.exec_driver_sql(s)) for s in statements]
    return schema


def _read_rows(conn: Connection, tables: list[str]) -> Rows:
    """Every row of the tables, in an order that does not depend on how they are stored."""
    found: Rows = {}
    for name in tables:
        result = conn.exec_driver_sql(f'SELECT * FROM "{name}"')
        found[name] = sorted((dict(row) for row in result.mappings()), key=repr)
    return found


def _data_tables(schema: Schema) -> list[str]:
    """The tables whose rows must survive: all but FTS5's shadow tables, its internals."""
    return [name for name in schema if name and not name.startswith("ticket_search_")]


async def _look(url: URL) -> tuple[Schema, Rows]:
    async with own_engine(url) as engine, engine.connect() as conn:

        def look(sync: Connection) -> tuple[Schema, Rows]:
            schema = _describe(sync)
            return schema, _read_rows(sync, _data_tables(schema))

        return await conn.run_sync(look)


def _differences(expected: Schema, found: Schema) -> dict[str, Any]:
    """Only what differs, table by table, for a readable failure."""
    return {
        name: {"expected": expected.get(name), "found": found.get(name)}
        for name in sorted(set(expected) | set(found))
        if expected.get(name) != found.get(name)
    }


def _surviving(at_head: Rows, schema: Schema, undone: set[str]) -> Rows:
    """The rows filled in at head, in the tables and columns that remain after the
    revisions in `undone` were downgraded; less what a downgrade deletes on purpose."""
    expected: Rows = {}
    for name in _data_tables(schema):
        columns = [column["name"] for column in schema[name]["columns"]]
        rows = at_head[name]
        if name == "messages" and TEAM_FEATURES in undone:
            rows = [row for row in rows if row["type"] != "note"]
        expected[name] = sorted(({c: row[c] for c in columns} for row in rows), key=repr)
    return expected


def _each(common: dict[str, Any], *rows: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of one executemany: the values they share, and each one's own (the same keys)."""
    return [{**common, **row} for row in rows]


async def _fill_every_table(engine: AsyncEngine) -> None:
    """A row or two in every table of models.py, with values other than the defaults."""
    later = T + timedelta(hours=4)
    async with engine.begin() as conn:
        user = {"password_hash": "!", "created_at": T, "is_staff": False}
        await conn.execute(
            insert(users),
            _each(
                user | {"mail_customer_replies": True},
                {"id": 1, "email": "customer@example.com", "username": "Casey"},
                {
                    "id": 2,
                    "email": "agent@example.com",
                    "username": "Alex",
                    "is_staff": True,
                    "mail_customer_replies": False,
                },
            ),
        )
        await conn.execute(insert(revoked_tokens).values(jti="jti-1", user_id=1, expires_at=later))
        await conn.execute(
            insert(staff_keys).values(
                id=1, key_hash="a" * 64, created_by=2, created_at=T, used_by=1, used_at=later
            )
        )
        await conn.execute(
            insert(tickets),
            _each(
                {"author_id": 1, "topic": "printer", "created_at": T, "updated_at": later},
                {
                    "id": 1,
                    "status": "pending",
                    "assignee_id": 2,
                    "priority": 3,
                    "first_response_due_at": later,
                    "resolution_due_at": later,
                    "first_response_at": None,
                    "resolved_at": None,
                    "rating_score": None,
                    "rating_comment": None,
                    "rated_at": None,
                },
                {
                    "id": 2,
                    "status": "resolved",
                    "assignee_id": None,
                    "priority": 0,
                    "first_response_due_at": T,
                    "resolution_due_at": later,
                    "first_response_at": T,
                    "resolved_at": later,
                    "rating_score": 5,
                    "rating_comment": "quick",
                    "rated_at": later,
                },
            ),
        )
        await conn.execute(
            insert(messages),
            _each(
                {"created_at": T, "attachment_count": 0},
                {"id": 1, "ticket_id": 1, "author_id": 1, "type": "request", "text": "it jams"}
                | {"attachment_count": 1},
                {"id": 2, "ticket_id": 1, "author_id": 2, "type": "response", "text": "reseat"},
                {"id": 3, "ticket_id": 1, "author_id": 2, "type": "note", "text": "toner"},
                {"id": 4, "ticket_id": 2, "author_id": 1, "type": "other", "text": "thanks"},
            ),
        )
        await conn.execute(
            insert(attachments).values(
                id=1,
                message_id=1,
                ticket_id=1,
                filename="jam.png",
                content_type="image/png",
                size=3,
                sha256="b" * 64,
                created_at=T,
            )
        )
        await conn.execute(
            insert(ticket_events),
            _each(
                {"ticket_id": 1, "at": T},
                {"id": 1, "kind": "created", "actor_id": 1, "before": None, "after": "{}"},
                {"id": 2, "kind": "priority", "actor_id": 2, "before": '{"p": 1}', "after": "{}"},
            ),
        )
        await conn.execute(
            insert(ticket_presence).values(ticket_id=1, user_id=2, state="typing", seen_at=T)
        )
        await conn.execute(insert(tags), [{"id": 1, "name": "billing"}, {"id": 2, "name": "vip"}])
        await conn.execute(
            insert(ticket_tags), [{"ticket_id": 1, "tag_id": 1}, {"ticket_id": 2, "tag_id": 2}]
        )
        await conn.execute(
            insert(idempotency_keys).values(
                id=1,
                user_id=1,
                key="key-1",
                request_hash="c" * 64,
                status_code=201,
                response_body='{"id": 1}',
                created_at=T,
            )
        )
        await conn.execute(
            insert(password_resets).values(
                id=1, user_id=1, token_hash="d" * 64, created_at=T, expires_at=later
            )
        )
        await conn.execute(
            insert(webhooks).values(
                id=1,
                url="https://hooks.example.com/tickets",
                events='["ticket.created"]',
                secret="whsec_" + "e" * 32,
                is_active=True,
                created_by=2,
                created_at=T,
                consecutive_failures=2,
                paused_until=later,
                paused_reason="timed out",
                served_at=T,
            )
        )
        await conn.execute(
            insert(jobs),
            _each(
                {"payload": "{}", "attempts": 1, "run_at": T, "created_at": T, "event_id": 1},
                {"id": 1, "key": "webhook:1:1", "kind": "webhook", "status": "queued"}
                | {"webhook_id": 1},
                {"id": 2, "key": "mail:1:agent", "kind": "mail", "status": "done"}
                | {"webhook_id": None},
            ),
        )
        # The upgrade put the dispatcher's place in the feed there already.
        await conn.execute(
            update(job_cursors).where(job_cursors.c.name == "events").values(position=2)
        )
        await conn.execute(
            insert(inbound_mails).values(message_id="<m1@example.com>", ticket_id=1, received_at=T)
        )


@pytest.fixture
async def walked_up(migrations_url: URL) -> dict[str, Schema]:
    """Each revision's schema, as its upgrade leaves a fresh database, by revision id."""
    schemas = {"base": (await _look(migrations_url))[0]}
    for revision in REVISIONS:
        await _alembic("upgrade", migrations_url, revision)
        schemas[revision] = (await _look(migrations_url))[0]
    return schemas


def test_models_and_migrations_agree(database_url: URL) -> None:
    migrate.check(database_url)  # raises when autogenerate would find a difference


def test_the_revisions_create_every_table_of_the_models() -> None:
    assert set().union(*TABLES_CREATED.values()) == set(metadata.tables)
    assert set(TABLES_CREATED) <= set(REVISIONS)


@pytest.mark.slow  # some 50 migration steps, each looked at: 10 to 22 s on two busy cores
async def test_each_revision_goes_down_up_and_down_again_keeping_schema_and_data(
    migrations_url: URL, walked_up: dict[str, Schema], tmp_path: Path
) -> None:
    url = migrations_url
    async with own_engine(url) as engine:
        await _fill_every_table(engine)
    _, at_head = await _look(url)
    assert all(at_head[name] for name in metadata.tables), "a table of models.py has no rows"

    undone: set[str] = set()
    for current, previous in reversed(list(zip(REVISIONS, ["base", *REVISIONS[:-1]], strict=True))):
        undone.add(current)
        tables = set().union(*(TABLES_CREATED.get(r, set()) for r in REVISIONS if r not in undone))
        kept = _surviving(at_head, walked_up[previous], undone)
        # Down, up again (the rows that remain meet the upgrade), and down once more.
        for action, revision in (
            ("downgrade", previous),
            ("upgrade", current),
            ("downgrade", previous),
        ):
            await _alembic(action, url, revision)
            schema, found = await _look(url)
            step = f"{action} to {revision}"
            assert schema == walked_up[revision], (step, _differences(walked_up[revision], schema))
            assert _surviving(found, walked_up[previous], set()) == kept, step
            if action == "downgrade":
                assert set(schema) & set(metadata.tables) == tables, step
        assert await _version(url) == (None if previous == "base" else previous)

    # Up from nothing again: the schema of models.py, and an app that works on it.
    await asyncio.to_thread(migrate.upgrade, url)
    schema, _ = await _look(url)
    assert schema == walked_up[REVISIONS[-1]], _differences(walked_up[REVISIONS[-1]], schema)
    await asyncio.to_thread(migrate.check, url)
    async with own_engine(url) as engine:
        account = await add_account(engine, "after@example.com")
    async with client_with(url, tmp_path) as client:
        opened = await client.post(
            "/tickets", json={"topic": "scanner", "text": "it smudges"}, headers=account.headers
        )
        assert opened.status_code == 201, opened.text
        found_by_search = await client.get(
            "/tickets", params={"q": "smudges"}, headers=account.headers
        )
        assert found_by_search.status_code == 200
        assert [t["id"] for t in found_by_search.json()] == [opened.json()["id"]]


def _insert_into_the_first_schema(conn: Connection) -> None:
    """Rows as the first revision's schema holds them, through that schema's own tables."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        old = MetaData()
        old.reflect(conn, only=["tickets", "messages", "staff_keys", "revoked_tokens"])
    author = conn.scalar(text("SELECT id FROM users WHERE email = 'old@example.com'"))
    agent = conn.scalar(text("SELECT id FROM users WHERE email = 'agent@example.com'"))
    ticket_id = conn.execute(
        old.tables["tickets"]
        .insert()
        .values(author_id=author, topic="printer", status="pending", created_at=T, updated_at=T)
        .returning(old.tables["tickets"].c.id)
    ).scalar_one()
    conn.execute(
        old.tables["messages"].insert(),
        _each(
            {"ticket_id": ticket_id, "created_at": T},
            {"author_id": author, "type": "request", "text": "the toner smears"},
            {"author_id": agent, "type": "response", "text": "a new cartridge is on its way"},
        ),
    )
    conn.execute(
        old.tables["staff_keys"].insert().values(key_hash="f" * 64, created_by=agent, created_at=T)
    )
    conn.execute(
        old.tables["revoked_tokens"].insert().values(jti="old", user_id=author, expires_at=T)
    )


async def test_an_old_database_upgrades_with_its_rows_and_a_second_upgrade_changes_nothing(
    migrations_url: URL, tmp_path: Path
) -> None:
    url = migrations_url
    await _alembic("upgrade", url, FIRST)
    async with own_engine(url) as engine:
        customer = await add_account(engine, "old@example.com")
        await add_account(engine, "agent@example.com", role="staff")
        async with engine.begin() as conn:
            await conn.run_sync(_insert_into_the_first_schema)
    old_schema, before = await _look(url)

    await asyncio.to_thread(migrate.upgrade, url)
    await asyncio.to_thread(migrate.check, url)
    schema, after = await _look(url)
    assert all(before.values())
    assert _surviving(after, old_schema, set()) == before  # the old rows, in their columns
    async with own_engine(url) as engine, engine.connect() as conn:
        # The new columns hold their defaults for the old rows.
        assert set((await conn.execute(select(tickets.c.priority))).scalars()) == {1}
        assert set((await conn.execute(select(messages.c.attachment_count))).scalars()) == {0}
        agents_mail = select(users.c.mail_new_tickets, users.c.mail_customer_replies)
        assert {tuple(row) for row in await conn.execute(agents_mail)} == {(True, True)}
        assert (await conn.execute(select(job_cursors))).all() == [("events", 0)]

    # The old ticket is found by a word of its old message: the search was filled in.
    async with client_with(url, tmp_path) as client:
        response = await client.get("/tickets", params={"q": "smears"}, headers=customer.headers)
        assert response.status_code == 200, response.text
        assert [t["topic"] for t in response.json()] == ["printer"]

    # A second upgrade finds nothing to do, and changes nothing.
    await asyncio.to_thread(migrate.upgrade, url)
    assert await _look(url) == (schema, after)
    assert await _version(url) == REVISIONS[-1]
