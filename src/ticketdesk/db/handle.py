"""`Db`: one request's way to the database, the same interface on every backend.

A handle reads without a transaction. The first statement that writes (or takes a row lock)
opens the request's transaction, and every later statement runs inside it, reads included,
so they see what the request wrote. `finish` commits it once, or rolls it back, and gives
the connection back. A statement marked atomic is a whole unit of work by itself: outside a
transaction it runs on its own, with no BEGIN and COMMIT round trips.

Rows come back as tuples in the order of the statement's columns; repositories turn them
into their own typed rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Hashable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias

from sqlalchemy.ext.asyncio import AsyncConnection

from ticketdesk.db.batches import Batches, Item, Result, Run
from ticketdesk.db.failures import DRIVER_ERRORS, translate
from ticketdesk.db.statements import Statement
from ticketdesk.metrics import POOL_IN_USE

if TYPE_CHECKING:
    from ticketdesk.db.database import Database, PostgresDatabase, SqliteDatabase

log = logging.getLogger("ticketdesk")

Row: TypeAlias = Sequence[Any]
"""A result row: its columns in the order the statement selects them."""

NO_PARAMS: Mapping[str, Any] = {}


def row_as_json(row: Any) -> dict[str, Any]:
    """A typed row (a named tuple) as JSON values: its times in ISO 8601 (for the CLI's --json)."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row._asdict().items()}


class Db:
    """The request-scoped database handle that services receive."""

    __slots__ = ("_after_commit", "_autocommitted", "_database", "_in_transaction")

    dialect: str = ""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._in_transaction = False
        self._autocommitted = False
        self._after_commit: list[Callable[[], None]] = []

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call `callback` once what the request wrote is committed: at once if it already is."""
        if self._in_transaction:
            self._after_commit.append(callback)
        else:
            callback()

    def _committed(self) -> None:
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    async def all(self, statement: Statement, params: Mapping[str, Any] = NO_PARAMS) -> list[Row]:
        raise NotImplementedError

    async def execute(self, statement: Statement, params: Mapping[str, Any] = NO_PARAMS) -> int:
        """Run a statement for its effect; the number of rows it changed."""
        raise NotImplementedError

    async def first(
        self, statement: Statement, params: Mapping[str, Any] = NO_PARAMS
    ) -> Row | None:
        rows = await self.all(statement, params)
        return rows[0] if rows else None

    async def scalar(self, statement: Statement, params: Mapping[str, Any] = NO_PARAMS) -> Any:
        """The first column of the first row."""
        rows = await self.all(statement, params)
        return rows[0][0]

    async def begin(self) -> None:
        """Open the transaction now, before the first write (a no-op if it is open)."""
        raise NotImplementedError

    @property
    def in_transaction(self) -> bool:
        return self._in_transaction

    def notify(self, channel: str, payload: str) -> None:
        """Deliver `payload` to this process's listeners on `channel` once the writes commit.

        Other processes hear of it from the database (a NOTIFY in the same transaction,
        which the repository sends); this process must not wait for that round trip.
        """
        database = self._database
        self.after_commit(lambda: database.deliver(channel, payload))

    async def finish(self, *, commit: bool) -> None:
        """Commit (or roll back) the transaction, if one is open, and give back the connection."""
        raise NotImplementedError

    async def batch(
        self, batches: Batches[Item, Result], key: Hashable, item: Item, run: Run[Item, Result]
    ) -> Result:
        """`item`'s result, its write run in a batch of `key`'s (`db/batches.py`).

        The request's connection comes first: were it taken when the batch runs, requests
        waiting for their batch while holding a connection (from an earlier read) could
        hold them all, and the request that runs the batch would wait for the pool in vain.
        A request inside a transaction runs its write alone: a batch would commit with it,
        or roll back with it.
        """
        if self._in_transaction:
            return (await run(item, [item]))[0]
        await self._hold_connection()
        return await batches.submit(key, item, run)

    async def _hold_connection(self) -> None:
        """Take the request's connection now, where a backend takes one per request."""

    def _needs_transaction(self, statement: Statement) -> bool:
        if not statement.writes or self._in_transaction:
            return False
        if statement.atomic:
            # A unit of work by itself; nothing may follow it that it should commit with.
            self._autocommitted = True
            return False
        if self._autocommitted:
            raise RuntimeError("a write after an atomic statement: open the transaction first")
        return True


class PostgresDb(Db):
    """asyncpg: one pooled connection for the whole request, taken at its first statement."""

    __slots__ = ("_conn",)
    dialect = "postgresql"
    _database: PostgresDatabase

    def __init__(self, database: PostgresDatabase) -> None:
        super().__init__(database)
        self._conn: Any = None

    async def _connection(self) -> Any:
        if self._conn is None:
            self._conn = await self._database.acquire()
        return self._conn

    async def _hold_connection(self) -> None:
        try:
            await self._connection()
        except DRIVER_ERRORS as exc:
            raise translate(exc, self._database.secret) from exc

    async def _ready_for(self, statement: Statement | None) -> Any:
        """The request's connection, inside its transaction if the statement needs one
        (None: `begin`, which has checked that a transaction may be opened)."""
        conn = self._conn or await self._connection()
        if statement is None or self._needs_transaction(statement):
            await conn.execute("BEGIN")
            self._in_transaction = True
        return conn

    async def all(self, statement: Statement, params: Mapping[str, Any] = NO_PARAMS) -> list[Row]:
        sql, args = statement.for_postgres(params)
        try:
            conn = await self._ready_for(statement)
            rows: list[Row] = await conn.fetch(sql, *args)
        except DRIVER_ERRORS as exc:
            raise translate(exc, self._database.secret) from exc
        return rows

    async def execute(self, statement: Statement, params: Mapping[str, Any] = NO_PARAMS) -> int:
        sql, args = statement.for_postgres(params)
        try:
            conn = await self._ready_for(statement)
            status: str = await conn.execute(sql, *args)
        except DRIVER_ERRORS as exc:
            raise translate(exc, self._database.secret) from exc
        count = status.rpartition(" ")[2]
        return int(count) if count.isdigit() else 0

    async def begin(self) -> None:
        if self._in_transaction:
            return
        if self._autocommitted:
            raise RuntimeError("begin after an atomic statement")
        try:
            await self._ready_for(None)
        except DRIVER_ERRORS as exc:
            raise translate(exc, self._database.secret) from exc

    async def finish(self, *, commit: bool) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if self._in_transaction and commit:
                try:
                    await conn.execute("COMMIT")
                except DRIVER_ERRORS as exc:
                    raise translate(exc, self._database.secret) from exc
                self._committed()
            elif self._in_transaction:
                # Not left to the pool's reset, which logs each one as an error.
                await _quietly_roll_back(conn)
        finally:
            self._in_transaction = False
            self._after_commit.clear()
            # The pool's reset rolls back a transaction still open (a cancellation).
            await self._database.release(conn)


async def _quietly_roll_back(conn: Any) -> None:
    with contextlib.suppress(*DRIVER_ERRORS):  # a broken connection: the pool's release closes it
        await conn.execute("ROLLBACK")


class SqliteDb(Db):
    """SQLAlchemy on aiosqlite: reads on a pool of their own, writes on the writers' pool.

    A write transaction takes SQLite's write lock as it begins (BEGIN IMMEDIATE), so two
    writers queue instead of failing. Reads outside it need no transaction: each statement
    reads one consistent snapshot.
    """

    __slots__ = ("_reader", "_writer")
    dialect = "sqlite"
    _database: SqliteDatabase

    def __init__(self, database: SqliteDatabase) -> None:
        super().__init__(database)
        self._reader: AsyncConnection | None = None
        self._writer: AsyncConnection | None = None

    async def _run(self, statement: Statement, params: Mapping[str, Any]) -> Any:
        try:
            if statement.writes and self._writer is None:
                await self.begin()  # atomic or not: SQLite has no single-statement shortcut
            if self._writer is not None:
                conn = self._writer
            else:
                if self._reader is None:
                    self._reader = await self._database.readers.connect()
                    POOL_IN_USE.inc()
                conn = self._reader
            return await conn.execute(statement.for_sqlite(), dict(params))  # type: ignore[call-overload]
        except DRIVER_ERRORS as exc:
            raise translate(exc) from exc

    async def all(self, statement: Statement, params: Mapping[str, Any] = NO_PARAMS) -> list[Row]:
        result = await self._run(statement, params)
        return list(result.all()) if result.returns_rows else []

    async def execute(self, statement: Statement, params: Mapping[str, Any] = NO_PARAMS) -> int:
        result = await self._run(statement, params)
        return int(result.rowcount)

    async def begin(self) -> None:
        if self._writer is not None:
            return
        try:
            writer = await self._database.writers.connect()
            try:
                await writer.begin()  # BEGIN IMMEDIATE: see database.py
            except BaseException:
                await writer.close()
                raise
        except DRIVER_ERRORS as exc:
            raise translate(exc) from exc
        self._writer = writer
        self._in_transaction = True
        POOL_IN_USE.inc()

    async def finish(self, *, commit: bool) -> None:
        reader, writer = self._reader, self._writer
        self._reader = self._writer = None
        self._in_transaction = False
        try:
            if writer is not None:
                try:
                    if commit:
                        await writer.commit()
                        self._committed()
                    else:
                        await writer.rollback()
                except DRIVER_ERRORS as exc:
                    raise translate(exc) from exc
                finally:
                    self._after_commit.clear()
                    POOL_IN_USE.dec()
                    await asyncio.shield(writer.close())
        finally:
            if reader is not None:
                POOL_IN_USE.dec()
                await asyncio.shield(reader.close())
