"""The delivery engine's lanes and limits: mail never waits behind webhook calls, a dead
endpoint is paused and probed instead of holding the others up, and every call, to an
endpoint or to the SMTP server, ends by its deadline whatever the peer does."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import Account, MakeUser, _free_port, client_with, open_ticket
from receivers import Mailbox, RawPeer, WebhookReceiver, never_answers, sending_to, trickles
from ticketdesk.models import jobs

DEAD_ENDPOINTS = 8
TICKETS = 10


def calling_hooks(**overrides: Any) -> dict[str, Any]:
    """Settings of an app whose worker runs its jobs at once and may call loopback receivers."""
    return {
        "jobs_in_server": True,
        "job_poll_seconds": 0.1,
        "webhook_allow_private": True,
        **overrides,
    }


async def until(check: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not within {seconds:g} s")


async def add_endpoint(
    client: httpx.AsyncClient, superuser: Account, url: str, kinds: list[str] | None = None
) -> dict[str, Any]:
    created = await client.post(
        "/webhooks", json={"url": url, "events": kinds or ["created"]}, headers=superuser.headers
    )
    assert created.status_code == 201, created.text
    hook: dict[str, Any] = created.json()
    return hook


async def endpoint(client: httpx.AsyncClient, superuser: Account, hook_id: int) -> Any:
    return (await client.get(f"/webhooks/{hook_id}", headers=superuser.headers)).json()


async def test_mail_and_answering_endpoints_never_wait_behind_dead_ones(
    database_url: URL,
    tmp_path: Path,
    make_user: MakeUser,
    superuser: Account,
    mailbox: tuple[Mailbox, int],
) -> None:
    box, port = mailbox
    settings = sending_to(
        port,
        webhook_allow_private=True,
        webhook_timeout=1,
        webhook_pause_after=3,
        webhook_pause_seconds=60,
    )
    customer = await make_user("customer")
    latecomer = await make_user("customer", email="late@example.com")
    with RawPeer(never_answers) as dead, WebhookReceiver() as healthy:
        async with client_with(database_url, tmp_path, **settings) as client:
            dead_hooks = [
                await add_endpoint(client, superuser, f"{dead.url}/{n}")
                for n in range(DEAD_ENDPOINTS)
            ]
            healthy_hook = await add_endpoint(client, superuser, healthy.url)
            healthy.secret = healthy_hook["secret"]
            for _ in range(TICKETS):  # a call to each endpoint for each
                await open_ticket(client, customer)

            async def calls_hang() -> bool:
                return len(dead.connections) >= 4

            await until(calls_hang, 5, "the dead endpoints were called")

            # A mail queued behind the whole backlog goes out at once, in a lane of its own.
            asked = time.monotonic()
            await open_ticket(client, latecomer)

            async def mailed() -> bool:
                return bool(box.to("late@example.com"))

            await until(mailed, 3, "the mail came")
            mail_took = time.monotonic() - asked

            # The answering endpoint gets its calls while the dead ones hang: it goes first.
            await healthy.wait_for(TICKETS + 1, seconds=10)

            # Each dead endpoint is paused after three failed calls in a row, its calls wait.
            async def all_paused() -> list[Any]:
                hooks = [await endpoint(client, superuser, hook["id"]) for hook in dead_hooks]
                return hooks if all(hook["state"] == "paused" for hook in hooks) else []

            paused = await until(all_paused, 20, "every dead endpoint was paused")
            calls_then = len(dead.connections)
            await asyncio.sleep(1.5)
            assert len(dead.connections) == calls_then  # nothing more goes to them
            healthy_now = await endpoint(client, superuser, healthy_hook["id"])
    assert mail_took < 3
    for hook in paused:
        assert hook["is_active"] is True and hook["consecutive_failures"] == 3
        assert hook["paused_reason"].startswith("3 calls failed in a row; the last: no complete")
        assert hook["paused_until"] is not None
    assert healthy_now["state"] == "active" and healthy_now["consecutive_failures"] == 0
    per_endpoint: dict[str, int] = {}
    for connection in dead.connections:
        per_endpoint[connection.path] = per_endpoint.get(connection.path, 0) + 1
        # No call hung longer than the deadline (and the slack of a busy machine).
        assert connection.closed is not None
        assert connection.closed - connection.opened < 1 + 1.5
    # At most two at once (WEBHOOK_ENDPOINT_CONCURRENCY), then one at a time once a call has
    # failed: three failures each. (Whether any endpoint reaches two depends on how the slots
    # fell among the six endpoints: the limit is what holds.)
    assert len(per_endpoint) == DEAD_ENDPOINTS
    assert all(3 <= count <= 4 for count in per_endpoint.values()), per_endpoint
    assert max(most_at_once(dead, path) for path in per_endpoint) <= 2


def most_at_once(peer: RawPeer, path: str) -> int:
    """The most connections for `path` the peer held open at one time."""
    changes = sorted(
        (moment, step)
        for c in peer.connections
        if c.path == path and c.closed is not None
        for moment, step in ((c.opened, 1), (c.closed, -1))
    )
    held = most = 0
    for _, step in changes:
        held += step
        most = max(most, held)
    return most


async def test_a_paused_endpoint_is_probed_and_its_calls_flow_once_it_answers(
    database_url: URL, tmp_path: Path, make_user: MakeUser, superuser: Account
) -> None:
    customer = await make_user("customer")
    up = False

    def answer(_webhook_id: str, _attempt: int) -> int:
        return 204 if up else 503

    settings = calling_hooks(
        webhook_pause_after=2,
        webhook_pause_seconds=1,
        webhook_pause_max_seconds=2,
        job_retry_delays="0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1",
    )
    with WebhookReceiver(answer) as receiver:
        async with client_with(database_url, tmp_path, **settings) as client:
            hook = await add_endpoint(client, superuser, receiver.url)
            receiver.secret = hook["secret"]
            for _ in range(5):
                await open_ticket(client, customer)

            async def paused() -> Any:
                now = await endpoint(client, superuser, hook["id"])
                return now if now["state"] == "paused" else None

            first = await until(paused, 5, "the endpoint was paused")
            assert first["consecutive_failures"] == 2
            assert "the endpoint answered 503" in first["paused_reason"]

            # A failed probe: paused again, for twice as long.
            async def probed() -> Any:
                now = await endpoint(client, superuser, hook["id"])
                return now if now["consecutive_failures"] == 3 else None

            second = await until(probed, 5, "a probe went")
            assert second["state"] == "paused"
            assert second["paused_until"] > first["paused_until"]
            attempts = sum(receiver.attempts.values())
            assert attempts == 3  # two calls, one probe: the rest waited

            up = True  # the next probe goes through, and the rest follow at once
            await receiver.wait_for(5, seconds=10)
            healed = await endpoint(client, superuser, hook["id"])
    assert healed["state"] == "active" and healed["consecutive_failures"] == 0
    assert healed["paused_until"] is None and healed["paused_reason"] is None


async def test_a_superuser_resumes_a_paused_endpoint_at_once(
    database_url: URL, tmp_path: Path, make_user: MakeUser, superuser: Account
) -> None:
    customer = await make_user("customer")
    settings = calling_hooks(
        webhook_pause_after=1, webhook_pause_seconds=3600, job_retry_delays="0.1,0.1"
    )
    with WebhookReceiver(lambda _id, _attempt: 500) as receiver:
        async with client_with(database_url, tmp_path, **settings) as client:
            hook = await add_endpoint(client, superuser, receiver.url)
            receiver.secret = hook["secret"]
            await open_ticket(client, customer)

            async def paused() -> Any:
                now = await endpoint(client, superuser, hook["id"])
                return now if now["state"] == "paused" else None

            await until(paused, 5, "the endpoint was paused")
            await open_ticket(client, customer)  # waits too
            listed = (await client.get("/webhooks", headers=superuser.headers)).json()
            assert listed[0]["state"] == "paused"
            receiver.answer = lambda _id, _attempt: 204
            resumed = await client.patch(
                f"/webhooks/{hook['id']}", json={"is_active": True}, headers=superuser.headers
            )
            assert resumed.status_code == 200
            assert resumed.json()["state"] == "active"
            assert resumed.json()["paused_until"] is None
            await receiver.wait_for(2, seconds=5)


async def test_a_trickling_answer_is_cut_off_at_the_deadline(
    database_url: URL, tmp_path: Path, make_user: MakeUser, superuser: Account, engine: AsyncEngine
) -> None:
    customer = await make_user("customer")
    settings = calling_hooks(webhook_timeout=3, job_retry_delays="60")
    with RawPeer(trickles(every_s=2)) as peer:
        async with client_with(database_url, tmp_path, **settings) as client:
            await add_endpoint(client, superuser, peer.url)
            await open_ticket(client, customer)

            async def failed_once() -> Any:
                async with engine.connect() as conn:
                    row = (
                        await conn.execute(
                            select(jobs.c.status, jobs.c.attempts, jobs.c.last_error)
                        )
                    ).first()
                return row if row is not None and row.status == "queued" and row.attempts else None

            async def called() -> bool:
                return bool(peer.connections)

            async def closed() -> bool:
                return peer.connections[0].closed is not None

            await until(called, 5, "the call came")
            job = await until(failed_once, 3 + 3, "the call failed by its deadline")
            await until(closed, 3, "the connection closed")
    (connection,) = peer.connections  # one attempt, never a second beside it
    assert connection.closed is not None
    assert connection.closed - connection.opened < 3 + 1.5
    assert job.last_error == "no complete answer within 3 s"
    assert connection.sent <= 2  # a byte every 2 s: the body had barely begun


class SlowMailbox(Mailbox):
    """An SMTP server that answers each command in its own good time: each reply within
    SMTP_TIMEOUT, the whole exchange well past it."""

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        await asyncio.sleep(1.2)
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        await asyncio.sleep(1.2)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(1.2)
        return await super().handle_DATA(server, session, envelope)


async def test_a_mail_is_given_up_at_its_deadline_however_the_server_dawdles(
    database_url: URL, tmp_path: Path, make_user: MakeUser, engine: AsyncEngine
) -> None:
    customer = await make_user("customer", email="carla@example.com")
    box = SlowMailbox()
    port = _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings = sending_to(port, smtp_timeout=2, job_retry_delays="60")
        async with client_with(database_url, tmp_path, **settings) as client:
            opened = time.monotonic()
            await open_ticket(client, customer)

            async def failed_once() -> Any:
                async with engine.connect() as conn:
                    row = (
                        await conn.execute(
                            select(jobs.c.status, jobs.c.attempts, jobs.c.last_error).where(
                                jobs.c.kind == "mail"
                            )
                        )
                    ).first()
                return row if row is not None and row.attempts and row.status == "queued" else None

            job = await until(failed_once, 2 + 3, "the mail failed by its deadline")
            took = time.monotonic() - opened
            await asyncio.sleep(2.5)  # the whole exchange would have ended by now
    finally:
        controller.stop()
    assert job.last_error == "the SMTP server did not take the mail within 2 s"
    assert took < 2 + 2
    assert box.mails == []  # cut off before the mail was handed over
