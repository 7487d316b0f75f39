"""What responses tell browsers: security headers, CORS, and which writes another site sent.

The API answers JSON only, so its pages may load nothing at all. The documentation pages
(Swagger UI and ReDoc, served from the package) may run their own scripts and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import cookie_parser
from starlette.types import Scope

from ticketdesk.auth.dependencies import TOKEN_COOKIE, bearer_token
from ticketdesk.settings import Settings

Headers = list[tuple[bytes, bytes]]

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
PAGES_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
"""The browser pages: their own script and stylesheet, nothing inline, nothing from elsewhere."""
DOCS_PATHS = frozenset({"/docs", "/docs/", "/redoc", "/redoc/", "/docs/oauth2-redirect"})
HSTS = "max-age=31536000"

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

CORS_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
CORS_REQUEST_HEADERS = ["Authorization", "Content-Type", "X-Request-ID", "Idempotency-Key"]
CORS_EXPOSED_HEADERS = [
    "Link",
    "X-Total-Count",
    "X-Request-ID",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
]

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
_DEFAULT_PORTS = {b"http": b":80", b"https": b":443"}


def docs_csp(app: FastAPI) -> str:
    """Swagger UI and ReDoc from this origin, with the inline scripts of the docs pages.

    The inline scripts are rendered here as `fastapi_offline` renders them, and hashed;
    `tests/web/test_headers.py` checks the hashes against the pages actually served.
    ReDoc styles its page with injected <style> elements and searches in a blob: worker.
    """
    swagger = get_swagger_ui_html(
        openapi_url=app.openapi_url or "",
        title=app.title,
        oauth2_redirect_url=app.swagger_ui_oauth2_redirect_url,
        swagger_js_url="",
        swagger_css_url="",
        swagger_ui_parameters=app.swagger_ui_parameters,
    )
    redirect = get_swagger_ui_oauth2_redirect_html()
    scripts = " ".join(_script_hashes(bytes(page.body).decode() for page in (swagger, redirect)))
    return (
        f"default-src 'none'; script-src 'self' {scripts}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; worker-src blob:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


def _script_hashes(pages: Iterable[str]) -> list[str]:
    hashes = []
    for page in pages:
        for script in _INLINE_SCRIPT.findall(page):
            digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
            hashes.append(f"'sha256-{digest}'")
    return hashes


class BrowserPolicy:
    """The headers every response carries, and the rule for writes from another site.

    A write (POST, PUT, PATCH, DELETE) that the session cookie authenticates is refused
    when its Origin is neither the service's own (scheme and Host, as the server sees
    them) nor one of CORS_ORIGINS; without an Origin, when Sec-Fetch-Site says cross-site.
    A Bearer token is never sent by a browser on its own, so such writes pass; so do
    requests with neither header (curl, scripts, old clients).
    """

    def __init__(self, settings: Settings, docs_csp: str) -> None:
        common: Headers = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
        ]
        if settings.cookie_secure:
            common.append((b"strict-transport-security", HSTS.encode()))
        self.api_headers = [*common, (b"content-security-policy", API_CSP.encode())]
        self.docs_headers = [*common, (b"content-security-policy", docs_csp.encode())]
        # Pages send their Origin with their own forms (no-referrer would make it "null",
        # and the origin rule would refuse them), and nothing to other sites.
        self.pages_headers = [
            *(header for header in common if header[0] != b"referrer-policy"),
            (b"referrer-policy", b"same-origin"),
            (b"content-security-policy", PAGES_CSP.encode()),
            (b"x-frame-options", b"DENY"),
        ]
        self.allowed_origins = frozenset(origin.encode() for origin in settings.cors_origin_list)

    def headers_for(self, path: str) -> Headers:
        if path == "/" or path.startswith("/app"):
            return self.pages_headers
        return self.docs_headers if path in DOCS_PATHS else self.api_headers

    def is_foreign_cookie_write(self, scope: Scope) -> bool:
        """A write whose cookie a browser attached for a page of another site."""
        origin = host = authorization = cookie = fetch_site = None
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value
            elif name == b"sec-fetch-site":
                fetch_site = value
            elif name == b"host":
                host = value
            elif name == b"authorization":
                authorization = value
            elif name == b"cookie":
                cookie = value
        if origin is not None:
            origin = origin.lower()
            if origin in self.allowed_origins or origin == _own_origin(scope, host):
                return False
        elif fetch_site != b"cross-site":
            return False
        return _cookie_authenticated(authorization, cookie)


def _own_origin(scope: Scope, host: bytes | None) -> bytes | None:
    if host is None:
        return None
    scheme: bytes = scope.get("scheme", "http").encode()
    host = host.lower()
    default_port = _DEFAULT_PORTS.get(scheme)
    if default_port and host.endswith(default_port):
        host = host[: -len(default_port)]
    return scheme + b"://" + host


def _cookie_authenticated(authorization: bytes | None, cookie: bytes | None) -> bool:
    """The token would come from the cookie: no Bearer header, and a token cookie."""
    if authorization is not None and bearer_token(authorization.decode("latin-1")):
        return False
    return cookie is not None and bool(cookie_parser(cookie.decode("latin-1")).get(TOKEN_COOKIE))


def add_cors(app: FastAPI, settings: Settings) -> None:
    """CORS for the origins in CORS_ORIGINS, credentials included; none at all by default."""
    origins = settings.cors_origin_list
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_credentials=True,
            allow_methods=CORS_METHODS,
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
        )
