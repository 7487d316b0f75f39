"""Logging in and out, and which tokens are accepted."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy.engine import URL

from conftest import JWT_KEY, PASSWORD, Account, client_with, running_servers
from ticketdesk.tickets.repository import ticket_page_statement

# helpers


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def cookie(token: str) -> dict[str, str]:
    return {"Cookie": f"token={token}"}


async def login(client: httpx.AsyncClient, body: object) -> httpx.Response:
    response = await client.post("/login", json=body)
    client.cookies.clear()  # the jar must not authenticate later "anonymous" requests
    return response


async def login_token(client: httpx.AsyncClient, account: Account) -> str:
    response = await login(client, {"email": account.email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def set_cookie(response: httpx.Response) -> tuple[str, str, dict[str, str]]:
    """The one Set-Cookie header: name, value, and attributes keyed in lower case."""
    [header] = response.headers.get_list("set-cookie")
    first, *attributes = (part.strip() for part in header.split(";"))
    name, _, value = first.partition("=")
    parsed = {}
    for attribute in attributes:
        key, _, attribute_value = attribute.partition("=")
        parsed[key.lower()] = attribute_value
    return name, value, parsed


REACH_S = 1.0
"""How soon a revocation reaches every other process on PostgreSQL (`test_tokens.py`)."""


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert set(response.json()) == {"detail"}
    assert isinstance(response.json()["detail"], str)
    assert response.headers["www-authenticate"] == "Bearer"


# login


async def test_login_returns_a_bearer_token_that_works(
    client: httpx.AsyncClient, customer: Account
) -> None:
    before = datetime.now(UTC)
    response = await login(client, {"email": customer.email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"token", "token_type", "expires_at"}
    assert body["token_type"] == "bearer"
    assert body["expires_at"].endswith("Z")
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert before + timedelta(minutes=29) < expires_at <= datetime.now(UTC) + timedelta(minutes=30)
    me = await client.get("/users/me", headers=bearer(body["token"]))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == customer.id


async def test_login_sets_an_http_only_lax_cookie_for_the_token_lifetime(
    client: httpx.AsyncClient, customer: Account
) -> None:
    response = await login(client, {"email": customer.email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    name, value, attributes = set_cookie(response)
    assert (name, value) == ("token", response.json()["token"])
    assert "httponly" in attributes
    assert attributes["samesite"].lower() == "lax"
    assert attributes["path"] == "/"
    assert attributes["max-age"] == "1800"
    assert "secure" not in attributes


async def test_login_cookie_follows_cookie_secure_and_token_lifetime_settings(
    database_url: URL, tmp_path: Path, customer: Account
) -> None:
    async with client_with(
        database_url, tmp_path, cookie_secure=True, token_lifetime_minutes=5
    ) as other:
        response = await login(other, {"email": customer.email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    _, _, attributes = set_cookie(response)
    assert "secure" in attributes
    assert attributes["max-age"] == "300"


async def test_login_matches_the_email_case_insensitively(
    client: httpx.AsyncClient, customer: Account
) -> None:
    response = await login(client, {"email": customer.email.upper(), "password": PASSWORD})
    assert response.status_code == 200, response.text
    me = await client.get("/users/me", headers=bearer(response.json()["token"]))
    assert me.json()["id"] == customer.id


@pytest.mark.parametrize(
    "email",
    [
        "Mixed.Case@Example.COM",
        "Jose\N{COMBINING ACUTE ACCENT}@x.io",
        "bob@\N{FULLWIDTH LATIN SMALL LETTER X}.io",
    ],
    ids=["mixed-case", "decomposed-accent", "fullwidth-domain"],
)
async def test_login_accepts_the_email_exactly_as_registered(
    client: httpx.AsyncClient, email: str
) -> None:
    body = {"email": email, "password": PASSWORD, "username": "unicode"}
    registered = await client.post("/users", json=body)
    assert registered.status_code == 201, registered.text
    response = await login(client, {"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    me = await client.get("/users/me", headers=bearer(response.json()["token"]))
    assert me.json()["id"] == registered.json()["id"]


async def test_unknown_email_and_wrong_password_get_the_same_not_found(
    client: httpx.AsyncClient, customer: Account
) -> None:
    unknown = await login(client, {"email": "nobody@example.com", "password": PASSWORD})
    wrong = await login(client, {"email": customer.email, "password": PASSWORD + "x"})
    assert (unknown.status_code, wrong.status_code) == (404, 404)
    assert unknown.json() == wrong.json()
    assert set(unknown.json()) == {"detail"}
    assert "set-cookie" not in unknown.headers
    assert "set-cookie" not in wrong.headers


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": PASSWORD}, "email"),
        ({"email": "someone@example.com"}, "password"),
        ({"email": 5, "password": PASSWORD}, "email"),
        ({"email": "someone@example.com", "password": ""}, "password"),
    ],
    ids=["no-email", "no-password", "email-number", "empty-password"],
)
async def test_login_names_a_missing_or_wrong_field(
    client: httpx.AsyncClient, customer: Account, body: dict[str, Any], field: str
) -> None:
    response = await login(client, body)
    assert response.status_code == 400, response.text
    assert ["body", field] in [error["loc"] for error in response.json()["detail"]]
    assert PASSWORD not in response.text


@pytest.mark.parametrize("content", [b'{"email": "a@b.c", "password": ', b"", b"[]", b"email=a"])
async def test_login_refuses_a_malformed_body(
    client: httpx.AsyncClient, customer: Account, content: bytes
) -> None:
    response = await client.post("/login", content=content)
    assert response.status_code == 400, response.text
    assert isinstance(response.json()["detail"], list)
    assert "set-cookie" not in response.headers


# which tokens are accepted


async def test_login_token_works_as_cookie_and_as_bearer(
    client: httpx.AsyncClient, customer: Account
) -> None:
    token = await login_token(client, customer)
    for headers in (cookie(token), bearer(token)):
        response = await client.get("/users/me", headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["id"] == customer.id


async def test_no_token_is_unauthorized(client: httpx.AsyncClient, customer: Account) -> None:
    assert_unauthorized(await client.get("/tickets"))


def claims(user_id: int | str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {
        "sub": str(user_id),
        "ver": 0,
        "jti": secrets.token_urlsafe(16),
        "iat": now,
        "exp": now + 600,
    }
    values.update(changes)
    return {key: value for key, value in values.items() if value is not None}


def sign(payload: dict[str, Any], key: str = JWT_KEY) -> str:
    return jwt.encode(payload, key, algorithm="HS256")


def b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def alg_none(victim: Account, other: Account) -> str:
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims(victim.id))}."


def hs512(victim: Account, other: Account) -> str:
    """Signed with the right key, by an algorithm the service does not accept."""
    signing_input = f"{b64({'alg': 'HS512', 'typ': 'JWT'})}.{b64(claims(victim.id))}"
    signature = hmac.digest(JWT_KEY.encode(), signing_input.encode(), hashlib.sha512)
    return f"{signing_input}.{b64(signature)}"


def tampered_sub(victim: Account, other: Account) -> str:
    header, payload, signature = victim.token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    decoded["sub"] = str(other.id)
    return f"{header}.{b64(decoded)}.{signature}"


def expired(victim: Account, other: Account) -> str:
    now = int(time.time())
    return sign(claims(victim.id, iat=now - 7200, exp=now - 3600))


Forge = Callable[[Account, Account], str]
ATTACKS: dict[str, Forge] = {
    "alg-none": alg_none,
    "other-key": lambda v, o: sign(claims(v.id), key="another key that is long enough" * 2),
    "hs512": hs512,
    "expired": expired,
    "tampered-sub": tampered_sub,
    "unknown-user": lambda v, o: sign(claims(o.id + 1000)),
    "no-jti": lambda v, o: sign(claims(v.id, jti=None)),
    "no-ver": lambda v, o: sign(claims(v.id, ver=None)),
    "no-exp": lambda v, o: sign(claims(v.id, exp=None)),
    "wrong-ver": lambda v, o: sign(claims(v.id, ver=1)),
    "huge-sub": lambda v, o: sign(claims("99999999999999999999999")),
    "zero-sub": lambda v, o: sign(claims(0)),
    "text-sub": lambda v, o: sign(claims("admin")),
    "garbage": lambda v, o: "garbage",
    "three-garbage-parts": lambda v, o: "a.b.c",
    "no-signature": lambda v, o: v.token.rsplit(".", 1)[0] + ".",
}


async def test_the_forging_helpers_make_a_valid_token_when_not_attacking(
    client: httpx.AsyncClient, customer: Account
) -> None:
    response = await client.get("/users/me", headers=bearer(sign(claims(customer.id))))
    assert response.status_code == 200, response.text
    assert response.json()["id"] == customer.id


@pytest.mark.parametrize("send", [bearer, cookie], ids=["bearer", "cookie"])
@pytest.mark.parametrize("attack", list(ATTACKS), ids=list(ATTACKS))
async def test_forged_or_invalid_tokens_are_unauthorized(
    client: httpx.AsyncClient,
    customer: Account,
    other_customer: Account,
    send: Callable[[str], dict[str, str]],
    attack: str,
) -> None:
    token = ATTACKS[attack](customer, other_customer)
    assert_unauthorized(await client.get("/tickets", headers=send(token)))
    assert_unauthorized(await client.get("/users/me", headers=send(token)))


# logout


async def test_logout_needs_authentication(client: httpx.AsyncClient) -> None:
    assert_unauthorized(await client.post("/logout"))


async def test_logout_clears_the_cookie(client: httpx.AsyncClient, customer: Account) -> None:
    response = await client.post("/logout", headers=customer.headers)
    client.cookies.clear()
    assert response.status_code == 204, response.text
    assert response.content == b""
    name, value, attributes = set_cookie(response)
    assert name == "token"
    assert value in ("", '""')
    expiry_passed = "expires" in attributes and parsedate_to_datetime(
        attributes["expires"]
    ) < datetime.now(UTC)
    assert attributes.get("max-age") == "0" or expiry_passed
    assert attributes["path"] == "/"


@pytest.mark.parametrize("send", [bearer, cookie], ids=["bearer", "cookie"])
async def test_logout_revokes_only_the_token_it_was_called_with(
    client: httpx.AsyncClient, customer: Account, send: Callable[[str], dict[str, str]]
) -> None:
    first = await login_token(client, customer)
    second = await login_token(client, customer)
    response = await client.post("/logout", headers=send(first))
    client.cookies.clear()
    assert response.status_code == 204, response.text
    assert_unauthorized(await client.get("/tickets", headers=bearer(first)))
    assert_unauthorized(await client.get("/tickets", headers=cookie(first)))
    assert_unauthorized(await client.post("/logout", headers=bearer(first)))
    assert (await client.get("/tickets", headers=bearer(second))).status_code == 200
    assert (await client.get("/tickets", headers=customer.headers)).status_code == 200


@pytest.mark.slow
async def test_revocation_holds_across_server_processes(
    database_url: URL, tmp_path: Path, customer: Account, staff: Account
) -> None:
    """Logout, a password change and blocking in one process reach every other process:
    at once on SQLite (every check reads the database), within the second the token checks
    promise on PostgreSQL (a process that remembered the token forgets it when the change's
    notification arrives, which may be just after the answer to the change)."""
    reach_s = REACH_S if "postgresql" in database_url.drivername else 0.0
    with running_servers(2, database_url, tmp_path, RATE_LIMITS="false") as (here, there):
        async with httpx.AsyncClient() as client:

            async def refused_there(token: str) -> None:
                started = time.monotonic()
                while True:
                    response = await client.get(f"{there}/tickets", headers=bearer(token))
                    if response.status_code != 200 or time.monotonic() - started >= reach_s:
                        break
                    await asyncio.sleep(0.01)
                assert_unauthorized(response)

            async def fresh_token() -> str:
                body = {"email": customer.email, "password": customer.password}
                response = await client.post(f"{here}/login", json=body)
                assert response.status_code == 200
                token: str = response.json()["token"]
                client.cookies.clear()
                # Used there first: that process has seen it valid.
                assert (await client.get(f"{there}/tickets", headers=bearer(token))).is_success
                return token

            token = await fresh_token()
            assert (await client.post(f"{here}/logout", headers=bearer(token))).status_code == 204
            await refused_there(token)

            token = await fresh_token()
            change = {"password": "a new long password", "current_password": customer.password}
            response = await client.patch(f"{here}/users/me", json=change, headers=bearer(token))
            assert response.status_code == 200, response.text
            await refused_there(token)
            customer.password = change["password"]

            token = await fresh_token()
            block = {"is_active": False}
            url = f"{here}/users/{customer.id}"
            assert (await client.patch(url, json=block, headers=staff.headers)).is_success
            await refused_there(token)


async def test_a_logout_sent_many_times_at_once_is_never_a_500(
    client: httpx.AsyncClient, customer: Account
) -> None:
    responses = await asyncio.gather(
        *(client.post("/logout", headers=customer.headers) for _ in range(10))
    )
    assert {r.status_code for r in responses} <= {204, 401}
    assert 204 in {r.status_code for r in responses}
    assert_unauthorized(await client.get("/users/me", headers=customer.headers))


async def test_a_status_filter_repeated_builds_no_new_statement(
    client: httpx.AsyncClient, customer: Account
) -> None:
    await client.get("/tickets?status=pending", headers=customer.headers)
    built = ticket_page_statement.cache_info().currsize
    for repeats in range(2, 40):
        query = "&".join(["status=pending"] * repeats)
        assert (await client.get(f"/tickets?{query}", headers=customer.headers)).is_success
    assert ticket_page_statement.cache_info().currsize == built
