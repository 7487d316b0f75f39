"""The database of a process: its pools, the handles they lend, readiness, and notifications.

PostgreSQL runs on asyncpg alone (one pool of DB_POOL_SIZE connections per process);
SQLite on SQLAlchemy over aiosqlite, with a pool for reads and one for writes. Nothing
outside `db/` knows which driver runs underneath.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ticketdesk.db.failures import DRIVER_ERRORS, describe_failure
from ticketdesk.db.handle import Db, PostgresDb, SqliteDb
from ticketdesk.errors import ServiceBusy, TicketdeskError
from ticketdesk.metrics import POOL_IN_USE, POOL_WAITING
from ticketdesk.settings import Settings

log = logging.getLogger("ticketdesk")

APPLICATION_NAME = "ticketdesk"
"""How the service's connections are named in pg_stat_activity."""

SQLITE_BUSY_TIMEOUT_MS = 10_000
LISTEN_RETRY_S = (0.2, 0.5, 1.0, 2.0, 5.0)
LISTEN_PING_S = 0.5
"""How often the notification connection is checked, and how long it may take to answer:
a connection that stays silent counts as lost within a second."""
LISTENER_NAME = "ticketdesk-listen"
"""The application_name of the connection that listens for notifications."""

DRIVER_AND_OWN_ERRORS: tuple[type[BaseException], ...] = (*DRIVER_ERRORS, TicketdeskError)
Listener = Callable[[str], None]
StateListener = Callable[[bool], None]


class Database:
    """What a process holds of the database; `handle()` lends one request its `Db`."""

    dialect: str = ""
    secret: str | None = None

    def __init__(self) -> None:
        self._local: dict[str, list[Listener]] = {}
        """This process's listeners, by channel (see `deliver`)."""

    def handle(self) -> Db:
        raise NotImplementedError

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Db]:
        """A handle outside any request (the CLI, background work): committed when it ends."""
        db = self.handle()
        try:
            yield db
        except BaseException:
            await db.finish(commit=False)
            raise
        await db.finish(commit=True)

    async def problem(self, seconds: float) -> str | None:
        """Why requests could not use the database now; None when it answers in `seconds`."""
        try:
            async with asyncio.timeout(seconds) as bound:
                await self._check()
        except DRIVER_AND_OWN_ERRORS as exc:
            if bound.expired():
                return f"no answer within {seconds:g} s"
            return describe_failure(exc, self.secret)
        return None

    async def _check(self) -> None:
        raise NotImplementedError

    def listen(self, channel: str, on_message: Listener, on_state: StateListener) -> bool:
        """Call `on_message` with each notification on `channel`; False where other processes
        cannot send any (this process's own still arrive, see `deliver`).

        `on_state(False)` when the channel is lost (notifications may have been missed),
        `on_state(True)` once it listens again.
        """
        self.listen_here(channel, on_message)
        return False

    def listen_here(self, channel: str, on_message: Listener) -> None:
        """Call `on_message` with each of this process's own notifications on `channel`."""
        self._local.setdefault(channel, []).append(on_message)

    def deliver(self, channel: str, payload: str) -> None:
        """A notification of this process's own, delivered to its listeners at once."""
        for on_message in self._local.get(channel, ()):
            on_message(payload)

    async def close(self, seconds: float) -> None:
        raise NotImplementedError


def session_settings(settings: Settings) -> dict[str, str]:
    """What every PostgreSQL connection sets as it opens."""
    values = {"application_name": APPLICATION_NAME}
    if settings.db_statement_timeout:
        # Cancelled by the server, which rolls the transaction back (a 503).
        values["statement_timeout"] = str(max(1, round(settings.db_statement_timeout * 1000)))
    return values


COMMAND_GRACE_S = 1.0
"""How much longer than DB_STATEMENT_TIMEOUT the driver waits for any answer: the server
cancels a slow statement itself; a hung server (stopped, not refusing) cannot, and this
bounds the requests that hold its connections."""


RELEASE_TIMEOUT_S = 1.0
"""A connection given back is reset (a ROLLBACK at most) within this, or closed."""


def command_timeout(settings: Settings) -> float:
    statement = settings.db_statement_timeout or settings.db_pool_timeout
    return statement + COMMAND_GRACE_S


