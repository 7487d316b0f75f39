"""Mail in: `ticketdesk mail-in` as an MTA's pipe runs it, with real mail from common clients."""

from __future__ import annotations

import asyncio
import email
import os
import re
import subprocess
import sys
from email import policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, make_url, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import JWT_KEY, Account, MakeUser, client_with, open_ticket
from receivers import WebhookReceiver, sending_to, smtp_server, text_of
from ticketdesk.mail import addresses, keys
from ticketdesk.models import messages, tickets, users

MAILS = Path(__file__).parent / "samples"
DOMAIN = "support.example.com"
PLACEHOLDER = b"support+t12-abcd@support.example.com"


def reply_address(ticket_id: int) -> str:
    return addresses.reply_address(
        JWT_KEY.encode(), support_address=f"support@{DOMAIN}", domain=DOMAIN, ticket_id=ticket_id
    )


def mail_in(
    database_url: URL, tmp_path: Path, raw: bytes, *args: str, **settings: str
) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "DATABASE_URL": database_url.render_as_string(hide_password=False),
        "JWT_KEY": JWT_KEY,
        "MAIL_FROM": f"Acme Support <support@{DOMAIN}>",
        "DATA_DIR": str(tmp_path / "data"),
        "LOG_LEVEL": "warning",
        **settings,
    }
    done = subprocess.run(
        [sys.executable, "-m", "ticketdesk", "mail-in", *args],
        input=raw,
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


def fixture(name: str, *, to_ticket: int | None = None) -> bytes:
    raw = (MAILS / name).read_bytes()
    if to_ticket is not None:
        raw = raw.replace(PLACEHOLDER, reply_address(to_ticket).encode())
    return raw


def with_header(raw: bytes, name: str, value: str) -> bytes:
    """The mail with its first `name` field (folded lines and all) set to `value`."""
    field = re.compile(rb"(?im)^" + re.escape(name.encode()) + rb":[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*")
    line = f"{name}: {value}".encode()
    changed, found = field.subn(lambda _: line, raw, count=1)
    assert found == 1
    return changed


async def texts_of(engine: AsyncEngine, ticket_id: int) -> list[tuple[str, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(messages.c.type, messages.c.text)
            .where(messages.c.ticket_id == ticket_id)
            .order_by(messages.c.id)
        )
        return [(row[0], row[1]) for row in rows]


async def count(engine: AsyncEngine, table: object) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)  # type: ignore[arg-type]


@pytest.mark.slow
async def test_a_mail_to_support_opens_a_ticket_once_for_a_new_customer(
    database_url: URL, tmp_path: Path, engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    raw = fixture("new_ticket.eml")
    done = mail_in(database_url, tmp_path, raw)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "opened ticket #1"
    async with engine.connect() as conn:
        user = (
            await conn.execute(
                select(users.c.username, users.c.password_hash, users.c.is_staff).where(
                    users.c.email == "heidi@alps.example"
                )
            )
        ).one()
        topic = await conn.scalar(select(tickets.c.topic))
    assert user == ("Heidi Klum", "!", False)
    assert topic == "Printer on fire"
    assert await texts_of(engine, 1) == [
        (
            "request",
            "Hello,\n\nthe printer on the 2nd floor is on fire. There is smoke everywhere.\n"
            "What should we do?\n\nThanks,\nHeidi",
        )
    ]
    # Delivered again (an MTA retrying): stored once.
    again = mail_in(database_url, tmp_path, raw)
    assert again.returncode == 0 and again.stdout.strip() == "duplicate ticket #1"
    assert await count(engine, tickets) == 1
    # The account has no password until its owner sets one.
    login = await client.post("/login", json={"email": "heidi@alps.example", "password": "!"})
    assert login.status_code == 404


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "gmail_reply.eml",
            "Hi,\n\nthe fire is out \N{EN DASH} but the printer still shows error E-42 "
            "when I print\ndouble-sided.\n\nBob",
        ),
        (
            "outlook_reply.eml",
            "Hello,\n\nthe replacement toner arrived, thank you. Could you also send the "
            "invoice for it?\n\nKind regards\nCarol",
        ),
        ("apple_mail_reply.eml", "It works again, thank you!"),
        (
            "thunderbird_reply.eml",
            "Hello,\n\nthe error is back after the update. The printer log says:\n\n"
            "    E-42 duplex unit not ready\n    E-17 tray 2 empty",
        ),
        (
            "latin1.eml",
            "Bonjour,\n\nl'imprimante du deuxième étage ne répond toujours pas après le "
            "redémarrage.\n\nMerci d'avance,\nRené",
        ),
    ],
)
async def test_a_reply_from_any_mail_client_lands_on_its_ticket_without_the_quote(
    database_url: URL,
    tmp_path: Path,
    engine: AsyncEngine,
    client: httpx.AsyncClient,
    make_user: MakeUser,
    name: str,
    expected: str,
) -> None:
    raw = fixture(name)
    sender = email.message_from_bytes(raw, policy=policy.default)["From"].addresses[0]
    author = await make_user("customer", email=sender.addr_spec.lower())
    ticket_id = await open_ticket(client, author)
    resolved_by = await make_user("staff")
    for body in ({"text": "an answer"},):
        await client.post(f"/tickets/{ticket_id}/messages", json=body, headers=resolved_by.headers)
    await client.patch(
        f"/tickets/{ticket_id}", json={"status": "resolved"}, headers=resolved_by.headers
    )
    done = mail_in(database_url, tmp_path, fixture(name, to_ticket=ticket_id))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"posted ticket #{ticket_id}"
    assert (await texts_of(engine, ticket_id))[-1] == ("request", expected)
    # A customer's reply opens a resolved ticket again, as on the web.
    ticket = await client.get(f"/tickets/{ticket_id}", headers=author.headers)
    assert ticket.json()["status"] == "pending"


