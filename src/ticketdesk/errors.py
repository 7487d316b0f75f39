"""The one exception hierarchy of ticketdesk; `web/errors.py` maps it to HTTP."""

from __future__ import annotations

from typing import ClassVar


class TicketdeskError(Exception):
    """A failure the client can act on; `status_code` is its HTTP status."""

    status_code = 500
    default_detail = "internal server error"
    headers: ClassVar[dict[str, str] | None] = None
    reason: str | None = None
    """For the log, not the client: what the database said, for an outage or a timeout."""

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


NO_TICKET = "no such ticket"
"""A ticket that does not exist, or that the caller may not see: the two read alike."""


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


class PayloadTooLarge(TicketdeskError):
    status_code = 413
    default_detail = "request body too large"
