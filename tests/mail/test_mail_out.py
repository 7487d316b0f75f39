"""Mail out: who gets which mail, threaded, through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from sqlalchemy import select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import JWT_KEY, MakeUser, _free_port, client_with, make_settings, open_ticket
from receivers import Mailbox, html_of, sending_to, text_of
from ticketdesk.mail import addresses, outbound
from ticketdesk.models import jobs

DOMAIN = "support.example.com"


@pytest.fixture
async def mailing(
    database_url: URL, tmp_path: Path, mailbox: tuple[Mailbox, int], engine: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose worker sends mail to the test's SMTP server."""
    _, port = mailbox  # `engine` first: no job of an earlier test is left to run
    settings = sending_to(
        port, mail_from=f"Acme Support <support@{DOMAIN}>", public_url="https://help.example.com"
    )
    async with client_with(database_url, tmp_path, **settings) as client:
        yield client


def mac_address(ticket_id: int) -> str:
    return addresses.reply_address(
        JWT_KEY.encode(), support_address=f"support@{DOMAIN}", domain=DOMAIN, ticket_id=ticket_id
    )


async def test_a_ticket_conversation_by_mail_in_one_thread(
    mailing: httpx.AsyncClient, mailbox: tuple[Mailbox, int], make_user: MakeUser
) -> None:
    box, _ = mailbox
    customer = await make_user("customer", email="carla@example.com", username="Carla")
    agent = await make_user("staff", email="bruno@example.com", username="Bruno")
    other_agent = await make_user("staff", email="olga@example.com", username="Olga")

    ticket_id = await open_ticket(mailing, customer, topic="Printer on fire", text="Smoke!")
    first = await box.wait_for(3)
    (received,) = [m for m in first if "carla" in str(m["To"])]
    new = [m for m in first if "carla" not in str(m["To"])]
    assert received["To"] == "Carla <carla@example.com>"
    assert received["Subject"] == f"[#{ticket_id}] Printer on fire"
    root = f"<t{ticket_id}.c@{DOMAIN}>"
    assert received["Message-ID"] == root
    assert received["Reply-To"] == mac_address(ticket_id)
    assert received["Auto-Submitted"] == "auto-generated"
    assert "Smoke!" in text_of(received)
    assert "https://help.example.com/app/tickets/" in html_of(received)
    assert sorted(str(m["To"]) for m in new) == [
        "Bruno <bruno@example.com>",
        "Olga <olga@example.com>",
    ]
    assert all(m["Message-ID"] == f"<t{ticket_id}.a@{DOMAIN}>" for m in new)
    assert all(m["Reply-To"] is None for m in new)

    # An internal note is never mailed; the answer is, with its text, in the thread.
    note = {"text": "the customer is a VIP", "internal": True}
    posted = await mailing.post(f"/tickets/{ticket_id}/messages", json=note, headers=agent.headers)
    assert posted.status_code == 201
    answer = {"text": "Unplug it, please."}
    posted = await mailing.post(
        f"/tickets/{ticket_id}/messages", json=answer, headers=agent.headers
    )
    assert posted.status_code == 201
    reply = (await box.wait_for(4))[3]
    assert reply["To"] == "Carla <carla@example.com>"
    assert reply["Subject"] == f"Re: [#{ticket_id}] Printer on fire"
    assert reply["In-Reply-To"] == root
    assert reply["References"] == root
    assert reply["Message-ID"] != root
    assert "Unplug it, please." in text_of(reply)
    assert "VIP" not in text_of(reply) + html_of(reply)
    assert "Bruno" in text_of(reply)

    # Assigned: the customer's reply goes to the assignee alone.
    assigned = await mailing.patch(
        f"/tickets/{ticket_id}", json={"assignee_id": other_agent.id}, headers=agent.headers
    )
    assert assigned.status_code == 200, assigned.text
    posted = await mailing.post(
        f"/tickets/{ticket_id}/messages", json={"text": "Done, thanks"}, headers=customer.headers
    )
    assert posted.status_code == 201
    to_agent = (await box.wait_for(5))[4]
    assert to_agent["To"] == "Olga <olga@example.com>"
    assert to_agent["In-Reply-To"] == f"<t{ticket_id}.a@{DOMAIN}>"
    assert "Done, thanks" in text_of(to_agent)

    resolved = await mailing.patch(
        f"/tickets/{ticket_id}", json={"status": "resolved"}, headers=other_agent.headers
    )
    assert resolved.status_code == 200
    done = (await box.wait_for(6))[5]
    assert done["To"] == "Carla <carla@example.com>"
    assert done["In-Reply-To"] == root
    assert f"https://help.example.com/app/tickets/{ticket_id}#rate" in text_of(done)
    # Every mail is one of a kind.
    ids = [m["Message-ID"] for m in await box.wait_for(6)]
    assert len(set(ids)) == 6 - 1  # the agents' "new ticket" mail is one mail to two


async def test_agents_choose_which_mail_they_get(
    mailing: httpx.AsyncClient, mailbox: tuple[Mailbox, int], make_user: MakeUser
) -> None:
    box, _ = mailbox
    customer = await make_user("customer")
    quiet = await make_user("staff", email="quiet@example.com")
    await make_user("staff", email="keen@example.com")
    got = await mailing.get("/users/me/notifications", headers=quiet.headers)
    assert got.status_code == 200
    assert got.json() == {"new_tickets": True, "customer_replies": True}
    changed = await mailing.patch(
        "/users/me/notifications", json={"new_tickets": False}, headers=quiet.headers
    )
    assert changed.status_code == 200
    assert changed.json() == {"new_tickets": False, "customer_replies": True}
    ticket_id = await open_ticket(mailing, customer)
    mails = await box.wait_for(2)
    assert sorted(str(m["To"]) for m in mails) == sorted(
        [f"someone <{customer.email}>", "someone <keen@example.com>"]
    )
    posted = await mailing.post(
        f"/tickets/{ticket_id}/messages", json={"text": "more"}, headers=customer.headers
    )
    assert posted.status_code == 201
    replies = (await box.wait_for(4))[2:]
    assert sorted(str(m["To"]) for m in replies) == [
        "someone <keen@example.com>",
        "someone <quiet@example.com>",
    ]
    # Customers have no such choices.
    refused = await mailing.get("/users/me/notifications", headers=customer.headers)
    assert refused.status_code == 403