@pytest.mark.slow
async def test_an_html_only_mail_becomes_text(
    database_url: URL, tmp_path: Path, engine: AsyncEngine
) -> None:
    done = mail_in(database_url, tmp_path, fixture("html_only.eml"))
    assert done.returncode == 0, done.stderr
    texts = await texts_of(engine, 1)
    assert texts == [
        (
            "request",
            "Hi team,\n\nthe printer works again.\n"
            "Paper & toner are fine \N{EN DASH} thanks a lot!",
        )
    ]


@pytest.mark.slow
async def test_attachments_become_attachments(
    database_url: URL, tmp_path: Path, client: httpx.AsyncClient, staff: Account
) -> None:
    done = mail_in(database_url, tmp_path, fixture("with_attachments.eml"))
    assert done.returncode == 0, done.stderr
    page = await client.get("/tickets/1/messages", headers=staff.headers)
    (message,) = page.json()
    files = {a["filename"]: a for a in message["attachments"]}
    assert set(files) == {"Rechnung März.pdf", "Fehlerübersicht.png"}
    png = await client.get(
        f"/attachments/{files['Fehlerübersicht.png']['id']}", headers=staff.headers
    )
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["auto_reply.eml", "bulk.eml", "bounce.eml"])
async def test_mail_no_person_wrote_is_dropped(
    database_url: URL, tmp_path: Path, engine: AsyncEngine, name: str
) -> None:
    done = mail_in(database_url, tmp_path, fixture(name))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("dropped:")
    assert await count(engine, tickets) == 0
    assert await count(engine, users) == 0


@pytest.mark.slow
async def test_our_own_mail_coming_back_is_dropped(
    database_url: URL, tmp_path: Path, engine: AsyncEngine
) -> None:
    raw = re.sub(
        rb"(?im)^message-id:\s*<[^>]+>",
        b"Message-ID: <t5.e9@support.example.com>",
        fixture("new_ticket.eml"),
        count=1,
    )
    done = mail_in(database_url, tmp_path, raw)
    assert done.returncode == 0 and "our own" in done.stdout
    assert await count(engine, tickets) == 0


@pytest.mark.slow
async def test_forged_and_foreign_replies_are_refused(
    database_url: URL,
    tmp_path: Path,
    engine: AsyncEngine,
    client: httpx.AsyncClient,
    make_user: MakeUser,
) -> None:
    carol = await make_user("customer", email="carol@example.com")
    ticket_id = await open_ticket(client, carol)
    forged = mail_in(database_url, tmp_path, fixture("forged_reply.eml"))
    assert forged.returncode == 77
    assert "not a reply address" in forged.stderr
    # A real reply address, but Bob is not the ticket's author.
    foreign = mail_in(database_url, tmp_path, fixture("gmail_reply.eml", to_ticket=ticket_id))
    assert foreign.returncode == 77
    assert "only its author" in foreign.stderr
    assert len(await texts_of(engine, ticket_id)) == 1
    assert await count(engine, tickets) == 1


