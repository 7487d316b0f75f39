"""The engine, the readers, and the one-transaction-per-request dependency."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Annotated, Any, TypeAlias

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import event, text
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from ticketdesk.errors import BadRequest, ServiceBusy, TicketdeskError, describe_failure
from ticketdesk.settings import Settings

log = logging.getLogger("ticketdesk")

SQLITE_BUSY_TIMEOUT_MS = 10_000


def create_engine(settings: Settings, *, for_writes: bool = True) -> AsyncEngine:
    url = settings.database
    if settings.is_sqlite:
        engine = create_async_engine(
            url,
            pool_size=settings.db_pool_size,
            max_overflow=0,
            pool_timeout=settings.db_pool_timeout,
            hide_parameters=True,
        )
        _configure_sqlite(engine, serialize_writers=for_writes)
        return engine
    engine = create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=0,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=3600,
        hide_parameters=True,
        connect_args={
            "timeout": settings.db_connect_timeout,
            "server_settings": session_settings(settings),
        },
    )
    event.listen(engine.sync_engine, "checkout", _replace_if_closed)
    return engine


APPLICATION_NAME = "ticketdesk"
"""How the service's connections are named in pg_stat_activity."""


def session_settings(settings: Settings) -> dict[str, str]:
    """What every PostgreSQL connection of both pools sets as it opens."""
    values = {"application_name": APPLICATION_NAME}
    if settings.db_statement_timeout:
        # Cancelled by the server, which rolls the transaction back (503, errors.py).
        values["statement_timeout"] = str(max(1, round(settings.db_statement_timeout * 1000)))
    return values


def _replace_if_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection the server has closed (it restarted, say) is replaced, not handed out.

    The driver already saw the socket close: asking it costs no round trip, unlike
    `pool_pre_ping`, which would add one to every transaction. A connection that breaks
    while in use fails its request with 503, and SQLAlchemy then replaces the whole pool.
    """
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the database closed this connection")


def _configure_sqlite(engine: AsyncEngine, *, serialize_writers: bool) -> None:
    """WAL, foreign keys, and every writer's transaction takes the write lock when it begins.

    A deferred transaction that reads and then writes fails at once with SQLITE_BUSY
    when another writer got in between; BEGIN IMMEDIATE waits for the lock instead.
    Readers need no transaction: each statement reads one consistent snapshot.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver must not emit its own BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    if serialize_writers:

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


async def _request_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """One transaction per request: committed before the response is sent, rolled back on error."""
    async with request.app.state.engine.begin() as conn:
        yield conn


DbConn = Annotated[AsyncConnection, Depends(_request_connection, scope="function")]
"""The request's transaction, for requests that write."""


# Dependencies are `async def` even when they do not await: FastAPI runs plain `def`
# dependencies in a thread pool, a hop per dependency per request.
async def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


Engine = Annotated[AsyncEngine, Depends(get_engine)]


Record: TypeAlias = Mapping[Any, Any]  # RowMapping on SQLAlchemy, Record on asyncpg
"""A result row, as the services return them: a mapping of column names to values."""


