"""Pure ASGI middleware: cheap enough to sit in front of every request."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ticketdesk.db import REQUEST_READER, Reader

_JSON = b"application/json"
TOO_LARGE = "request body too large"


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


class ReadsPerRequest:
    """A GET request's reads share one database connection, given back as the response starts.

    Not held while a slow client takes the response body; a read after that (there are
    none today) takes a connection again, given back when the request ends.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        reader: Reader = scope["app"].state.reader.for_request()
        scope[REQUEST_READER] = reader

        async def release_then_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                await reader.release()
            await send(message)

        try:
            await self.app(scope, receive, release_then_send)
        finally:
            await reader.release()
