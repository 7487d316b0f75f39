"""The one exception hierarchy of ticketdesk, and its one mapping to HTTP."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError
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

    def __init__(self, *, retry_after_s: int, headers: dict[str, str], rule: str) -> None:
        super().__init__(f"too many requests; retry in {retry_after_s} s")
        self.rule = rule
        self._headers = {**headers, "Retry-After": str(retry_after_s)}

    def response_headers(self) -> dict[str, str] | None:
        return self._headers


class ServiceBusy(TicketdeskError):
    """Every pooled connection stayed busy for DB_POOL_TIMEOUT seconds: overloaded, not broken."""

    status_code = 503
    default_detail = "the service is busy; retry shortly"
    headers: ClassVar[dict[str, str] | None] = {"Retry-After": "1"}


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
    app.add_exception_handler(Exception, _unexpected_error)
