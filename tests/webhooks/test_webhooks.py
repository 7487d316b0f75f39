"""Webhooks: managed by superusers, signed per Standard Webhooks, retried, then disabled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import Account, MakeUser, client_with, open_ticket
from receivers import WebhookReceiver
from ticketdesk.models import jobs, utcnow, webhooks
from ticketdesk.webhooks import delivery

ALL_KINDS = ["created", "status", "assignee", "priority", "message", "note", "rating"]


@asynccontextmanager
async def working(
    database_url: URL, tmp_path: Path, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app that runs the jobs, quickly retried, and may call loopback."""
    settings: dict[str, Any] = {
        "jobs_in_server": True,
        "job_poll_seconds": 0.1,
        "job_retry_delays": "0.1,0.1,0.1",
        "webhook_allow_private": True,
        **overrides,
    }
    async with client_with(database_url, tmp_path, **settings) as client:
        yield client


async def subscribe(
    client: httpx.AsyncClient, superuser: Account, receiver: WebhookReceiver, kinds: list[str]
) -> dict[str, Any]:
    created = await client.post(
        "/webhooks", json={"url": receiver.url, "events": kinds}, headers=superuser.headers
    )
    assert created.status_code == 201, created.text
    hook: dict[str, Any] = created.json()
    receiver.secret = hook["secret"]
    return hook


async def until(check: Callable[[], Any], seconds: float = 10.0) -> Any:
    for _ in range(int(seconds / 0.05)):
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError("the condition never held")


async def test_only_superusers_manage_webhooks(
    client: httpx.AsyncClient, customer: Account, staff: Account, superuser: Account
) -> None:
    body = {"url": "https://hooks.example.com/in", "events": ["created"]}
    assert (await client.post("/webhooks", json=body)).status_code == 401
    for account in (customer, staff):
        assert (
            await client.post("/webhooks", json=body, headers=account.headers)
        ).status_code == 403
        assert (await client.get("/webhooks", headers=account.headers)).status_code == 403
    created = await client.post("/webhooks", json=body, headers=superuser.headers)
    assert created.status_code == 201
    hook = created.json()
    assert hook["secret"].startswith("whsec_")
    assert hook["is_active"] is True and hook["disabled_reason"] is None
    listed = (await client.get("/webhooks", headers=superuser.headers)).json()
    assert [h["id"] for h in listed] == [hook["id"]]
    assert "secret" not in listed[0]
    one = await client.get(f"/webhooks/{hook['id']}", headers=superuser.headers)
    assert "secret" not in one.json() and one.json()["url"] == body["url"]
    assert (await client.get(f"/webhooks/{hook['id']}", headers=staff.headers)).status_code == 403
    patched = await client.patch(
        f"/webhooks/{hook['id']}", json={"events": ["message", "note"]}, headers=superuser.headers
    )
    assert patched.status_code == 200 and patched.json()["events"] == ["message", "note"]
    deleted = await client.delete(f"/webhooks/{hook['id']}", headers=superuser.headers)
    assert deleted.status_code == 204
    gone = await client.get(f"/webhooks/{hook['id']}", headers=superuser.headers)
    assert gone.status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://example.com/x", "events": ["created"]},
        {"url": "https://user:pw@example.com/x", "events": ["created"]},
        {"url": "https://example.com/x", "events": []},
        {"url": "https://example.com/x", "events": ["created", "created"]},
        {"url": "https://example.com/x", "events": ["deleted"]},
        {"url": "not a url", "events": ["created"]},
    ],
)
async def test_bad_webhooks_are_refused(
    client: httpx.AsyncClient, superuser: Account, body: dict[str, Any]
) -> None:
    response = await client.post("/webhooks", json=body, headers=superuser.headers)
    assert response.status_code == 400, response.text
    assert (await client.get("/webhooks", headers=superuser.headers)).json() == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/in",
        "http://localhost/in",
        "http://10.1.2.3/in",
        "http://192.168.0.10/in",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/in",
        "http://[::ffff:127.0.0.1]/in",
    ],
)
async def test_private_targets_are_refused_unless_allowed(
    client: httpx.AsyncClient,
    superuser: Account,
    database_url: URL,
    tmp_path: Path,
    url: str,
) -> None:
    body = {"url": url, "events": ["created"]}
    refused = await client.post("/webhooks", json=body, headers=superuser.headers)
    assert refused.status_code == 400
    assert "address" in refused.json()["detail"]
    async with client_with(database_url, tmp_path, webhook_allow_private=True) as allowing:
        allowed = await allowing.post("/webhooks", json=body, headers=superuser.headers)
        assert allowed.status_code == 201