@pytest.mark.slow
async def test_unreadable_input_and_an_unreachable_database(
    database_url: URL, tmp_path: Path
) -> None:
    garbage = mail_in(database_url, tmp_path, b"\x00\x01 this is no mail")
    assert garbage.returncode == 65
    away = make_url_unreachable()
    tempfail = mail_in(away, tmp_path, fixture("new_ticket.eml"))
    assert tempfail.returncode == 75, tempfail.stderr
    assert "try again later" in tempfail.stderr


def make_url_unreachable() -> URL:
    return make_url("postgresql+asyncpg://postgres@127.0.0.1:9/nothing")


@pytest.mark.slow
async def test_a_conversation_by_mail_end_to_end(
    database_url: URL, tmp_path: Path, make_user: MakeUser, superuser: Account
) -> None:
    """A customer opens a ticket by mail, gets the answer by mail in the same thread, answers
    from their mail client; a webhook receiver sees every event, verified."""
    agent = await make_user("staff", email="agent@example.com", username="Bruno")
    with smtp_server() as (box, port), WebhookReceiver() as receiver:
        settings = sending_to(
            port, mail_from=f"Acme Support <support@{DOMAIN}>", webhook_allow_private=True
        )
        async with client_with(database_url, tmp_path, **settings) as client:
            hook = await client.post(
                "/webhooks",
                json={"url": receiver.url, "events": ["created", "message", "status"]},
                headers=superuser.headers,
            )
            receiver.secret = hook.json()["secret"]
            opened = await asyncio.to_thread(
                mail_in, database_url, tmp_path, fixture("new_ticket.eml")
            )
            assert opened.stdout.strip() == "opened ticket #1"
            mails = await box.wait_for(3)  # the customer's receipt; each agent's new ticket
            receipt = next(m for m in mails if "heidi@alps.example" in str(m["To"]))
            assert receipt["Subject"] == "[#1] Printer on fire"
            # In the customer's own thread: it answers the mail that opened the ticket.
            assert receipt["In-Reply-To"] == "<8f14e45f-ceea-467f-a8f1-8b7c9c0e9d2a@alps.example>"

            answer = {"text": "Leave the building, please. We call the fire brigade."}
            posted = await client.post("/tickets/1/messages", json=answer, headers=agent.headers)
            assert posted.status_code == 201
            reply = next(m for m in await box.wait_for(4) if m not in mails)
            assert reply["In-Reply-To"] == receipt["Message-ID"]
            assert answer["text"] in text_of(reply)

            # The customer answers from their mail client: to the Reply-To, quoting.
            theirs = EmailMessage()
            theirs["From"] = "Heidi Klum <heidi@alps.example>"
            theirs["To"] = reply["Reply-To"]
            theirs["Subject"] = f"Re: {reply['Subject']}"
            theirs["Message-ID"] = "<reply-1@alps.example>"
            theirs["In-Reply-To"] = reply["Message-ID"]
            theirs["References"] = f"{reply['In-Reply-To']} {reply['Message-ID']}"
            quoted = "\n".join(f"> {line}" for line in text_of(reply).splitlines())
            theirs.set_content(f"We are outside, thanks!\n\nOn Tue, Bruno wrote:\n{quoted}\n")
            answered = await asyncio.to_thread(mail_in, database_url, tmp_path, bytes(theirs))
            assert answered.returncode == 0, answered.stderr
            assert answered.stdout.strip() == "posted ticket #1"
            thread = (await client.get("/tickets/1/messages", headers=agent.headers)).json()
            assert thread[-1]["text"] == "We are outside, thanks!"
            to_agent = [m for m in await box.wait_for(6) if "agent@example.com" in str(m["To"])]
            assert "We are outside, thanks!" in text_of(to_agent[-1])

            feed = (await client.get("/events", headers=agent.headers)).json()
            calls = await receiver.wait_for(len(feed))
    assert [c.body["data"] for c in sorted(calls, key=lambda c: c.body["data"]["id"])] == feed
    assert all(call.verified for call in calls)


async def authors(engine: AsyncEngine) -> dict[int, str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(tickets.c.id, users.c.email).join(users, users.c.id == tickets.c.author_id)
        )
        return {row[0]: row[1] for row in rows}


