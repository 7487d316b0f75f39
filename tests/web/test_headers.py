"""Security headers on every response, CORS by allow-list only, no writes from other sites."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import Account, client_with, make_settings, open_ticket
from ticketdesk.models import tickets
from ticketdesk.settings import Settings
from ticketdesk.web.headers import API_CSP, BrowserPolicy

ALLOWED = "https://desk.example.com"
FOREIGN = "https://evil.example"


async def ticket_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(tickets))).scalar_one())


def assert_security_headers(response: httpx.Response, csp: str = API_CSP) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["content-security-policy"] == csp
    assert "strict-transport-security" not in response.headers
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


# security headers


async def test_every_api_answer_has_the_security_headers(
    app: FastAPI,
    client: httpx.AsyncClient,
    unsafe_client: httpx.AsyncClient,
    customer: Account,
) -> None:
    async def fails() -> None:
        raise RuntimeError("unhandled")

    app.add_api_route("/fails", fails)
    ticket_id = await open_ticket(client, customer)
    limit = app.state.settings.max_body_bytes
    answers = [
        (await client.get(f"/tickets/{ticket_id}", headers=customer.headers), 200),
        (await client.get("/tickets"), 401),
        (await client.post("/tickets", json={}, headers=customer.headers), 400),
        (await client.get("/nothing/here"), 404),
        (await client.delete("/tickets"), 405),
        (await client.post("/tickets", content=b"x" * (limit + 1)), 413),
        (await client.get("/openapi.json"), 200),
        (await client.get("/static-offline-docs/swagger-ui.css"), 200),
        (await unsafe_client.get("/fails"), 500),
    ]
    for response, status in answers:
        assert response.status_code == status, response.request.url
        assert_security_headers(response)


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/docs/oauth2-redirect", "/docs/"])
async def test_the_docs_pages_have_a_policy_of_their_own(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert_security_headers(response, csp)
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["connect-src"] == "'self'"
    script_src = directives["script-src"].split()
    assert script_src[0] == "'self'"
    assert all(source.startswith("'sha256-") for source in script_src[1:])  # no unsafe-inline


@pytest.mark.parametrize("path", ["/docs", "/docs/oauth2-redirect"])
async def test_the_docs_policy_allows_exactly_the_inline_scripts_served(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    scripts = re.findall(r"<script>(.*?)</script>", response.text, re.DOTALL)
    assert scripts
    for script in scripts:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in response.headers["content-security-policy"]


async def test_strict_transport_security_only_with_secure_cookies(
    database_url: URL, tmp_path: Path
) -> None:
    async with client_with(database_url, tmp_path, cookie_secure=True) as secure:
        for path in ("/healthz", "/docs", "/nothing"):
            response = await secure.get(path)
            assert response.headers["strict-transport-security"] == "max-age=31536000"
            assert response.headers["x-content-type-options"] == "nosniff"


# CORS


async def test_cors_is_off_by_default(client: httpx.AsyncClient) -> None:
    preflight = await client.options(
        "/tickets",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    simple = await client.get("/healthz", headers={"Origin": ALLOWED})
    for response in (preflight, simple):
        assert not [h for h in response.headers if h.startswith("access-control-")]
    assert preflight.status_code == 405


@pytest.fixture
async def cors_client(database_url: URL, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with client_with(
        database_url, tmp_path, cors_origins=f"{ALLOWED}/, http://localhost:3000"
    ) as c:
        yield c


async def test_a_listed_origin_may_call_with_credentials(cors_client: httpx.AsyncClient) -> None:
    preflight = await cors_client.options(
        "/tickets/1",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization, content-type, x-request-id, "
            "idempotency-key",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ALLOWED
    assert preflight.headers["access-control-allow-credentials"] == "true"
    methods = set(preflight.headers["access-control-allow-methods"].split(", "))
    assert {"GET", "POST", "PUT", "PATCH", "DELETE"} <= methods
    allowed = {h.lower() for h in preflight.headers["access-control-allow-headers"].split(", ")}
    assert {"authorization", "content-type", "x-request-id", "idempotency-key"} <= allowed
    assert_security_headers(preflight)

    simple = await cors_client.get("/healthz", headers={"Origin": "http://localhost:3000"})
    assert simple.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert simple.headers["access-control-allow-credentials"] == "true"
    exposed = set(simple.headers["access-control-expose-headers"].split(", "))
    assert exposed == {
        "Link",
        "X-Total-Count",
        "X-Request-ID",
        "Retry-After",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
    }


async def test_an_unlisted_origin_gets_no_cors_headers(cors_client: httpx.AsyncClient) -> None:
    preflight = await cors_client.options(
        "/tickets",
        headers={"Origin": FOREIGN, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    simple = await cors_client.get("/healthz", headers={"Origin": FOREIGN})
    assert simple.status_code == 200
    assert "access-control-allow-origin" not in simple.headers


@pytest.mark.parametrize(
    "value", ["*", "https://*.example.com", "desk.example.com", "https://a.example/path", "null"]
)
def test_cors_origins_must_be_origins(value: str, database_url: URL, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="is not an origin"):
        make_settings(database_url, tmp_path, cors_origins=f"{ALLOWED},{value}")


def test_cors_origins_are_written_the_way_browsers_send_them(
    database_url: URL, tmp_path: Path
) -> None:
    settings = make_settings(
        database_url,
        tmp_path,
        cors_origins=" HTTPS://Desk.Example.com:443/ ,http://localhost:3000,, https://[::1]:8443",
    )
    assert settings.cors_origin_list == [ALLOWED, "http://localhost:3000", "https://[::1]:8443"]
    assert make_settings(database_url, tmp_path).cors_origin_list == []


# writes from other sites


def cookie_of(account: Account) -> dict[str, str]:
    return {"Cookie": f"token={account.token}"}


@pytest.mark.parametrize(
    "site",
    [
        {"Origin": FOREIGN},
        {"Origin": "null"},
        {"Origin": "http://testserver.evil.example"},
        {"Origin": "https://testserver"},  # another scheme is another origin
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
async def test_a_cookie_write_from_another_site_is_refused(
    client: httpx.AsyncClient, engine: AsyncEngine, customer: Account, site: dict[str, str]
) -> None:
    response = await client.post(
        "/tickets", json={"topic": "t", "text": "x"}, headers={**cookie_of(customer), **site}
    )
    assert response.status_code == 403
    assert response.json() == {"detail": "a write from another site may not use the session cookie"}
    assert_security_headers(response)
    assert await ticket_count(engine) == 0


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_every_write_method_is_refused_before_its_handler(
    client: httpx.AsyncClient, customer: Account, method: str
) -> None:
    # No route answers DELETE /tickets/1 (405) and no ticket 1 exists (404): 403 comes first.
    response = await client.request(
        method, "/tickets/1", json={}, headers={**cookie_of(customer), "Origin": FOREIGN}
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    "site",
    [
        {},  # curl, scripts, old clients
        {"Origin": "http://testserver"},
        {"Origin": "HTTP://TestServer"},
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
    ],
)
async def test_a_cookie_write_from_the_service_itself_passes(
    client: httpx.AsyncClient, customer: Account, site: dict[str, str]
) -> None:
    response = await client.post(
        "/tickets", json={"topic": "t", "text": "x"}, headers={**cookie_of(customer), **site}
    )
    assert response.status_code == 201


async def test_a_write_with_a_bearer_token_passes_from_anywhere(
    client: httpx.AsyncClient, customer: Account
) -> None:
    response = await client.post(
        "/tickets",
        json={"topic": "t", "text": "x"},
        headers={**customer.headers, **cookie_of(customer), "Origin": FOREIGN},
    )
    assert response.status_code == 201


async def test_a_write_without_the_cookie_reaches_its_handler(
    client: httpx.AsyncClient, customer: Account
) -> None:
    headers = {"Origin": FOREIGN, "Cookie": "theme=dark"}
    login = await client.post(
        "/login", json={"email": customer.email, "password": customer.password}, headers=headers
    )
    assert login.status_code == 200
    anonymous = await client.post("/tickets", json={"topic": "t", "text": "x"}, headers=headers)
    assert anonymous.status_code == 401


async def test_reads_from_another_site_are_not_refused(
    client: httpx.AsyncClient, customer: Account
) -> None:
    response = await client.get("/tickets", headers={**cookie_of(customer), "Origin": FOREIGN})
    assert response.status_code == 200


async def test_a_cors_origin_may_write_with_the_cookie(
    database_url: URL, tmp_path: Path, app: FastAPI, customer: Account
) -> None:
    async with client_with(database_url, tmp_path, cors_origins=ALLOWED) as c:
        allowed = await c.post(
            "/tickets",
            json={"topic": "t", "text": "x"},
            headers={**cookie_of(customer), "Origin": ALLOWED},
        )
        refused = await c.post(
            "/tickets",
            json={"topic": "t", "text": "x"},
            headers={**cookie_of(customer), "Origin": FOREIGN},
        )
    assert (allowed.status_code, refused.status_code) == (201, 403)
    assert allowed.headers["access-control-allow-origin"] == ALLOWED


async def test_the_own_origin_follows_the_scheme_the_server_sees(
    app: FastAPI, customer: Account
) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as https:
        same = await https.post(
            "/tickets",
            json={"topic": "t", "text": "x"},
            headers={**cookie_of(customer), "Origin": "https://testserver"},
        )
        downgraded = await https.post(
            "/tickets",
            json={"topic": "t", "text": "x"},
            headers={**cookie_of(customer), "Origin": "http://testserver"},
        )
    assert (same.status_code, downgraded.status_code) == (201, 403)


@pytest.mark.parametrize(
    ("scheme", "host", "origin", "foreign"),
    [
        ("https", b"desk.local:443", b"https://desk.local", False),
        ("https", b"desk.local", b"https://desk.local:443", True),  # browsers drop :443
        ("http", b"desk.local:8089", b"http://desk.local:8089", False),
        ("http", b"desk.local:8089", b"http://desk.local", True),
        ("http", None, b"http://desk.local", True),
    ],
)
def test_the_own_origin_is_scheme_and_host(
    scheme: str, host: bytes | None, origin: bytes, foreign: bool
) -> None:
    policy = BrowserPolicy(Settings(_env_file=None), "")
    headers = [(b"origin", origin), (b"cookie", b"token=t")]
    if host is not None:
        headers.append((b"host", host))
    scope = {"type": "http", "method": "POST", "scheme": scheme, "headers": headers}
    assert policy.is_foreign_cookie_write(scope) is foreign