EMBEDDED = [
    # 6to4: 2002:AABB:CCDD::/48 carries AA.BB.CC.DD.
    ("2002:7f00:1::", "127.0.0.1"),
    ("2002:a01:203::1", "10.1.2.3"),
    ("2002:a9fe:a9fe::", "169.254.169.254"),
    # Teredo: the client is the last 32 bits, inverted (the server, 65.54.227.120, is public).
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.1"),
    ("2001:0:4136:e378:8000:63bf:f5fe:fdfc", "10.1.2.3"),
    ("2001:0:4136:e378:8000:63bf:5601:5601", "169.254.169.254"),
    # NAT64, well-known and local-use prefixes: the last 32 bits.
    ("64:ff9b::7f00:1", "127.0.0.1"),
    ("64:ff9b::a01:203", "10.1.2.3"),
    ("64:ff9b::a9fe:a9fe", "169.254.169.254"),
    ("64:ff9b:1::7f00:1", "127.0.0.1"),
    ("64:ff9b:1::a9fe:a9fe", "169.254.169.254"),
    # IPv4-mapped and IPv4-compatible.
    ("::ffff:10.1.2.3", "10.1.2.3"),
    ("::ffff:169.254.169.254", "169.254.169.254"),
    ("::127.0.0.1", "127.0.0.1"),
    ("::10.1.2.3", "10.1.2.3"),
    ("::169.254.169.254", "169.254.169.254"),
]
EMBEDDED_PUBLIC = [
    "2002:808:808::1",  # 6to4 of 8.8.8.8
    "2001:0:4136:e378:8000:63bf:f7f7:f7f7",  # Teredo, client 8.8.8.8
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
    "64:ff9b:1::808:808",
    "::ffff:8.8.8.8",
]


@pytest.mark.parametrize(("address", "ipv4"), EMBEDDED)
async def test_ipv6_forms_of_inner_ipv4_addresses_are_refused(
    client: httpx.AsyncClient, superuser: Account, address: str, ipv4: str
) -> None:
    """Judged by the IPv4 address they stand for, at creation and at each call."""
    reason = delivery.why_not_public(address)
    assert reason is not None and f"stands for {ipv4}," in reason
    refused = await client.post(
        "/webhooks",
        json={"url": f"http://[{address}]:8080/in", "events": ["created"]},
        headers=superuser.headers,
    )
    assert refused.status_code == 400
    assert f"stands for {ipv4}" in refused.json()["detail"]
    assert (await client.get("/webhooks", headers=superuser.headers)).json() == []
    with pytest.raises(delivery.Refused, match=f"stands for {ipv4}"):
        await delivery.resolve(f"http://[{address}]/in", allow_private=False)


@pytest.mark.parametrize("address", EMBEDDED_PUBLIC)
async def test_ipv6_forms_of_public_ipv4_addresses_are_accepted(
    client: httpx.AsyncClient, superuser: Account, address: str
) -> None:
    assert delivery.why_not_public(address) is None
    created = await client.post(
        "/webhooks",
        json={"url": f"https://[{address}]/in", "events": ["created"]},
        headers=superuser.headers,
    )
    assert created.status_code == 201, created.text


