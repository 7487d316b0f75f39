"""The engine, its pool, and the one-transaction-per-request dependency."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, TypeAlias

from fastapi import Depends, Request
from sqlalchemy import Row, event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ticketdesk.settings import Settings

SQLITE_BUSY_TIMEOUT_MS = 10_000


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.database
    if settings.is_sqlite:
        engine = create_async_engine(
            url,
            pool_size=settings.db_pool_size,
            max_overflow=0,
            pool_timeout=settings.db_pool_timeout,
            hide_parameters=True,
        )
        _serialize_sqlite_writers(engine)
        return engine
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=0,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=3600,
        hide_parameters=True,
        connect_args={"server_settings": {"application_name": "ticketdesk"}},
    )


def _serialize_sqlite_writers(engine: AsyncEngine) -> None:
    """Every SQLite transaction takes the write lock when it begins.

    A deferred transaction that reads and then writes fails at once with SQLITE_BUSY
    when another writer got in between; BEGIN IMMEDIATE waits for the lock instead.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver must not emit its own BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def reads_without_transaction(engine: AsyncEngine) -> AsyncEngine:
    """The same pool, each statement on its own: no BEGIN and COMMIT round trips.

    PostgreSQL's READ COMMITTED gives each statement its own snapshot even inside a
    transaction, so a request that only reads loses nothing by this. SQLite keeps its
    transactions, which is what serializes it.
    """
    if engine.dialect.name == "sqlite":
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def _request_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """One transaction per request: committed before the response is sent, rolled back on error.

    Requests that cannot write (GET) read without a transaction.
    """
    state = request.app.state
    if request.method in _SAFE_METHODS:
        async with state.read_engine.connect() as conn:
            yield conn
    else:
        async with state.engine.begin() as conn:
            yield conn


DbConn = Annotated[AsyncConnection, Depends(_request_connection, scope="function")]


# Dependencies are `async def` even when they do not await: FastAPI runs plain `def`
# dependencies in a thread pool, a hop per dependency per request.
async def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


Engine = Annotated[AsyncEngine, Depends(get_engine)]


Record: TypeAlias = Row[*tuple[Any, ...]]
"""A result row of any shape, as the services return them."""
