"""Alembic environment: runs on the async engines of both backends."""

from __future__ import annotations

import asyncio
import warnings

from alembic import context
from sqlalchemy import Column, Index, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.sql.schema import SchemaItem

from ticketdesk.models import metadata
from ticketdesk.settings import Settings

config = context.config


SEARCH_OBJECTS = ("search_public", "search_notes", "ix_tickets_search_", "ticket_search")
"""The full-text search's columns, indexes and tables: built by their migration for each
backend (tsvectors, FTS5), and not in models.py."""


def _compared(
    obj: SchemaItem, name: str | None, kind: str, reflected: bool, compare_to: SchemaItem | None
) -> bool:
    return not (name or "").startswith(SEARCH_OBJECTS)


def _visible_to_sqlite(
    obj: SchemaItem, name: str | None, kind: str, reflected: bool, compare_to: SchemaItem | None
) -> bool:
    """SQLite's reflection cannot see expression indexes: leave those out of its comparison."""
    return _compared(obj, name, kind, reflected, compare_to) and not (
        kind == "index"
        and isinstance(obj, Index)
        and any(not isinstance(e, Column) for e in obj.expressions)
    )


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=sqlite,
        compare_type=True,
        include_object=_visible_to_sqlite if sqlite else _compared,
    )
    with warnings.catch_warnings(), context.begin_transaction():
        # ...and says so for each such index, which is expected.
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = config.get_main_option("sqlalchemy.url") or Settings().database.render_as_string(
        hide_password=False
    )
    asyncio.run(_run_async(url))