@pytest.mark.slow
async def test_a_message_id_is_the_same_mail_only_from_the_same_sender(
    database_url: URL, tmp_path: Path, engine: AsyncEngine
) -> None:
    heidis = fixture("new_ticket.eml")
    assert mail_in(database_url, tmp_path, heidis).stdout.strip() == "opened ticket #1"
    assert mail_in(database_url, tmp_path, heidis).stdout.strip() == "duplicate ticket #1"
    # Bob's mail with Heidi's Message-ID is his own mail, held to his own checks: on Heidi's
    # ticket he may not write...
    bobs = with_header(heidis, "From", "Bob <bob@example.com>")
    refused = mail_in(database_url, tmp_path, with_header(bobs, "To", reply_address(1)))
    assert refused.returncode == 77 and "only its author" in refused.stderr
    assert len(await texts_of(engine, 1)) == 1
    # ...and to the support address it opens his own ticket, once.
    for expected in ("opened ticket #2", "duplicate ticket #2"):
        done = mail_in(database_url, tmp_path, bobs)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == expected
    assert await authors(engine) == {1: "heidi@alps.example", 2: "bob@example.com"}


@pytest.mark.slow
@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
async def test_the_receipt_for_a_mail_with_a_folded_message_id_is_delivered(
    database_url: URL, tmp_path: Path, engine: AsyncEngine, newline: str
) -> None:
    raw = fixture("new_ticket.eml").replace(b"\n", newline.encode())
    folded = f"<8f14e45f-ceea-467f-{newline} a8f1-8b7c9c0e9d2a@alps.example>"
    raw = with_header(raw, "Message-ID", folded)
    with smtp_server() as (box, port):
        settings = sending_to(port, mail_from=f"Acme Support <support@{DOMAIN}>")
        async with client_with(database_url, tmp_path, **settings):
            opened = await asyncio.to_thread(mail_in, database_url, tmp_path, raw)
            assert opened.stdout.strip() == "opened ticket #1", opened.stderr
            (receipt,) = await box.wait_for(1)
    unfolded = "<8f14e45f-ceea-467f-a8f1-8b7c9c0e9d2a@alps.example>"
    assert (receipt["In-Reply-To"], receipt["References"]) == (unfolded, unfolded)
    assert receipt["To"] == "Heidi Klum <heidi@alps.example>"
    again = mail_in(database_url, tmp_path, raw)
    assert again.stdout.strip() == "duplicate ticket #1"


@pytest.mark.slow
@pytest.mark.parametrize(
    "sender",
    [
        f"support@{DOMAIN}",
        "Acme Support <SUPPORT@Support.Example.com>",
        "a reply address",
        f"support+t24-0123456789abcdef@{DOMAIN}",
        f"SUPPORT+T24-0123456789ABCDEF@{DOMAIN.upper()}",
        f"support+anything@{DOMAIN}",
        f"someone+t24-00@{DOMAIN}",
    ],
    ids=["support", "support-named", "reply", "reply-form", "reply-upper", "plus", "other-plus"],
)
async def test_mail_from_an_address_of_ours_is_dropped_and_makes_no_account(
    database_url: URL, tmp_path: Path, engine: AsyncEngine, sender: str
) -> None:
    sender = reply_address(24) if sender == "a reply address" else sender
    for to in ("Support <support@support.example.com>", reply_address(24)):
        raw = with_header(with_header(fixture("new_ticket.eml"), "From", sender), "To", to)
        done = mail_in(database_url, tmp_path, raw)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("dropped:") and "our own" in done.stdout
    assert await count(engine, users) == 0
    assert await count(engine, tickets) == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    "sender",
    [
        "=?utf-8?q?Eve=0D=0ABcc=3A_evil=40example=2Ecom?= <dave@example.com>",
        "=?utf-8?q?Eve=0D=0ABcc:=20evil@example.com?= <dave@example.com>",
        "=?utf-8?q?Eve=0D=0ABcc:_evil@example.com?= <dave@example.com>",
        "=?utf-8?b?RXZlDQpCY2M6IGV2aWxAZXhhbXBsZS5jb20=?= <dave@example.com>",
        "=?utf-8?q?Eve=0ABcc=3A_evil=40example=2Ecom?= <dave@example.com>",
        '"=?utf-8?q?Eve=0D=0ABcc=3A_evil=40example=2Ecom?=" <dave@example.com>',
        "Eve <=?utf-8?q?dave=0D=0A?=@example.com>",
        "Dave <dave@example..com>",
        "Dave <dave@localhost>",
    ],
    ids=[
        "q-crlf",
        "q-raw-at",
        "q-underscore",
        "b-crlf",
        "q-lf",
        "quoted",
        "in-address",
        "double-dot",
        "no-dot",
    ],
)
async def test_a_from_that_is_no_valid_address_is_refused_and_stored_nowhere(
    database_url: URL, tmp_path: Path, engine: AsyncEngine, sender: str
) -> None:
    done = mail_in(database_url, tmp_path, with_header(fixture("new_ticket.eml"), "From", sender))
    assert done.returncode == 65, (done.stdout, done.stderr)
    assert "not a mail we can read" in done.stderr and "From" in done.stderr
    assert await count(engine, users) == 0
    assert await count(engine, tickets) == 0