async def _rollback_if_open(conn: asyncpg.Connection) -> None:
    """The pool's reset: a request never changes session state, only leaves a failed transaction."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


class PostgresDatabase(Database):
    dialect = "postgresql"

    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        super().__init__()
        self.pool = pool
        self.settings = settings
        self.secret = settings.database.password
        self._acquire_timeout = settings.db_pool_timeout
        self._channels: dict[str, tuple[Listener, StateListener]] = {}
        self._listener: asyncio.Task[None] | None = None  # one connection for every channel

    @classmethod
    async def open(cls, settings: Settings) -> PostgresDatabase:
        pool = await asyncpg.create_pool(
            cls.dsn(settings),
            min_size=0,  # connect on first use: the service starts while the database is away
            max_size=settings.db_pool_size,
            reset=_rollback_if_open,
            timeout=settings.db_connect_timeout,
            max_inactive_connection_lifetime=3600,
            server_settings=session_settings(settings),
            command_timeout=command_timeout(settings),
        )
        return cls(pool, settings)

    @staticmethod
    def dsn(settings: Settings) -> str:
        url = settings.database.set(drivername="postgresql")
        return url.render_as_string(hide_password=False)

    def handle(self) -> Db:
        return PostgresDb(self)

    async def acquire(self) -> Any:
        if self.pool.get_idle_size():
            conn = await self.pool.acquire()  # an idle connection is handed over at once
            POOL_IN_USE.inc()
            return conn
        # Not acquire(timeout=): that runs the wait in a task of its own.
        POOL_WAITING.inc()
        try:
            async with asyncio.timeout(self._acquire_timeout) as waited:
                conn = await self.pool.acquire()
        except TimeoutError:
            if not waited.expired():
                raise  # opening a connection took DB_CONNECT_TIMEOUT: the database is away
            log.warning("no database connection free within the pool timeout")
            raise ServiceBusy() from None
        finally:
            POOL_WAITING.dec()
        POOL_IN_USE.inc()
        return conn

    async def release(self, conn: Any) -> None:
        POOL_IN_USE.dec()
        try:
            # Bounded: a hung server must not hold the request while its connection resets;
            # past the timeout asyncpg closes the connection instead.
            await self.pool.release(conn, timeout=RELEASE_TIMEOUT_S)
        except DRIVER_ERRORS as exc:  # its rollback failed: the connection is closed instead
            log.warning("a connection could not be reset: %s", describe_failure(exc, self.secret))
            with contextlib.suppress(asyncpg.InterfaceError):  # the pool closed it already
                conn.terminate()

    async def _check(self) -> None:
        conn = await self.acquire()
        try:
            await conn.execute("SELECT 1")
        except BaseException:
            conn.terminate()  # no answer (or a broken one): never waited for again
            raise
        finally:
            POOL_IN_USE.dec()
            await self.pool.release(conn)

    def listen(self, channel: str, on_message: Listener, on_state: StateListener) -> bool:
        super().listen(channel, on_message, on_state)
        self._channels[channel] = (on_message, on_state)
        # One connection for every channel: (re)started so that it listens to this one too.
        if self._listener is not None:
            self._listener.cancel()
        self._listener = asyncio.get_running_loop().create_task(
            self._listen(dict(self._channels)), name="listen"
        )
        return True

    async def _listen(self, channels: dict[str, tuple[Listener, StateListener]]) -> None:
        """A connection of its own, outside the pool, LISTENing; reopened whenever it is lost."""
        listening = False

        def tell(state: bool) -> None:
            for _, on_state in channels.values():
                on_state(state)

        def deliver(_conn: Any, _pid: int, channel: str, payload: str) -> None:
            channels[channel][0](payload)

        def lost(_conn: Any) -> None:
            nonlocal listening
            if listening:  # at once, not at the next check
                listening = False
                tell(False)

        failures = 0
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    self.dsn(self.settings),
                    timeout=self.settings.db_connect_timeout,
                    server_settings={
                        **session_settings(self.settings),
                        "application_name": LISTENER_NAME,
                    },
                )
                conn.add_termination_listener(lost)
                for channel in channels:
                    await conn.add_listener(channel, deliver)
                failures = 0
                listening = True
                tell(True)
                while True:  # a dead connection must not pass for a quiet one
                    await asyncio.sleep(LISTEN_PING_S)
                    async with asyncio.timeout(LISTEN_PING_S):
                        await conn.execute("SELECT 1")
            except asyncio.CancelledError:
                raise
            except DRIVER_AND_OWN_ERRORS as exc:
                listening = False
                tell(False)
                log.warning(
                    "notification channels %s lost: %s",
                    ", ".join(channels),
                    describe_failure(exc, self.secret),
                )
            finally:
                if conn is not None:
                    conn.terminate()
            await asyncio.sleep(LISTEN_RETRY_S[min(failures, len(LISTEN_RETRY_S) - 1)])
            failures += 1

    async def close(self, seconds: float) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        try:
            async with asyncio.timeout(seconds):
                await self.pool.close()
        except TimeoutError:
            log.warning("the connection pool did not close within %g s", seconds)
            self.pool.terminate()


class SqliteDatabase(Database):
    dialect = "sqlite"

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.readers = _sqlite_engine(settings, serialize_writers=False)
        self.writers = _sqlite_engine(settings, serialize_writers=True)

    def handle(self) -> Db:
        return SqliteDb(self)

    async def _check(self) -> None:
        for engine in (self.readers, self.writers):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

    async def close(self, seconds: float) -> None:
        for engine in (self.readers, self.writers):
            try:
                async with asyncio.timeout(seconds):
                    await engine.dispose()
            except TimeoutError:
                log.warning("an SQLite pool did not close within %g s", seconds)


def _sqlite_engine(settings: Settings, *, serialize_writers: bool) -> AsyncEngine:
    """WAL, foreign keys, and every writer's transaction takes the write lock when it begins.

    A deferred transaction that reads and then writes fails at once with SQLITE_BUSY
    when another writer got in between; BEGIN IMMEDIATE waits for the lock instead.
    """
    engine = create_async_engine(
        settings.database,
        pool_size=settings.db_pool_size,
        max_overflow=0,
        pool_timeout=settings.db_pool_timeout,
        hide_parameters=True,
    )

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

    return engine


async def open_database(settings: Settings) -> Database:
    if settings.is_sqlite:
        return SqliteDatabase(settings)
    return await PostgresDatabase.open(settings)
