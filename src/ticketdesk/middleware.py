"""Pure ASGI middleware: cheap enough to sit in front of every request."""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

_JSON = b"application/json"


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


class RefuseLargeBodies:
    """A JSON 413 for a declared Content-Length over the limit, before any byte is read.

    Streamed bodies are counted by FastAPI's own `max_body_size`, whose 413 goes through
    the error handlers; this covers the declared case, which Starlette answers in plain text.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"content-length" and (
                    not value.isdigit() or int(value) > self.max_bytes
                ):
                    response = JSONResponse({"detail": "request body too large"}, status_code=413)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
