"""Password reset: a single-use link by mail, valid 30 minutes; no account enumeration."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, insert, make_url, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import Message

from conftest import Account, MakeUser, client_with, make_settings
from receivers import Mailbox, sending_to, text_of
from ticketdesk.app import create_app
from ticketdesk.db import open_database
from ticketdesk.models import jobs, password_resets, utcnow
from ticketdesk.password_reset import service
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


# The answer tells nothing by its timing: it is complete before anything depends on the address.


@pytest.fixture
async def mailing_app(
    database_url: URL, tmp_path: Path, mailbox: tuple[Mailbox, int], engine: AsyncEngine
) -> AsyncIterator[FastAPI]:
    """An app that mails (no worker: the queued mail stays in the jobs table to be seen)."""
    _, port = mailbox
    settings = sending_to(port, jobs_in_server=False, public_url="http://testserver")
    app = create_app(make_settings(database_url, tmp_path, **settings))
    async with app.router.lifespan_context(app):
        yield app


Rows = tuple[int, int]


async def rows_written(engine: AsyncEngine) -> Rows:
    """How many reset links and jobs there are."""
    async with engine.connect() as conn:
        links = (await conn.execute(select(func.count()).select_from(password_resets))).scalar()
        queued = (await conn.execute(select(func.count()).select_from(jobs))).scalar()
    return int(links or 0), int(queued or 0)


async def post_as_a_server_does(
    app: FastAPI, engine: AsyncEngine, path: str, body: bytes, content_type: str
) -> tuple[int, bytes, Rows, Rows]:
    """POST through the app's ASGI interface: the status and body of the answer, the rows
    there were the moment its last byte went out, and those there are once the request is
    over (what the app does after its answer)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"origin", b"http://testserver"),
            (b"content-type", content_type.encode()),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }
    request: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
    answered = asyncio.Event()
    status = 0
    chunks: list[bytes] = []
    at_answer: Rows | None = None

    async def receive() -> Message:
        if request:
            return request.pop()
        await answered.wait()  # the client stays until it has the whole answer
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status, at_answer
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                at_answer = await rows_written(engine)
                answered.set()

    await app(scope, receive, send)
    assert at_answer is not None
    return status, b"".join(chunks), at_answer, await rows_written(engine)


async def test_the_api_answers_before_looking_the_address_up(
    mailing_app: FastAPI, engine: AsyncEngine, make_user: MakeUser
) -> None:
    await make_user("customer", email="known@example.com")
    answers = {}
    for email, made in (("unknown@example.com", (0, 0)), ("known@example.com", (1, 1))):
        body = json.dumps({"email": email}).encode()
        status, text, at_answer, after = await post_as_a_server_does(
            mailing_app, engine, "/password-reset", body, "application/json"
        )
        assert status == 202
        assert at_answer == (0, 0), "the answer waited for the link and its mail"
        assert after == made
        answers[email] = text
    assert answers["unknown@example.com"] == answers["known@example.com"]


async def test_the_page_answers_before_looking_the_address_up(
    mailing_app: FastAPI, engine: AsyncEngine, make_user: MakeUser
) -> None:
    await make_user("customer", email="known@example.com")
    for email, made in (("unknown@example.com", (0, 0)), ("known@example.com", (1, 1))):
        body = urlencode({"email": email}).encode()
        status, text, at_answer, after = await post_as_a_server_does(
            mailing_app, engine, "/app/password-reset", body, "application/x-www-form-urlencoded"
        )
        assert status == 200 and b"Check your mail" in text
        assert at_answer == (0, 0), "the answer waited for the link and its mail"
        assert after == made


async def test_a_link_that_cannot_be_made_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A database without the service's tables: the lookup after the answer fails.
    empty = make_url(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    settings = make_settings(empty, tmp_path, smtp_host="127.0.0.1")
    database = await open_database(settings)
    try:
        await service.mail_link(database, email="lost@example.com", settings=settings)
    finally:
        await database.close(1.0)
    assert "a password reset link could not be made" in caplog.text
    assert "lost@example.com" not in caplog.text
