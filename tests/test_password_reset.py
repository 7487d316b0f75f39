"""Password reset: a single-use link by mail, valid 30 minutes; no account enumeration."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import insert, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import Account, MakeUser, client_with
from receivers import Mailbox, sending_to, text_of
from ticketdesk.models import jobs, password_resets, utcnow
from ticketdesk.password_reset.service import _hash

SAME_SITE = {"Origin": "http://testserver"}
LINK = re.compile(r"http://testserver/app/password-reset/confirm\?token=([A-Za-z0-9_-]+)")


@pytest.fixture
async def mailing(
    database_url: URL, tmp_path: Path, mailbox: tuple[Mailbox, int], engine: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    _, port = mailbox  # `engine` first: no job of an earlier test is left to run
    settings = sending_to(port, public_url="http://testserver", rate_limit_password_reset="3/hour")
    async with client_with(database_url, tmp_path, **settings) as client:
        yield client


async def ask(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post("/password-reset", json={"email": email})


async def test_a_reset_sets_the_password_once_and_ends_every_session(
    mailing: httpx.AsyncClient,
    mailbox: tuple[Mailbox, int],
    make_user: MakeUser,
    engine: AsyncEngine,
) -> None:
    box, _ = mailbox
    user = await make_user("customer", email="forgetful@example.com")
    unknown = await ask(mailing, "nobody@example.com")
    known = await ask(mailing, "  Forgetful@Example.com ")
    assert unknown.status_code == known.status_code == 202
    assert unknown.json() == known.json()
    (mail,) = await box.wait_for(1)
    assert mail["To"] == "someone <forgetful@example.com>"
    match = LINK.search(text_of(mail))
    assert match is not None
    token = match[1]

    # Once sent, the link is not kept anywhere but in the mail (only its hash is stored).
    async with engine.connect() as conn:
        payloads = (await conn.execute(select(jobs.c.payload))).scalars().all()
        hashes = (await conn.execute(select(password_resets.c.token_hash))).scalars().all()
    assert all(token not in payload for payload in payloads)
    assert hashes == [_hash(token)]

    too_short = await mailing.post(
        "/password-reset/confirm", json={"token": token, "password": "short"}
    )
    assert too_short.status_code == 400
    done = await mailing.post(
        "/password-reset/confirm", json={"token": token, "password": "a brand new secret"}
    )
    assert done.status_code == 204
    assert (await mailing.get("/users/me", headers=user.headers)).status_code == 401
    login = await mailing.post(
        "/login", json={"email": user.email, "password": "a brand new secret"}
    )
    assert login.status_code == 200
    again = await mailing.post(
        "/password-reset/confirm", json={"token": token, "password": "yet another secret"}
    )
    assert again.status_code == 400
    assert "used or expired" in again.json()["detail"]


async def test_an_expired_or_unknown_link_changes_nothing(
    client: httpx.AsyncClient, customer: Account, engine: AsyncEngine
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(password_resets).values(
                user_id=customer.id,
                token_hash=_hash("old-token"),
                created_at=utcnow() - timedelta(minutes=31),
                expires_at=utcnow() - timedelta(minutes=1),
            )
        )
    for token in ("old-token", "made-up"):
        response = await client.post(
            "/password-reset/confirm", json={"token": token, "password": "a brand new secret"}
        )
        assert response.status_code == 400
    assert (await client.get("/users/me", headers=customer.headers)).status_code == 200
    login = await client.post(
        "/login", json={"email": customer.email, "password": "correct horse battery"}
    )
    assert login.status_code == 200


async def test_requests_are_rate_limited_alike_for_every_address(
    mailing: httpx.AsyncClient, make_user: MakeUser
) -> None:
    await make_user("customer", email="known@example.com")
    for email in ("known@example.com", "unknown@example.com"):
        answers = [(await ask(mailing, email)).status_code for _ in range(4)]
        assert answers == [202, 202, 202, 429]


async def test_a_newer_link_spends_the_older_ones(
    mailing: httpx.AsyncClient, mailbox: tuple[Mailbox, int], make_user: MakeUser
) -> None:
    box, _ = mailbox
    user = await make_user("customer")
    assert (await ask(mailing, user.email)).status_code == 202
    assert (await ask(mailing, user.email)).status_code == 202
    first, second = (LINK.search(text_of(m)) for m in await box.wait_for(2))
    assert first is not None and second is not None and first[1] != second[1]
    done = await mailing.post(
        "/password-reset/confirm", json={"token": second[1], "password": "a brand new secret"}
    )
    assert done.status_code == 204
    stale = await mailing.post(
        "/password-reset/confirm", json={"token": first[1], "password": "another new secret"}
    )
    assert stale.status_code == 400


async def test_the_pages_walk_through_a_reset(
    mailing: httpx.AsyncClient, mailbox: tuple[Mailbox, int], make_user: MakeUser
) -> None:
    box, _ = mailbox
    user = await make_user("customer", email="pages@example.com")
    sign_in = await mailing.get("/")
    assert 'href="/app/password-reset"' in sign_in.text
    form = await mailing.get("/app/password-reset")
    assert form.status_code == 200 and "Forgot your password?" in form.text
    sent = await mailing.post("/app/password-reset", data={"email": user.email}, headers=SAME_SITE)
    assert sent.status_code == 200 and "Check your mail" in sent.text
    (mail,) = await box.wait_for(1)
    match = LINK.search(text_of(mail))
    assert match is not None
    page = await mailing.get(f"/app/password-reset/confirm?token={match[1]}")
    assert page.status_code == 200 and match[1] in page.text
    bad = await mailing.post(
        "/app/password-reset/confirm",
        data={"token": match[1], "password": "short"},
        headers=SAME_SITE,
    )
    assert bad.status_code == 400
    done = await mailing.post(
        "/app/password-reset/confirm",
        data={"token": match[1], "password": "a brand new secret"},
        headers=SAME_SITE,
    )
    assert done.status_code == 303 and done.headers["location"] == "/?reset=1"
    notice = await mailing.get("/?reset=1")
    assert "Your new password is set" in notice.text
    signed_in = await mailing.post(
        "/app/sign-in",
        data={"email": user.email, "password": "a brand new secret", "next": "/app"},
        headers=SAME_SITE,
    )
    assert signed_in.status_code == 303
    forged = await mailing.post(
        "/app/password-reset",
        data={"email": user.email},
        headers={"Origin": "https://evil.example"},
    )
    assert forged.status_code == 403
