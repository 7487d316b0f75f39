"""Pure ASGI middleware: cheap enough to sit in front of every request."""

from __future__ import annotations

from collections.abc import Callable
from os import urandom
from time import perf_counter

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ticketdesk.logs import LOG_FIELDS, REQUEST_ID, log_request, request_fields, request_id
from ticketdesk.metrics import record_request
from ticketdesk.web.headers import WRITE_METHODS, BrowserPolicy
from ticketdesk.web.ratelimits import STORE_BUDGET, fresh_store_budget

_JSON = b"application/json"
_MULTIPART = b"multipart/form-data"
_URLENCODED = b"application/x-www-form-urlencoded"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
TOO_LARGE = "request body too large"
FOREIGN_WRITE = "a write from another site may not use the session cookie"


class RequestEdge:
    """What every HTTP request meets first and every response passes last.

    - A request id: the client's `X-Request-ID` when it is sane, else a new one; echoed
      in the response, and set for every line logged while handling the request.
    - The security headers of `BrowserPolicy`, on every response, errors included.
    - 403 for a write the session cookie authenticates from another site.
    - 413 for a body over `max_bytes`: by Content-Length before reading, or by counting.
      (FastAPI's own limit answers in plain text; this keeps every error JSON.)
    - Requests read the way the old service read them: `/tickets/1/` is `/tickets/1` (a
      redirect would make clients drop POST bodies), and every body is JSON whatever its
      Content-Type says (`curl -d` sends a form type; the cookie is SameSite=Lax, so a
      cross-site form cannot carry it). Only where `forms` names a limit for the method,
      path and kind of form (multipart or not) is a form body read as such, up to that
      limit: the browser pages' forms, and messages with files.
    - One JSON line when the request is done, and a security event when its answer is one.

    One middleware rather than several: each layer costs calls and closures per request.
    It wraps the whole app, outside Starlette's error middleware, so that a 500 gets the
    headers and the log line too.
    """

    def __init__(
        self,
        app: ASGIApp,
        policy: BrowserPolicy,
        max_bytes: int,
        forms: Callable[[str, str, bool], int | None] = lambda method, path, multipart: None,
    ) -> None:
        self.app = app
        self.policy = policy
        self.max_bytes = max_bytes
        self.forms = forms
        self.refusal = JSONResponse({"detail": FOREIGN_WRITE}, status_code=403)
        self.too_large = JSONResponse({"detail": TOO_LARGE}, status_code=413)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = perf_counter()
        method: str = scope["method"]
        path: str = scope["path"]
        given = None
        declared = b"0"
        multipart = urlencoded = False
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given = request_id(value)
            elif name == b"content-length":
                declared = value
            elif name == b"content-type":
                kind = value.lower()
                multipart = kind.startswith(_MULTIPART)
                urlencoded = kind.startswith(_URLENCODED)
        max_bytes = self.max_bytes
        form = False
        if multipart or urlencoded:
            form_limit = self.forms(method, path, multipart)
            form = form_limit is not None
            max_bytes = form_limit or max_bytes
        declared_too_large = not declared.isdigit() or int(declared) > max_bytes
        rid = given.decode() if given else urandom(16).hex()
        client = scope.get("client")
        fields = request_fields(rid, method, path, client[0] if client else None)
        added = [*self.policy.headers_for(path), (b"x-request-id", given or rid.encode())]
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *added]
            await send(message)

        event = None
        inner: Scope | None = None
        reset = REQUEST_ID.set(rid)
        fresh_budget = STORE_BUDGET.set(fresh_store_budget())
        try:
            if method in WRITE_METHODS and self.policy.is_foreign_cookie_write(scope):
                event = "cross_site_write"
                await self.refusal(scope, receive, send_with_headers)
            elif declared_too_large:
                await self.too_large(scope, receive, send_with_headers)
            else:
                scope = self._as_the_old_service_read_it(scope, path, method, form)
                scope[LOG_FIELDS] = fields
                if method == "HEAD":
                    inner = scope = dict(scope, method="GET")
                    await self.app(scope, receive, _without_body(send_with_headers))
                    return
                if method != "GET":
                    receive = self._counting(receive, max_bytes)
                inner = scope
                await self.app(scope, receive, send_with_headers)
        finally:
            REQUEST_ID.reset(reset)
            STORE_BUDGET.reset(fresh_budget)
            took = perf_counter() - start
            fields["status"] = status
            fields["duration_ms"] = round(took * 1000, 3)
            log_request(fields, event)
            route = inner.get("route") if inner is not None else None
            record_request(method, getattr(route, "path", "unmatched"), status, took)

    @staticmethod
    def _as_the_old_service_read_it(scope: Scope, path: str, method: str, form: bool) -> Scope:
        if len(path) > 1 and path.endswith("/"):
            stripped = path.rstrip("/") or "/"
            scope = dict(scope, path=stripped, raw_path=stripped.encode())
        if method in _BODY_METHODS and not form:
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            scope = dict(scope, headers=[*headers, (b"content-type", _JSON)])
        return scope

    @staticmethod
    def _counting(receive: Receive, max_bytes: int) -> Receive:
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    # Raised inside the request handler, so the error handlers answer it.
                    raise HTTPException(413, TOO_LARGE)
            return message

        return counting_receive


def _without_body(send: Send) -> Send:
    """HEAD: the GET's status and headers (its Content-Length too), and the response ends there.

    It ends with its head, not when the GET's body would: an event stream's body never does,
    and the connection's next request would wait for it. The body the app goes on sending
    is dropped; the server then tells the app that the client is gone (`http.disconnect`,
    as for any finished response), which stops a streaming body.
    """

    async def send_head(message: Message) -> None:
        if message["type"] == "http.response.start":
            await send(message)
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    return send_head