async def test_a_refused_recipient_fails_the_job_for_good(
    database_url: URL, tmp_path: Path, engine: AsyncEngine, make_user: MakeUser
) -> None:
    class Refusing(Mailbox):
        async def handle_RCPT(self, server, session, envelope, address, options):  # type: ignore[no-untyped-def]
            return "550 5.1.1 no such user"

    port = _free_port()
    controller = Controller(Refusing(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        async with client_with(database_url, tmp_path, **sending_to(port)) as client:
            customer = await make_user("customer")
            await open_ticket(client, customer)
            for _ in range(100):
                async with engine.connect() as conn:
                    rows = (await conn.execute(select(jobs.c.status, jobs.c.last_code))).all()
                if rows and rows[0][0] == "failed":
                    break
                await asyncio.sleep(0.1)
    finally:
        controller.stop()
    assert rows == [("failed", 550)]


def test_reply_addresses_cannot_be_made_up() -> None:
    key = b"k" * 48
    address = addresses.reply_address(
        key, support_address="help@example.com", domain="example.com", ticket_id=42
    )
    assert re.fullmatch(r"help\+t42-[0-9a-f]{16}@example\.com", address)
    assert addresses.ticket_of(key, address, domain="example.com") == 42
    assert addresses.ticket_of(key, f"Carla <{address.upper()}>", domain="example.com") == 42
    forged = address.replace("t42-", "t43-")
    with pytest.raises(addresses.ForgedAddress):
        addresses.ticket_of(key, forged, domain="example.com")
    with pytest.raises(addresses.ForgedAddress):
        addresses.ticket_of(b"another key" * 4, address, domain="example.com")
    assert addresses.ticket_of(key, "help@example.com", domain="example.com") is None
    assert addresses.ticket_of(key, address, domain="elsewhere.example") is None
    assert addresses.is_ours("<t42.e7@example.com>", "example.com")
    assert not addresses.is_ours("<CAF=abc@mail.gmail.com>", "example.com")


async def test_header_values_with_line_breaks_are_sent_on_one_line(
    database_url: URL, tmp_path: Path, mailbox: tuple[Mailbox, int]
) -> None:
    """What people and other mail wrote reaches the headers: a line break in it would
    make the mail unsendable, or add a header of its own."""
    box, port = mailbox
    settings = make_settings(database_url, tmp_path, **sending_to(port))
    mail = outbound.Mail(
        to="carla@example.com",
        to_name="Carla\r\nBcc: evil@example.com",
        subject="[#1] Printer\r\n on fire\nBcc: evil@example.com",
        template="received",
        context={
            "ticket_id": 1,
            "topic": "Printer on fire",
            "text": "Smoke!",
            "author": "Carla",
            "author_email": "carla@example.com",
            "link": "https://help.example.com/app/tickets/1",
        },
        message_id=f"t1.c@{DOMAIN}",
        thread="8f14e45f-ceea-\r\n 467f@alps.example\n",
        reply_to=mac_address(1) + "\r\n",
    )
    code, leave = await outbound.send(outbound.compose(mail, settings), settings)
    await leave()
    assert code == 250
    (sent,) = await box.wait_for(1)
    assert sent["To"] == '"Carla Bcc: evil@example.com" <carla@example.com>'
    assert sent["Subject"] == "[#1] Printer on fire Bcc: evil@example.com"
    assert sent["In-Reply-To"] == sent["References"] == "<8f14e45f-ceea-467f@alps.example>"
    assert sent["Reply-To"] == mac_address(1)
    assert sent["Bcc"] is None
    assert box.mails[0][0] == ["carla@example.com"]  # the envelope: no one else


async def test_a_mail_is_recorded_as_sent_before_its_smtp_session_ends(
    database_url: URL, tmp_path: Path, engine: AsyncEngine, make_user: MakeUser
) -> None:
    """A worker killed after the server took a mail and before the record sends it again:
    nothing that can wait (the QUIT's round trip) comes between the two."""
    release = threading.Event()
    quits: list[float] = []

    class HoldingQuit(SMTP):
        async def smtp_QUIT(self, arg: str) -> None:
            quits.append(time.monotonic())
            await asyncio.to_thread(release.wait, 30)
            await super().smtp_QUIT(arg)

    class Holding(Controller):
        def factory(self) -> SMTP:
            return HoldingQuit(self.handler)

    box = Mailbox()
    port = _free_port()
    controller = Holding(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        async with client_with(database_url, tmp_path, **sending_to(port)) as client:
            customer = await make_user("customer")
            await open_ticket(client, customer)
            await box.wait_for(1)
            for _ in range(100):
                async with engine.connect() as conn:
                    rows = (await conn.execute(select(jobs.c.status))).scalars().all()
                if rows == ["done"]:
                    break
                await asyncio.sleep(0.05)
            held = len(quits)
            release.set()
    finally:
        release.set()
        controller.stop()
    assert rows == ["done"]
    assert held == 1  # its QUIT was still waiting for an answer when it was recorded
