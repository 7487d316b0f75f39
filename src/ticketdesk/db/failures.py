"""What the drivers' exceptions mean: the only place that knows asyncpg's and SQLAlchemy's errors.

Every exception a statement raises leaves the data layer as a `TicketdeskError` (an outage,
a timeout, a refused value, a busy pool) or as `UniqueViolation`, which repositories turn
into what it means for their feature.
"""

from __future__ import annotations

import asyncpg
from sqlalchemy.exc import DataError as SQLAlchemyDataError
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from ticketdesk.errors import (
    BadRequest,
    DatabaseUnavailable,
    ServiceBusy,
    StatementTimeout,
    TicketdeskError,
)


class UniqueViolation(Exception):
    """A row with the same unique key exists already."""


# Raised when a connection cannot be opened or breaks: refused, reset, timed out (all OSError),
# the server shutting down or starting up (57P01-57P03), full (53300), or gone (class 08).
CONNECTION_FAILURES: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    # A connection the server has just dropped, before the driver noticed: "connection is
    # closed", "pool is closing", or "another operation is in progress" from its protocol.
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)

DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    *CONNECTION_FAILURES,
    asyncpg.PostgresError,
    SQLAlchemyError,
    TimeoutError,
)
"""Everything a statement, a checkout or a commit may raise besides our own errors."""

REFUSED_VALUE = "the database refused a value in the request"


def translate(exc: BaseException, secret: str | None = None) -> BaseException:
    """The exception a driver's failure stands for, to raise in its place."""
    if isinstance(exc, TicketdeskError):
        return exc
    cause: BaseException | None = exc
    if isinstance(exc, DBAPIError):
        # SQLAlchemy wraps the aiosqlite or asyncpg adapter's error, which wraps the driver's.
        cause = (exc.orig.__cause__ or exc.orig) if exc.orig is not None else None
    if isinstance(cause, asyncpg.UniqueViolationError) or (
        isinstance(exc, IntegrityError) and "UNIQUE" in str(exc.orig)
    ):
        return UniqueViolation()
    if isinstance(cause, asyncpg.QueryCanceledError):
        return _with_reason(StatementTimeout(), exc, secret)
    if isinstance(exc, PoolTimeout):
        return ServiceBusy()
    if isinstance(cause, asyncpg.DataError) or isinstance(exc, SQLAlchemyDataError):
        return BadRequest(REFUSED_VALUE)
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return _with_reason(DatabaseUnavailable(), exc, secret)
    if isinstance(cause, CONNECTION_FAILURES) and not isinstance(
        cause, asyncpg.ClientConfigurationError
    ):
        return _with_reason(DatabaseUnavailable(), exc, secret)
    return exc


def _with_reason(error: TicketdeskError, exc: BaseException, secret: str | None) -> TicketdeskError:
    error.reason = describe_failure(exc, secret)
    return error


def database_failure(exc: BaseException) -> TicketdeskError | None:
    """What a driver's exception means to a client, if it is an outage or a timeout."""
    failure = translate(exc)
    return failure if isinstance(failure, DatabaseUnavailable | StatementTimeout) else None


def describe_failure(exc: BaseException, secret: str | None = None) -> str:
    """One line on what went wrong, from the driver's own error: never the SQL, nor `secret`."""
    if isinstance(exc, TicketdeskError) and exc.reason:
        return exc.reason
    cause = exc.__cause__ if isinstance(exc, DatabaseUnavailable | StatementTimeout) else exc
    if isinstance(cause, DBAPIError) and cause.orig is not None:
        cause = cause.orig.__cause__ or cause.orig
    if cause is None:
        return type(exc).__name__
    text = " ".join(str(cause).split())[:200]
    if secret:
        text = text.replace(secret, "***")
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__
