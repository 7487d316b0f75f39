"""The one exception hierarchy of ticketdesk, and its one mapping to HTTP."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("ticketdesk")


class TicketdeskError(Exception):
    """A failure the client can act on; `status_code` is its HTTP status."""

    status_code = 500
    default_detail = "internal server error"
    headers: ClassVar[dict[str, str] | None] = None

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.default_detail
        super().__init__(self.detail)

    def response_headers(self) -> dict[str, str] | None:
        return self.headers


class BadRequest(TicketdeskError):
    status_code = 400
    default_detail = "bad request"


class Unauthorized(TicketdeskError):
    status_code = 401
    default_detail = "not authenticated"
    headers: ClassVar[dict[str, str] | None] = {"WWW-Authenticate": "Bearer"}


class Forbidden(TicketdeskError):
    status_code = 403
    default_detail = "not allowed"


class NotFound(TicketdeskError):
    status_code = 404
    default_detail = "not found"


class Conflict(TicketdeskError):
    status_code = 409
    default_detail = "conflict"


class IdempotencyKeyReused(TicketdeskError):
    status_code = 422
    default_detail = "this Idempotency-Key was used with another request"


class TooManyRequests(TicketdeskError):
    """A rate limit is spent: retry after `retry_after_s` seconds."""

    status_code = 429

    def __init__(self, *, retry_after_s: int, headers: dict[str, str]) -> None:
        super().__init__(f"too many requests; retry in {retry_after_s} s")
        self._headers = {**headers, "Retry-After": str(retry_after_s)}

    def response_headers(self) -> dict[str, str] | None:
        return self._headers


class ServiceBusy(TicketdeskError):
    """Every pooled connection stayed busy for DB_POOL_TIMEOUT seconds: overloaded, not broken."""

    status_code = 503
    default_detail = "the service is busy; retry shortly"
    headers: ClassVar[dict[str, str] | None] = {"Retry-After": "1"}


class DatabaseUnavailable(TicketdeskError):
    """The database could not be reached in DB_CONNECT_TIMEOUT, or the connection to it broke."""

    status_code = 503
    default_detail = "the database is unavailable; retry shortly"
    headers: ClassVar[dict[str, str] | None] = {"Retry-After": "2"}


class StatementTimeout(TicketdeskError):
    """A statement ran past DB_STATEMENT_TIMEOUT and was cancelled; its transaction rolled back.

    503 rather than 504: the service is the origin, not a gateway, and 503 with Retry-After
    is what clients and proxies already retry on.
    """

    status_code = 503
    default_detail = "the database took too long to answer; retry shortly"
    headers: ClassVar[dict[str, str] | None] = {"Retry-After": "2"}


# Raised when a connection cannot be opened or breaks: refused, reset, timed out (all OSError),
# the server shutting down or starting up (57P01-57P03), full (53300), or gone (class 08).
_CONNECTION_FAILURES = (
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


def database_failure(exc: BaseException) -> TicketdeskError | None:
    """What a driver's exception means to a client, if it is an outage or a timeout."""
    if isinstance(exc, DatabaseUnavailable | StatementTimeout):
        return exc
    cause: BaseException | None = exc
    if isinstance(exc, DBAPIError):
        # SQLAlchemy wraps the asyncpg adapter's error, which wraps asyncpg's own.
        cause = (exc.orig.__cause__ or exc.orig) if exc.orig is not None else None
    if isinstance(cause, asyncpg.QueryCanceledError):
        return StatementTimeout()
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return DatabaseUnavailable()
    if isinstance(cause, _CONNECTION_FAILURES) and not isinstance(
        cause, asyncpg.ClientConfigurationError
    ):
        return DatabaseUnavailable()
    return None


def describe_failure(exc: BaseException, secret: str | None = None) -> str:
    """One line on what went wrong, from the driver's own error: never the SQL, nor `secret`."""
    cause = exc.__cause__ if isinstance(exc, DatabaseUnavailable | StatementTimeout) else exc
    if isinstance(cause, DBAPIError) and cause.orig is not None:
        cause = cause.orig.__cause__ or cause.orig
    if cause is None:
        return type(exc).__name__
    text = " ".join(str(cause).split())[:200]
    if secret:
        text = text.replace(secret, "***")
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


class ErrorOut(BaseModel):
    detail: str


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    detail: list[FieldError]


_DESCRIPTIONS = {
    400: "Malformed JSON, a wrong type, or a missing or out-of-range field",
    401: "No token, or a token that is invalid, expired or revoked",
    403: "Authenticated, but the role does not allow this",
    404: "No such object, or not one the caller may see",
    409: "The object's state does not allow this change",
    413: "The request body is larger than the configured limit",
    422: "The Idempotency-Key was used before with another request",
    429: "A rate limit is spent; Retry-After says when to try again",
}


_HEADERS = {
    401: {
        "WWW-Authenticate": {
            "description": "How to authenticate: with a Bearer token",
            "required": True,
            "schema": {"type": "string", "enum": ["Bearer"]},
        }
    },
}


DATABASE_ERRORS: dict[str, Any] = {
    "description": "The database is unavailable, busy, or too slow to answer. "
    "Retry after the seconds in Retry-After.",
    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
}
"""The OpenAPI response of every operation that reaches the database (app.py adds it)."""


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI descriptions of the errors an operation can answer with."""
    return {
        code: {
            "model": ValidationErrorOut | ErrorOut if code == 400 else ErrorOut,
            "description": _DESCRIPTIONS[code],
            **({"headers": _HEADERS[code]} if code in _HEADERS else {}),
        }
        for code in codes
    }


def _json(status: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


async def _ticketdesk_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TicketdeskError)
    return _json(exc.status_code, exc.detail, exc.response_headers())


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Only location, message and type: the offending input may be a password.
    fields = [
        {
            "loc": list(err.get("loc", ())),
            "msg": err.get("msg", ""),
            "type": err.get("type", ""),
        }
        for err in exc.errors()
    ]
    return _json(400, fields)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(sorted(_allowed_methods(request)))
    return _json(exc.status_code, exc.detail, headers)


async def _data_error(request: Request, exc: Exception) -> JSONResponse:
    # Input validation keeps such values out; this is the net below it.
    log.warning("database refused a value: %s", type(exc).__name__)
    return _json(400, "the database refused a value in the request")


async def _pool_exhausted(request: Request, exc: Exception) -> JSONResponse:
    log.warning("no database connection free within the pool timeout")
    return await _ticketdesk_error(request, ServiceBusy())


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """An outage or a cancelled statement: 503, and one warning line without the password."""
    failure = database_failure(exc)
    if failure is None:
        return await _unexpected_error(request, exc)
    password = request.app.state.settings.database.password
    log.warning(
        "%s on %s %s: %s",
        failure.detail.split(";")[0],
        request.method,
        request.url.path,
        describe_failure(exc, password),
    )
    return _json(failure.status_code, failure.detail, failure.headers)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _json(500, "internal server error")


def _allowed_methods(request: Request) -> set[str]:
    """Every method some route accepts on this path (Starlette names only the first route's)."""
    path = request.scope["path"]
    methods: set[str] = set()
    for route in request.app.state.api_routes:
        if route.path_regex.match(path):
            methods |= route.methods
    return methods


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TicketdeskError, _ticketdesk_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(PoolTimeout, _pool_exhausted)
    # Driver errors are looked at more closely: an outage or a timeout is 503, others 500.
    for failure in (
        DatabaseUnavailable,
        StatementTimeout,
        DBAPIError,
        *_CONNECTION_FAILURES,
        asyncpg.QueryCanceledError,
    ):
        app.add_exception_handler(failure, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)
