"""The account pages: signing up (as staff, with a staff key), signing out, a forgotten
password, and the pages' icon. Over HTTP, and in Chromium where the browser matters."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Response, expect
from sqlalchemy import insert, select, update
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import PASSWORD, Account, add_account, client_with, running_servers
from test_pages_browser import chromium
from ticketdesk.models import password_resets, staff_keys, users, utcnow

SAME_SITE = {"Origin": "http://testserver"}
NEW_PASSWORD = "a long enough password"
WRONG_KEY = "This staff key does not work: it is mistyped, used already, expired or withdrawn."
NO_MAIL_TO_RESET = "This desk cannot send mail: ask your administrator to set your password"
SPENT_LINK = "This link was used already or has expired"


def sign_up_form(**changes: str) -> dict[str, str]:
    return {
        "username": "Nina",
        "email": "nina@example.com",
        "password": NEW_PASSWORD,
        "staff_key": "",
        **changes,
    }


async def issue_key(client: httpx.AsyncClient, superuser: Account) -> tuple[int, str]:
    response = await client.post("/staff-keys", json={}, headers=superuser.headers)
    assert response.status_code == 201, response.text
    return response.json()["id"], response.json()["key"]


async def emails(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(users.c.email).order_by(users.c.id))).scalars())


async def key_used_by(engine: AsyncEngine, key_id: int) -> int | None:
    async with engine.connect() as conn:
        query = select(staff_keys.c.used_by).where(staff_keys.c.id == key_id)
        used_by: int | None = (await conn.execute(query)).scalar_one()
        return used_by


def field_error(page: str, name: str) -> str:
    """The error shown beside a field, and that the field points to it (for screen readers)."""
    assert re.search(rf'id="{name}"[^>]*aria-invalid="true" aria-describedby="{name}-error"', page)
    found = re.search(rf'<p class="field-error" id="{name}-error">([^<]*)</p>', page)
    assert found is not None, f"no error beside {name}"
    return found.group(1)


# signing up with a staff key


async def test_a_staff_key_on_the_sign_up_page_makes_staff_who_land_on_the_queue(
    client: httpx.AsyncClient, superuser: Account, engine: AsyncEngine
) -> None:
    key_id, key = await issue_key(client, superuser)
    page = await client.get("/app/sign-up")
    assert page.status_code == 200 and "Staff key (optional)" in page.text
    response = await client.post(
        "/app/sign-up", data=sign_up_form(staff_key=f"  {key}\n"), headers=SAME_SITE
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/app/queue"
    me = (await client.get("/users/me")).json()
    assert (me["email"], me["is_staff"]) == ("nina@example.com", True)
    assert await key_used_by(engine, key_id) == me["id"]
    assert (await client.get("/app/queue")).status_code == 200


async def test_a_wrong_used_expired_or_withdrawn_key_brings_the_form_back_without_the_password(
    client: httpx.AsyncClient, superuser: Account, engine: AsyncEngine
) -> None:
    _, used = await issue_key(client, superuser)
    first = sign_up_form(email="first@example.com", staff_key=used)
    assert (await client.post("/app/sign-up", data=first, headers=SAME_SITE)).status_code == 303
    client.cookies.clear()
    expired_id, expired = await issue_key(client, superuser)
    async with engine.begin() as conn:
        past = utcnow() - timedelta(minutes=1)
        await conn.execute(
            update(staff_keys).where(staff_keys.c.id == expired_id).values(expires_at=past)
        )
    withdrawn_id, withdrawn = await issue_key(client, superuser)
    gone = await client.delete(f"/staff-keys/{withdrawn_id}", headers=superuser.headers)
    assert gone.status_code == 204
    for key in (used, expired, withdrawn, "tdsk_not-a-key-of-ours"):
        response = await client.post(
            "/app/sign-up",
            data=sign_up_form(username="Otto", email="otto@example.com", staff_key=key),
            headers=SAME_SITE,
        )
        assert response.status_code == 400
        assert field_error(response.text, "staff_key").startswith(WRONG_KEY)
        assert 'value="Otto"' in response.text and 'value="otto@example.com"' in response.text
        assert f'value="{key}"' in response.text  # to mend a typo, not to paste it again
        assert NEW_PASSWORD not in response.text
        assert "token=" not in response.headers.get("set-cookie", "")
    assert await emails(engine) == [superuser.email, "first@example.com"]
    assert await key_used_by(engine, expired_id) is None


async def test_a_sign_up_refused_for_another_reason_leaves_the_key_unspent(
    client: httpx.AsyncClient, superuser: Account, customer: Account, engine: AsyncEngine
) -> None:
    key_id, key = await issue_key(client, superuser)
    for email, error in [
        (customer.email, "a user with this email already exists"),
        ("lou@printer.local", "special-use or reserved name"),
    ]:
        response = await client.post(
            "/app/sign-up", data=sign_up_form(email=email, staff_key=key), headers=SAME_SITE
        )
        assert response.status_code == 400
        assert error in field_error(response.text, "email")
        assert f'value="{key}"' in response.text
    short = await client.post(
        "/app/sign-up", data=sign_up_form(password="short", staff_key=key), headers=SAME_SITE
    )
    assert short.status_code == 400 and field_error(short.text, "password")
    assert await key_used_by(engine, key_id) is None
    done = await client.post("/app/sign-up", data=sign_up_form(staff_key=key), headers=SAME_SITE)
    assert done.headers["location"] == "/app/queue"
    assert await key_used_by(engine, key_id) is not None


async def test_closed_registration_signs_up_staff_with_a_key_and_nobody_else(
    database_url: URL, tmp_path: Path, superuser: Account, engine: AsyncEngine
) -> None:
    async with client_with(database_url, tmp_path, registration="closed") as client:
        page = await client.get("/app/sign-up")
        assert page.status_code == 200
        assert "accounts are opened by the support team" in page.text.lower()
        assert "New members of staff sign up here, with the staff key they were given." in page.text
        assert re.search(r'<input id="staff_key"[^>]* required', page.text)
        assert "(optional)" not in page.text
        assert "/app/sign-up" not in (await client.get("/")).text
        keyless = await client.post("/app/sign-up", data=sign_up_form(), headers=SAME_SITE)
        assert keyless.status_code == 403
        assert field_error(keyless.text, "staff_key") == (
            "Only new staff sign up here, with the staff key they were given."
        )
        assert 'value="nina@example.com"' in keyless.text and NEW_PASSWORD not in keyless.text
        _, key = await issue_key(client, superuser)
        staff = await client.post(
            "/app/sign-up", data=sign_up_form(staff_key=key), headers=SAME_SITE
        )
        assert staff.headers["location"] == "/app/queue"
    assert await emails(engine) == [superuser.email, "nina@example.com"]


async def test_the_staff_keys_page_says_where_the_key_is_entered(
    client: httpx.AsyncClient, superuser: Account, database_url: URL, tmp_path: Path
) -> None:
    client.cookies.set("token", superuser.token)
    listed = await client.get("/app/staff-keys")
    assert "on the sign-up page at http://testserver/app/sign-up" in listed.text
    issued = await client.post("/app/staff-keys", headers=SAME_SITE)
    assert re.search(r'<code class="key">tdsk_[^<]+</code>', issued.text)
    assert (
        'They enter it on the sign-up page at <a href="http://testserver/app/sign-up">'
        in issued.text
    )
    public = "https://desk.example.com/"
    async with client_with(database_url, tmp_path, public_url=public) as behind_a_proxy:
        behind_a_proxy.cookies.set("token", superuser.token)
        page = await behind_a_proxy.get("/app/staff-keys")
        assert "on the sign-up page at https://desk.example.com/app/sign-up" in page.text


async def test_the_sign_up_page_says_when_no_mail_is_sent(
    client: httpx.AsyncClient, database_url: URL, tmp_path: Path
) -> None:
    line = "This desk sends no mail, so no confirmations either"
    assert line in (await client.get("/app/sign-up")).text
    async with client_with(database_url, tmp_path, smtp_host="127.0.0.1") as with_mail:
        assert line not in (await with_mail.get("/app/sign-up")).text


# signing out


async def test_signing_out_says_so_on_the_sign_in_page(
    client: httpx.AsyncClient, customer: Account
) -> None:
    client.cookies.set("token", customer.token)
    response = await client.post("/app/sign-out", headers=SAME_SITE)
    assert response.status_code == 303
    assert response.headers["location"] == "/?signed_out=1"
    assert 'token=""' in response.headers["set-cookie"]
    page = await client.get(response.headers["location"])
    assert '<p class="notice" role="status">You are signed out.</p>' in page.text
    assert "You are signed out." not in (await client.get("/")).text


# a forgotten password


async def add_link(
    engine: AsyncEngine, user_id: int, token: str, *, expires_in: timedelta, used: bool = False
) -> None:
    now = utcnow()
    async with engine.begin() as conn:
        await conn.execute(
            insert(password_resets).values(
                user_id=user_id,
                token_hash=hashlib.sha256(token.encode()).hexdigest(),
                created_at=now,
                expires_at=now + expires_in,
                used_at=now if used else None,
            )
        )


async def links_used(engine: AsyncEngine) -> list[bool]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(password_resets.c.used_at).order_by(password_resets.c.id))
        return [used_at is not None for used_at in rows.scalars()]


async def test_a_used_or_expired_link_says_so_at_once_and_a_good_one_is_not_spent_by_looking(
    client: httpx.AsyncClient, customer: Account, engine: AsyncEngine
) -> None:
    await add_link(engine, customer.id, "good", expires_in=timedelta(minutes=30))
    await add_link(engine, customer.id, "expired", expires_in=timedelta(seconds=-1))
    await add_link(engine, customer.id, "used", expires_in=timedelta(minutes=30), used=True)
    for _ in range(2):
        good = await client.get("/app/password-reset/confirm?token=good")
        assert good.status_code == 200 and 'name="password"' in good.text
    assert await links_used(engine) == [False, False, True]
    for token in ("expired", "used", "never-issued", ""):
        spent = await client.get(f"/app/password-reset/confirm?token={token}")
        assert spent.status_code == 410, token
        assert f"<h1>{SPENT_LINK}</h1>" in spent.text
        assert '<a href="/app/password-reset">Ask for a new one</a>' in spent.text
        assert 'name="password"' not in spent.text
    chosen = await client.post(
        "/app/password-reset/confirm",
        data={"token": "good", "password": NEW_PASSWORD},
        headers=SAME_SITE,
    )
    assert chosen.headers["location"] == "/?reset=1"
    assert (await client.get("/app/password-reset/confirm?token=good")).status_code == 410
    again = await client.post(
        "/app/password-reset/confirm",
        data={"token": "good", "password": "yet another password"},
        headers=SAME_SITE,
    )
    assert again.status_code == 400 and SPENT_LINK in again.text
    login = await client.post("/login", json={"email": customer.email, "password": NEW_PASSWORD})
    assert login.status_code == 200


async def test_without_mail_the_reset_page_says_whom_to_ask_and_warns_the_operator_once(
    client: httpx.AsyncClient,
    customer: Account,
    database_url: URL,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="ticketdesk")
    page = await client.get("/app/password-reset")
    assert NO_MAIL_TO_RESET in page.text and 'action="/app/password-reset"' not in page.text
    assert not caplog.records
    answer = await client.post(
        "/app/password-reset", data={"email": customer.email}, headers=SAME_SITE
    )
    assert answer.status_code == 200
    assert NO_MAIL_TO_RESET in answer.text and "Check your mail" not in answer.text
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "a password reset was asked for, but no mail can be sent (SMTP_HOST)"
    ]
    assert customer.email not in caplog.text
    async with client_with(database_url, tmp_path, smtp_host="127.0.0.1") as with_mail:
        form = await with_mail.get("/app/password-reset")
        assert 'action="/app/password-reset"' in form.text and NO_MAIL_TO_RESET not in form.text
        sent = await with_mail.post(
            "/app/password-reset", data={"email": customer.email}, headers=SAME_SITE
        )
        assert "Check your mail" in sent.text and NO_MAIL_TO_RESET not in sent.text


# the icon


async def test_the_icon_is_an_asset_and_favicon_ico_leads_to_it(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    icon_link = r'<link rel="icon" href="(/app/static/favicon\.[0-9a-f]{12}\.svg)"'
    found = re.search(icon_link, page.text)
    assert found is not None
    icon = await client.get(found.group(1))
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
    assert icon.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert icon.content.startswith(b"<svg") and len(icon.content) < 2000
    legacy = await client.get("/favicon.ico")
    assert legacy.status_code == 302 and legacy.headers["location"] == found.group(1)
    assert legacy.headers["cache-control"] == "max-age=86400"


# in Chromium


@pytest.fixture
def server(database_url: URL, tmp_path: Path, engine: AsyncEngine) -> Iterator[str]:
    with running_servers(
        1, database_url, tmp_path, RATE_LIMITS="false", DATA_DIR=str(tmp_path / "data")
    ) as (url,):
        yield url


@pytest.mark.slow
async def test_a_new_member_of_staff_signs_up_with_the_key_a_superuser_issued(
    server: str, engine: AsyncEngine, password_hash: str
) -> None:
    await add_account(
        engine, "root@example.com", role="superuser", username="Root", password_hash=password_hash
    )
    async with chromium() as browser:
        root = await browser.new_page()
        await root.goto(server + "/")
        await root.get_by_label("Email").fill("root@example.com")
        await root.get_by_label("Password").fill(PASSWORD)
        await root.get_by_role("button", name="Sign in").click()
        await root.get_by_role("link", name="Staff keys").click()
        await root.get_by_role("button", name="Issue a key").click()
        key = await root.locator("code.key").inner_text()
        sign_up_link = root.get_by_role("link", name=f"{server}/app/sign-up")
        address = await sign_up_link.get_attribute("href")
        assert address == f"{server}/app/sign-up"

        nina = await (await browser.new_context()).new_page()
        await nina.goto(address)
        await nina.get_by_label("Username").fill("Nina")
        await nina.get_by_label("Email").fill("nina@example.com")
        await nina.get_by_label("Password").fill(NEW_PASSWORD)
        await nina.get_by_label("Staff key").fill(key[:-2])
        await nina.get_by_role("button", name="Sign up").click()
        await expect(nina.get_by_text(WRONG_KEY)).to_be_visible()
        await expect(nina.get_by_label("Username")).to_have_value("Nina")
        await expect(nina.get_by_label("Password")).to_have_value("")
        await expect(nina.get_by_label("Staff key")).to_have_attribute("aria-invalid", "true")
        await nina.get_by_label("Password").fill(NEW_PASSWORD)
        await nina.get_by_label("Staff key").fill(key)
        await nina.get_by_role("button", name="Sign up").click()
        await expect(nina).to_have_url(f"{server}/app/queue")

        await nina.get_by_role("button", name="Sign out").click()
        await expect(nina.get_by_role("status")).to_have_text("You are signed out.")
    async with engine.connect() as conn:
        row = (await conn.execute(select(users).where(users.c.email == "nina@example.com"))).one()
    assert (row.is_staff, row.is_superuser) == (True, False)


@pytest.mark.slow
async def test_no_page_load_asks_for_anything_missing(server: str) -> None:
    failed: list[tuple[int, str]] = []

    def record(response: Response) -> None:
        if response.status >= 400:
            failed.append((response.status, response.url))

    async with chromium() as browser:
        page = await browser.new_page()
        page.on("response", record)
        await page.goto(server + "/")
        await page.get_by_role("link", name="Sign up").click()
        await page.get_by_label("Username").fill("Carla")
        await page.get_by_label("Email").fill("carla@example.com")
        await page.get_by_label("Password").fill(NEW_PASSWORD)
        await page.get_by_role("button", name="Sign up").click()
        await expect(page).to_have_url(f"{server}/app/tickets")
        await page.get_by_role("link", name="New ticket").click()
        await page.wait_for_load_state("networkidle")
        icon: Any = await page.evaluate("document.querySelector('link[rel=icon]').href")
        answer = await page.request.get(icon)
        assert answer.status == 200 and answer.headers["content-type"] == "image/svg+xml"
        legacy = await page.request.get(server + "/favicon.ico")
        assert legacy.status == 200 and legacy.url == icon
    assert failed == []