def test_a_local_nat64_address_of_another_layout_is_refused() -> None:
    """64:ff9b:1::/48 may carry the IPv4 address elsewhere than in its last 32 bits."""
    reason = delivery.why_not_public("64:ff9b:1:7f00:1::")
    assert reason is not None and "NAT64" in reason


async def test_names_are_checked_once_resolved() -> None:
    with pytest.raises(delivery.Refused, match="loopback"):
        await delivery.resolve("http://localhost:9/in", allow_private=False)
    host, addresses = await delivery.resolve("http://localhost:9/in", allow_private=True)
    assert host == "localhost" and "127.0.0.1" in addresses
    assert delivery.why_not_public("8.8.8.8") is None
    assert delivery.why_not_public("100.64.0.1") is not None  # carrier-grade NAT


async def test_every_event_reaches_the_receiver_signed(
    database_url: URL, tmp_path: Path, make_user: MakeUser, superuser: Account
) -> None:
    customer = await make_user("customer")
    agent = await make_user("staff")
    with WebhookReceiver() as receiver:
        async with working(database_url, tmp_path) as client:
            await subscribe(client, superuser, receiver, ALL_KINDS)
            ticket_id = await open_ticket(client, customer)
            for body in ({"text": "a note", "internal": True}, {"text": "an answer"}):
                posted = await client.post(
                    f"/tickets/{ticket_id}/messages", json=body, headers=agent.headers
                )
                assert posted.status_code == 201
            changed = await client.patch(
                f"/tickets/{ticket_id}",
                json={"status": "resolved", "priority": "high", "assignee_id": agent.id},
                headers=agent.headers,
            )
            assert changed.status_code == 200
            rated = await client.post(
                f"/tickets/{ticket_id}/rating", json={"score": 5}, headers=customer.headers
            )
            assert rated.status_code in (200, 201), rated.text
            feed = (await client.get("/events", headers=agent.headers)).json()
            calls = await receiver.wait_for(len(feed))
            await asyncio.sleep(0.3)
    assert len(receiver.calls) == len(feed) == 7
    assert all(call.verified for call in calls)
    by_event = {call.body["data"]["id"]: call.body for call in calls}
    for event in feed:
        sent = by_event[event["id"]]
        assert sent["data"] == event
        assert sent["type"] == f"ticket.{event['kind']}"
    assert len({call.webhook_id for call in calls}) == 7


async def test_only_subscribed_kinds_are_sent(
    database_url: URL, tmp_path: Path, make_user: MakeUser, superuser: Account
) -> None:
    customer = await make_user("customer")
    with WebhookReceiver() as receiver:
        async with working(database_url, tmp_path) as client:
            await subscribe(client, superuser, receiver, ["message"])
            ticket_id = await open_ticket(client, customer)
            posted = await client.post(
                f"/tickets/{ticket_id}/messages", json={"text": "more"}, headers=customer.headers
            )
            assert posted.status_code == 201
            calls = await receiver.wait_for(1)
            await asyncio.sleep(0.5)
    assert [call.body["type"] for call in calls] == ["ticket.message"]
    assert len(receiver.calls) == 1


