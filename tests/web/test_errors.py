"""Which driver errors are an outage or a timeout (503), and what is logged of them."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi
from sqlalchemy.exc import DBAPIError, IntegrityError

from ticketdesk.db.failures import database_failure, describe_failure
from ticketdesk.errors import DatabaseUnavailable, StatementTimeout

SQL = "SELECT secret_column FROM users"


def through_sqlalchemy(error: Exception, *, invalidated: bool = False) -> DBAPIError:
    """`error` as SQLAlchemy raises it: wrapped by the asyncpg adapter, then by SQLAlchemy."""
    adapted = AsyncAdapt_asyncpg_dbapi.Error(str(error), error)
    adapted.__cause__ = error
    wrapped = DBAPIError.instance(
        SQL, {}, adapted, AsyncAdapt_asyncpg_dbapi.Error, connection_invalidated=invalidated
    )
    assert isinstance(wrapped, DBAPIError)
    return wrapped


OUTAGES = [
    ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)"),
    ConnectionResetError(104, "Connection reset by peer"),
    TimeoutError(),  # no answer within DB_CONNECT_TIMEOUT
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.CrashShutdownError("terminating connection because of crash of another process"),
    asyncpg.TooManyConnectionsError("sorry, too many clients already"),
    asyncpg.InterfaceError("connection is closed"),
    asyncpg.InternalClientError("cannot switch to state 12; another operation is in progress"),
]
NOT_OUTAGES = [
    ValueError("nothing to do with the database"),
    asyncpg.UniqueViolationError("duplicate key value violates unique constraint"),
    asyncpg.ClientConfigurationError("invalid DATABASE_URL"),
    asyncpg.InvalidPasswordError("password authentication failed"),
]


@pytest.mark.parametrize("error", OUTAGES, ids=lambda e: type(e).__name__)
def test_connection_failures_are_an_outage_raw_or_wrapped(error: Exception) -> None:
    assert isinstance(database_failure(error), DatabaseUnavailable)
    assert isinstance(database_failure(through_sqlalchemy(error)), DatabaseUnavailable)


@pytest.mark.parametrize("error", NOT_OUTAGES, ids=lambda e: type(e).__name__)
def test_other_errors_are_not_an_outage(error: Exception) -> None:
    assert database_failure(error) is None
    assert database_failure(through_sqlalchemy(error)) is None


def test_any_error_on_a_connection_sqlalchemy_found_broken_is_an_outage() -> None:
    error = through_sqlalchemy(RuntimeError("unexpected"), invalidated=True)
    assert isinstance(database_failure(error), DatabaseUnavailable)


def test_a_cancelled_statement_is_a_timeout() -> None:
    cancelled = asyncpg.QueryCanceledError("canceling statement due to statement timeout")
    for error in (cancelled, through_sqlalchemy(cancelled, invalidated=True)):
        failure = database_failure(error)
        assert isinstance(failure, StatementTimeout)
        assert (failure.status_code, failure.headers) == (503, {"Retry-After": "2"})


def test_integrity_errors_keep_their_own_meaning() -> None:
    error = IntegrityError(SQL, {}, asyncpg.UniqueViolationError("duplicate"))
    assert database_failure(error) is None


def test_the_description_names_the_driver_error_but_not_the_sql_nor_the_secret() -> None:
    refused = OSError(111, "Connect call failed for postgresql://u:hunter2@db:5432/x")
    wrapped = through_sqlalchemy(asyncpg.AdminShutdownError("terminating connection"))
    assert describe_failure(refused, "hunter2") == (
        "ConnectionRefusedError: [Errno 111] Connect call failed for postgresql://u:***@db:5432/x"
    )
    assert describe_failure(wrapped) == "AdminShutdownError: terminating connection"
    raised = DatabaseUnavailable()
    raised.__cause__ = TimeoutError()
    assert describe_failure(raised) == "TimeoutError"
