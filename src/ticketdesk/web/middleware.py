"""Pure ASGI middleware: cheap enough to sit in front of every request."""

from __future__ import annotations

from os import urandom
from time import perf_counter

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ticketdesk.logs import LOG_FIELDS, REQUEST_ID, log_request, request_fields, request_id
from ticketdesk.web.headers import WRITE_METHODS, BrowserPolicy

_JSON = b"application/json"
TOO_LARGE = "request body too large"
FOREIGN_WRITE = "a write from another site may not use the session cookie"


class RequestEdge:
    """What every HTTP request meets first and every response passes last.

    - A request id: the client's `X-Request-ID` when it is sane, else a new one; echoed
      in the response, and set for every line logged while handling the request.
    - The security headers of `BrowserPolicy`, on every response, errors included.
    - 403 for a write the session cookie authenticates from another site.
    - One JSON line when the request is done, and a security event when its answer is one.

    One middleware rather than four: each layer costs calls and closures per request.
    It wraps the whole app, outside Starlette's error middleware, so that a 500 gets the
    headers and the log line too.
    """

    def __init__(self, app: ASGIApp, policy: BrowserPolicy) -> None:
        self.app = app
        self.policy = policy
        self.refusal = JSONResponse({"detail": FOREIGN_WRITE}, status_code=403)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = perf_counter()
        given = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given = request_id(value)
                break
        rid = given.decode() if given else urandom(16).hex()
        method: str = scope["method"]
        path: str = scope["path"]
        client = scope.get("client")
        fields = request_fields(rid, method, path, client[0] if client else None)
        scope[LOG_FIELDS] = fields
        added = [*self.policy.headers_for(path), (b"x-request-id", given or rid.encode())]
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *added]
            await send(message)

        event = None
        reset = REQUEST_ID.set(rid)
        try:
            if method in WRITE_METHODS and self.policy.is_foreign_cookie_write(scope):
                event = "cross_site_write"
                await self.refusal(scope, receive, send_with_headers)
            else:
                await self.app(scope, receive, send_with_headers)
        finally:
            REQUEST_ID.reset(reset)
            fields["status"] = status
            fields["duration_ms"] = round((perf_counter() - start) * 1000, 3)
            log_request(fields, event)


class OldClientCompatibility:
    """Read requests the way the old service did.

    - `/tickets/1/` is `/tickets/1`: a redirect would make clients drop POST bodies.
    - Every body is JSON, whatever Content-Type says (`curl -d` sends a form type).
      The cookie is SameSite=Lax, so a cross-site form cannot carry it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if len(path) > 1 and path.endswith("/"):
                stripped = path.rstrip("/") or "/"
                scope = dict(scope, path=stripped, raw_path=stripped.encode())
            if scope["method"] in ("POST", "PUT", "PATCH"):
                headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
                scope = dict(scope, headers=[*headers, (b"content-type", _JSON)])
        await self.app(scope, receive, send)


class LimitBodySize:
    """413 for a body over `max_bytes`: by Content-Length before reading, or by counting a stream.

    FastAPI's own `max_body_size` answers a declared oversize in plain text, whatever the
    error handlers say; this keeps every error JSON.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
                response = JSONResponse({"detail": TOO_LARGE}, status_code=413)
                await response(scope, receive, send)
                return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside the request handler, so the error handlers answer it.
                    raise HTTPException(413, TOO_LARGE)
            return message

        await self.app(scope, counting_receive, send)