async def test_failures_are_retried_then_the_endpoint_is_disabled(
    database_url: URL, tmp_path: Path, make_user: MakeUser, superuser: Account
) -> None:
    customer = await make_user("customer")
    healthy = False

    def answer(_webhook_id: str, attempt: int) -> int:
        return 204 if healthy or attempt == 3 else 500

    with WebhookReceiver(answer) as receiver:
        async with working(database_url, tmp_path) as client:
            hook = await subscribe(client, superuser, receiver, ["created"])
            deliveries = f"/webhooks/{hook['id']}/deliveries"
            await open_ticket(client, customer)
            await receiver.wait_for(1)

            async def first_done() -> Any:
                rows = (await client.get(deliveries, headers=superuser.headers)).json()
                return rows if rows and rows[0]["status"] == "done" else None

            (first,) = await until(first_done)
            assert first["attempts"] == 3 and first["response_code"] == 204

            # Now it always fails: four attempts (three retries), then it gives up.
            receiver.answer = lambda _id, _attempt: 500
            await open_ticket(client, customer)

            async def failed() -> Any:
                rows = (await client.get(deliveries, headers=superuser.headers)).json()
                return rows if rows[0]["status"] == "failed" else None

            second = (await until(failed))[0]
            assert second["attempts"] == 4 and second["response_code"] == 500
            assert "500" in second["last_error"] and second["next_attempt_at"] is None
            hook_now = (
                await client.get(f"/webhooks/{hook['id']}", headers=superuser.headers)
            ).json()
            assert hook_now["is_active"] is False
            assert f"delivery {second['id']} failed 4 times" in hook_now["disabled_reason"]

            # A disabled endpoint gets nothing new; enabled again, a retry goes through.
            await open_ticket(client, customer)
            await asyncio.sleep(0.5)
            rows = (await client.get(deliveries, headers=superuser.headers)).json()
            assert len(rows) == 2
            healthy = True
            receiver.answer = answer
            unknown = await client.post(
                f"{deliveries}/{first['id'] + 10**6}/retry", headers=superuser.headers
            )
            assert unknown.status_code == 404
            enabled = await client.patch(
                f"/webhooks/{hook['id']}", json={"is_active": True}, headers=superuser.headers
            )
            assert enabled.json()["disabled_reason"] is None
            retried = await client.post(
                f"{deliveries}/{second['id']}/retry", headers=superuser.headers
            )
            assert retried.status_code == 202

            async def redelivered() -> Any:
                rows = (await client.get(deliveries, headers=superuser.headers)).json()
                return rows if rows[0]["status"] == "done" else None

            third = (await until(redelivered))[0]
            assert third["id"] == second["id"] and third["response_code"] == 204


async def test_redirects_are_not_followed(
    database_url: URL, tmp_path: Path, engine: AsyncEngine, make_user: MakeUser, superuser: Account
) -> None:
    customer = await make_user("customer")
    with WebhookReceiver(lambda _id, _attempt: 302) as receiver:
        async with working(database_url, tmp_path, job_retry_delays="0.1") as client:
            await subscribe(client, superuser, receiver, ["created"])
            await open_ticket(client, customer)

            async def finished() -> Any:
                async with engine.connect() as conn:
                    row = (await conn.execute(select(jobs.c.status, jobs.c.last_code))).first()
                return row if row is not None and row[0] == "failed" else None

            _, code = await until(finished)
    assert code == 302
    assert receiver.calls == []


async def test_a_private_target_is_refused_at_delivery_too(
    database_url: URL, tmp_path: Path, engine: AsyncEngine, make_user: MakeUser
) -> None:
    """An endpoint that points inside (made before the rule, or renamed in DNS) is not called."""
    customer = await make_user("customer")
    with WebhookReceiver() as receiver:
        async with engine.begin() as conn:
            await conn.execute(
                insert(webhooks).values(
                    url=receiver.url,
                    events='["created"]',
                    secret=delivery.new_secret(),
                    is_active=True,
                    created_at=utcnow(),
                )
            )
        async with working(
            database_url, tmp_path, webhook_allow_private=False, job_retry_delays="0.1"
        ) as client:
            await open_ticket(client, customer)

            async def finished() -> Any:
                async with engine.connect() as conn:
                    row = (await conn.execute(select(jobs.c.status, jobs.c.last_error))).first()
                return row if row is not None and row[0] == "failed" else None

            _, error = await until(finished)
    assert "loopback" in error
    assert receiver.attempts == {}


async def test_the_calls_are_published_in_openapi(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    operation = schema["webhooks"]["ticket-event"]["post"]
    reference = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    call = schema["components"]["schemas"][reference.rsplit("/", 1)[1]]
    assert set(call["properties"]) == {"type", "timestamp", "data"}
    assert "webhook-signature" in operation["description"]
