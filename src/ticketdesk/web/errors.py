"""The one mapping of errors to HTTP answers, and their OpenAPI descriptions."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from ticketdesk.errors import DatabaseUnavailable, StatementTimeout, TicketdeskError

log = logging.getLogger("ticketdesk")


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


async def _ticketdesk_error_logged(request: Request, exc: Exception) -> JSONResponse:
    """An outage or a cancelled statement: 503, and one warning line without the password."""
    assert isinstance(exc, TicketdeskError)
    log.warning(
        "%s on %s %s: %s",
        exc.detail.split(";")[0],
        request.method,
        request.url.path,
        exc.reason or type(exc).__name__,
    )
    return await _ticketdesk_error(request, exc)


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
    if "GET" in methods:
        methods.add("HEAD")  # answered as GET without the body (web/middleware.py)
    return methods


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TicketdeskError, _ticketdesk_error)
    for failure in (DatabaseUnavailable, StatementTimeout):
        app.add_exception_handler(failure, _ticketdesk_error_logged)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