def test_our_own_addresses() -> None:
    def ours(address: str, domain: str = DOMAIN) -> bool:
        return addresses.is_our_address(address, support_address=f"help@{DOMAIN}", domain=domain)

    assert ours(f"help@{DOMAIN}") and ours(f"Help+Whatever@{DOMAIN.upper()}")
    assert ours("help+t5-0a@replies.example", "replies.example")
    assert ours(f"help+t5-0a@{DOMAIN}", "replies.example")  # the support address's domain
    assert ours(f"sales+t5-0a@{DOMAIN}")
    assert not ours(f"sales@{DOMAIN}") and not ours(f"sales+news@{DOMAIN}")
    assert not ours("help@elsewhere.example") and not ours("help+t5-0a@elsewhere.example")


def test_a_mail_key_keeps_the_message_id_and_tells_senders_apart() -> None:
    heidi = keys.mail_key("heidi@alps.example", "m1@alps.example", b"raw")
    bob = keys.mail_key("bob@example.com", "m1@alps.example", b"raw")
    assert heidi != bob and len(heidi) <= keys.KEY_LENGTH
    assert heidi == keys.mail_key("heidi@alps.example", "m1@alps.example", b"other bytes")
    assert keys.message_id_of(heidi) == keys.message_id_of(bob) == "m1@alps.example"
    long = "x" * 240 + "@alps.example"
    digest = keys.mail_key("heidi@alps.example", long, b"raw")
    assert len(digest) <= keys.KEY_LENGTH and keys.message_id_of(digest) is None
    assert digest != keys.mail_key("bob@example.com", long, b"raw")
    assert keys.message_id_of(keys.mail_key("heidi@alps.example", None, b"raw")) is None
    # Keys stored before the sender was part of them: the Message-ID alone, maybe folded.
    assert keys.message_id_of("m1@alps.example") == "m1@alps.example"
    assert keys.message_id_of("m1-\n a@alps.example") == "m1-a@alps.example"


@pytest.mark.slow
@pytest.mark.postgresql_only
async def test_a_database_that_fails_mid_mail_defers_it_never_bounces_it(
    database_url: URL,
    tmp_path: Path,
    engine: AsyncEngine,
    client: httpx.AsyncClient,
    make_user: MakeUser,
) -> None:
    """A write the database cannot do now (here: it waits on a lock past the statement
    timeout; in production a restart) is 75, "try again later", whichever step it hits: a
    refusal (77) would bounce a mail that a minute later would have gone in."""
    raw = fixture("gmail_reply.eml")
    sender = email.message_from_bytes(raw, policy=policy.default)["From"].addresses[0]
    author = await make_user("customer", email=sender.addr_spec.lower())
    ticket_id = await open_ticket(client, author)
    slow = {"DB_STATEMENT_TIMEOUT": "1"}
    for locked, mail in (
        (
            select(tickets.c.id).where(tickets.c.id == ticket_id),
            fixture("gmail_reply.eml", to_ticket=ticket_id),
        ),
        (
            select(users.c.id).where(users.c.id == author.id),
            with_header(fixture("new_ticket.eml"), "From", sender.addr_spec),
        ),
    ):
        async with engine.connect() as holder, holder.begin():
            await holder.execute(locked.with_for_update())
            done = await asyncio.to_thread(mail_in, database_url, tmp_path, mail, **slow)
        assert done.returncode == 75, done.stderr
        assert "try again later" in done.stderr
    # Once the database can, both go in.
    assert (
        mail_in(database_url, tmp_path, fixture("gmail_reply.eml", to_ticket=ticket_id)).returncode
        == 0
    )
    assert len(await texts_of(engine, ticket_id)) == 2