class Prepared:
    """A statement built once, with named bind parameters, run the fastest way each backend has.

    Inside a transaction (a `DbConn`) SQLAlchemy runs it. On a `Reader` for PostgreSQL it
    is compiled once and handed straight to asyncpg, which prepares it once per connection:
    SQLAlchemy's per-execution work (cache key, compiled-cache lookup, result wrapping) is
    most of a short query's cost. Rows come back as mappings either way.
    """

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._postgres: tuple[str, tuple[str, ...], dict[str, Any]] | None = None

    def postgres(self, dialect: Dialect, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
        """The SQL with numbered placeholders, and the arguments in their order."""
        if self._postgres is None:
            compiled = self.statement.compile(dialect=dialect)
            assert isinstance(compiled, SQLCompiler)
            self._postgres = (compiled.string, tuple(compiled.positiontup or ()), compiled.params)
        sql, names, defaults = self._postgres
        return sql, [params[n] if n in params else defaults[n] for n in names]

    async def all(self, db: Db, params: Mapping[str, Any]) -> Sequence[Record]:
        if isinstance(db, AsyncConnection):
            result = await db.execute(self.statement, dict(params))  # type: ignore[call-overload]
            return list(result.mappings())
        return await db.fetch(self, params)

    async def one_or_none(self, db: Db, params: Mapping[str, Any]) -> Record | None:
        rows = await self.all(db, params)
        return rows[0] if rows else None

    async def scalar(self, db: Db, params: Mapping[str, Any]) -> Any:
        """The first column of the one row the statement returns."""
        rows = await self.all(db, params)
        return next(iter(rows[0].values()))


class Reader:
    """Runs a statement on its own, outside any transaction, on a connection held only for it.

    Requests that only read use this instead of a `DbConn`: no BEGIN and COMMIT round
    trips, and no connection held while the request does anything else. PostgreSQL's READ
    COMMITTED gives each statement its own snapshot even inside a transaction, so a read
    loses nothing by this.
    """

    async def fetch(self, statement: Prepared, params: Mapping[str, Any]) -> Sequence[Record]:
        raise NotImplementedError

    def for_request(self) -> Reader:
        """The reader of one request, released with `release` when its response starts."""
        return self

    async def release(self) -> None:
        """Give back what the request held; it may read again after, and take another."""

    async def check(self) -> None:
        """Take a connection and run a trivial statement on it."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class PostgresReader(Reader):
    """An asyncpg pool of its own: its checkout costs a third of SQLAlchemy's."""

    def __init__(self, pool: asyncpg.Pool, dialect: Dialect, acquire_timeout: float) -> None:
        self.pool = pool
        self._dialect = dialect
        self._acquire_timeout = acquire_timeout

    @classmethod
    async def create(cls, settings: Settings, dialect: Dialect) -> PostgresReader:
        url = settings.database.set(drivername="postgresql")
        pool = await asyncpg.create_pool(
            url.render_as_string(hide_password=False),
            min_size=0,  # connect on first use: the service starts while the database is away
            max_size=settings.db_pool_size,
            reset=_keep_session,
            timeout=settings.db_connect_timeout,
            server_settings=session_settings(settings),
        )
        return cls(pool, dialect, settings.db_pool_timeout)

    async def fetch(self, statement: Prepared, params: Mapping[str, Any]) -> Sequence[Record]:
        conn = await self.acquire()
        try:
            return await self.run(conn, statement, params)
        finally:
            await self.pool.release(conn)

    def for_request(self) -> Reader:
        return _PostgresRequestReader(self)

    async def run(
        self, conn: PooledConnection, statement: Prepared, params: Mapping[str, Any]
    ) -> Sequence[Record]:
        sql, args = statement.postgres(self._dialect, params)
        try:
            records: Sequence[Record] = await conn.fetch(sql, *args)
        except asyncpg.DataError:
            # What SQLAlchemy's DataError would be, and answered the same way (errors.py).
            raise BadRequest("the database refused a value in the request") from None
        return records

    async def acquire(self) -> PooledConnection:
        if self.pool.get_idle_size():
            return await self.pool.acquire()  # an idle connection is handed over at once
        # Not acquire(timeout=): that runs the wait in a task of its own.
        try:
            async with asyncio.timeout(self._acquire_timeout) as waited:
                return await self.pool.acquire()
        except TimeoutError:
            if not waited.expired():
                raise  # opening a connection took DB_CONNECT_TIMEOUT: the database is away
            log.warning("no database connection free within the pool timeout")
            raise ServiceBusy() from None

    async def check(self) -> None:
        conn = await self.acquire()
        try:
            await conn.execute("SELECT 1")
        finally:
            await self.pool.release(conn)

    async def close(self) -> None:
        await self.pool.close()  # interrupted, it drops the connections it still has


PooledConnection: TypeAlias = "asyncpg.pool.PoolConnectionProxy[Any]"


class _PostgresRequestReader(Reader):
    """All of one request's reads on one connection, taken at the first of them.

    A checkout per request rather than per statement: the token check and the query
    share it. `ReadsPerRequest` (middleware.py) gives it back as the response starts.
    """

    __slots__ = ("_conn", "_reader")

    def __init__(self, reader: PostgresReader) -> None:
        self._reader = reader
        self._conn: PooledConnection | None = None

    async def fetch(self, statement: Prepared, params: Mapping[str, Any]) -> Sequence[Record]:
        if self._conn is None:
            self._conn = await self._reader.acquire()
        return await self._reader.run(self._conn, statement, params)

    async def release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await self._reader.pool.release(conn)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Nothing to reset on release: reads never change session state (no SET, LISTEN or lock)."""


class EngineReader(Reader):
    """SQLite: statements through SQLAlchemy, on a pool apart from the writers'.

    A request that writes checks its token with a read while it may hold a writer's
    connection; with one shared pool, enough such requests at once would wait on each other.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def fetch(self, statement: Prepared, params: Mapping[str, Any]) -> Sequence[Record]:
        async with self.engine.connect() as conn:
            result = await conn.execute(statement.statement, dict(params))  # type: ignore[call-overload]
            return list(result.mappings())

    async def check(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()


async def create_reader(settings: Settings, engine: AsyncEngine) -> Reader:
    if settings.is_sqlite:
        return EngineReader(create_engine(settings, for_writes=False))
    return await PostgresReader.create(settings, engine.dialect)


# What a failed check may raise: the driver's errors, SQLAlchemy's, or a pool's (ServiceBusy).
_CHECK_FAILURES = (
    OSError,
    SQLAlchemyError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    TicketdeskError,
)


async def database_problem(engine: AsyncEngine, reader: Reader, seconds: float) -> str | None:
    """Why requests could not use the database now; None when both pools answer in `seconds`.

    Both, as requests use both: writes the engine's pool, reads the reader's.
    """
    try:
        async with asyncio.timeout(seconds) as bound:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            await reader.check()
    except _CHECK_FAILURES as exc:
        if bound.expired():
            return f"no answer within {seconds:g} s"
        return describe_failure(exc, engine.url.password)
    return None


async def close_database(engine: AsyncEngine, reader: Reader, seconds: float) -> None:
    """Close both pools; connections that do not close within `seconds` are dropped."""
    try:
        async with asyncio.timeout(seconds):
            await reader.close()
    except TimeoutError:
        log.warning("the read pool did not close within %g s", seconds)
    try:
        async with asyncio.timeout(seconds):
            await engine.dispose()
    except TimeoutError:
        log.warning("the write pool did not close within %g s", seconds)


Db: TypeAlias = AsyncConnection | Reader
"""Where a service function runs its statements: the request's transaction, or a reader."""


REQUEST_READER = "ticketdesk.reader"
"""Where in the ASGI scope a request keeps its reader (see `ReadsPerRequest`)."""


def request_reader(request: Request) -> Reader:
    """The request's own reader if it has one (GET), else statement by statement."""
    reader: Reader = request.scope.get(REQUEST_READER) or request.app.state.reader
    return reader


async def _reader(request: Request) -> Reader:
    return request_reader(request)


Reads = Annotated[Reader, Depends(_reader)]
"""Statements outside a transaction, for requests that only read."""

DATABASE_DEPENDENCIES = (_request_connection, get_engine, _reader)
"""The dependencies through which an operation reaches the database."""
