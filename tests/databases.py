"""The PostgreSQL databases the tests run on, and the guard that keeps them off anyone's data.

The suite drops and recreates a database's `public` schema before it runs. It does so only
to a database it took itself: on first use it writes a marker table, in a schema of its own
(`public` is compared with models.py by `alembic check`, and must hold nothing else). A
database whose `public` schema holds tables but no marker is someone's data: refused.
"""

from __future__ import annotations

import os

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/ticketdesk_test"
MARKER_SCHEMA = "ticketdesk_test_suite"
MARKER = f"{MARKER_SCHEMA}.taken"

PUBLIC_TABLES = """
    SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
    ORDER BY c.relname
"""


def postgres_url() -> URL:
    """TEST_DATABASE_URL; under pytest-xdist, a database of each worker's own beside it
    (`ticketdesk_test_gw0`, ...), since workers would empty each other's tables."""
    url = make_url(os.environ.get("TEST_DATABASE_URL", DEFAULT_URL))
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return url.set(database=f"{url.database}_{worker}") if worker else url


def _server(url: URL) -> AsyncEngine:
    """The server's `postgres` database, where databases are created and dropped."""
    return create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")


async def create_database_if_missing(url: URL) -> None:
    engine = _server(url)
    try:
        async with engine.connect() as conn:
            found = await conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database}
            )
            if not found:
                name = conn.dialect.identifier_preparer.quote(str(url.database))
                await conn.execute(text(f"CREATE DATABASE {name}"))
    finally:
        await engine.dispose()


async def drop_database(url: URL) -> None:
    engine = _server(url)
    try:
        async with engine.connect() as conn:
            name = conn.dialect.identifier_preparer.quote(str(url.database))
            await conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    finally:
        await engine.dispose()


async def take_database(url: URL) -> None:
    """Create the database if it is missing and leave it with an empty `public` schema,
    unless tables someone else made are there: then raise pytest.UsageError."""
    await create_database_if_missing(url)
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            marked = await conn.scalar(text("SELECT to_regclass(:marker)"), {"marker": MARKER})
            if marked is None:
                found = list((await conn.execute(text(PUBLIC_TABLES))).scalars())
                if found:
                    raise pytest.UsageError(_refusal(url, found))
                await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {MARKER_SCHEMA}"))
                await conn.execute(
                    text(f"CREATE TABLE {MARKER} (taken_at timestamptz NOT NULL DEFAULT now())")
                )
                await conn.execute(text(f"INSERT INTO {MARKER} DEFAULT VALUES"))
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


def _refusal(url: URL, tables: list[str]) -> str:
    shown = ", ".join(tables[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
    return (
        f"refusing to run the tests on {url.render_as_string(hide_password=True)}: its public"
        f" schema holds tables the test suite did not create ({shown}), and the tests drop"
        " that schema. Set TEST_DATABASE_URL to a database of the tests' own (it is created"
        f" when missing; default {make_url(DEFAULT_URL).database})."
    )
