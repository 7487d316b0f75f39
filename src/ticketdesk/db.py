"""The engine, its pool, and the one-transaction-per-request dependency."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Annotated, Any, TypeAlias

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from ticketdesk.errors import BadRequest
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


Record: TypeAlias = Mapping[Any, Any]  # RowMapping on SQLAlchemy, Record on asyncpg
"""A result row, as the services return them: a mapping of column names to values."""


def _reads_without_transaction(conn: AsyncConnection) -> bool:
    # Only there: the driver would run a statement outside the transaction SQLAlchemy opens.
    sync = conn.sync_connection
    return (
        conn.dialect.name == "postgresql"
        and sync is not None
        and sync.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
    )


class Prepared:
    """A statement built once, with named bind parameters, run the fastest way each backend has.

    On a PostgreSQL connection that reads without a transaction (GET requests) it is
    compiled once and handed straight to asyncpg, which prepares it once per connection:
    SQLAlchemy's per-execution work (cache key, compiled-cache lookup, result wrapping)
    is most of a short query's cost. Elsewhere (writes, SQLite) SQLAlchemy runs it, inside
    the request's transaction. Rows come back as mappings either way.
    """

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._postgres: tuple[str, tuple[str, ...], dict[str, Any]] | None = None

    def _compiled(self, conn: AsyncConnection) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        if self._postgres is None:
            compiled = self.statement.compile(dialect=conn.dialect)
            assert isinstance(compiled, SQLCompiler)
            self._postgres = (compiled.string, tuple(compiled.positiontup or ()), compiled.params)
        return self._postgres

    async def all(self, conn: AsyncConnection, params: Mapping[str, Any]) -> Sequence[Record]:
        if not _reads_without_transaction(conn):
            result = await conn.execute(self.statement, dict(params))  # type: ignore[call-overload]
            return list(result.mappings())
        sql, names, defaults = self._compiled(conn)
        # The connection is checked out already: its attributes need no awaiting.
        driver: Any = conn.sync_connection.connection.driver_connection  # type: ignore[union-attr]
        try:
            records: Sequence[Record] = await driver.fetch(
                sql, *(params[n] if n in params else defaults[n] for n in names)
            )
        except asyncpg.DataError:
            # What SQLAlchemy's DataError would be, and answered the same way (errors.py).
            raise BadRequest("the database refused a value in the request") from None
        return records

    async def one_or_none(self, conn: AsyncConnection, params: Mapping[str, Any]) -> Record | None:
        rows = await self.all(conn, params)
        return rows[0] if rows else None
