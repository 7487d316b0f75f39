"""Idempotency-Key on ticket and message creation: retries are answered, not done, twice."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import Account, open_ticket
from ticketdesk.models import idempotency_keys, messages, tickets, utcnow
from ticketdesk.web.idempotency import REPLAYED_HEADER

TICKET = {"topic": "printer", "text": "it jams"}


def _with_key(account: Account, key: str) -> dict[str, str]:
    return {**account.headers, "Idempotency-Key": key}


async def _count(engine: AsyncEngine, table: object, *where: object) -> int:
    async with engine.connect() as conn:
        query = select(func.count()).select_from(table).where(*where)  # type: ignore[arg-type]
        return int((await conn.execute(query)).scalar_one())


async def test_a_retried_ticket_is_created_once_and_answered_alike(
    client: httpx.AsyncClient, customer: Account, engine: AsyncEngine
) -> None:
    first = await client.post("/tickets", json=TICKET, headers=_with_key(customer, "k-1"))
    again = await client.post("/tickets", json=TICKET, headers=_with_key(customer, "k-1"))
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers[REPLAYED_HEADER] == "true"
    assert REPLAYED_HEADER not in first.headers
    assert await _count(engine, tickets) == 1
    assert await _count(engine, messages) == 1  # the first message, once


async def test_a_retried_message_is_added_once(
    client: httpx.AsyncClient, customer: Account, engine: AsyncEngine
) -> None:
    ticket_id = await open_ticket(client, customer)
    path, body = f"/tickets/{ticket_id}/messages", {"text": "any news?"}
    first = await client.post(path, json=body, headers=_with_key(customer, "m-1"))
    again = await client.post(path, json=body, headers=_with_key(customer, "m-1"))
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert await _count(engine, messages, messages.c.ticket_id == ticket_id) == 2


async def test_the_same_key_with_another_body_is_422_and_writes_nothing(
    client: httpx.AsyncClient, customer: Account, engine: AsyncEngine
) -> None:
    assert (await client.post("/tickets", json=TICKET, headers=_with_key(customer, "k"))).is_success
    other = {"topic": "printer", "text": "it jams badly"}
    response = await client.post("/tickets", json=other, headers=_with_key(customer, "k"))
    assert response.status_code == 422
    assert response.json() == {"detail": "this Idempotency-Key was used with another request"}
    ticket_id = (await client.get("/tickets", headers=customer.headers)).json()[0]["id"]
    # Another path with the same key is another request too.
    response = await client.post(
        f"/tickets/{ticket_id}/messages", json={"text": "x"}, headers=_with_key(customer, "k")
    )
    assert response.status_code == 422
    assert await _count(engine, tickets) == 1
    assert await _count(engine, messages) == 1


async def test_keys_belong_to_their_user(
    client: httpx.AsyncClient, customer: Account, other_customer: Account, engine: AsyncEngine
) -> None:
    mine = await client.post("/tickets", json=TICKET, headers=_with_key(customer, "same"))
    theirs = await client.post("/tickets", json=TICKET, headers=_with_key(other_customer, "same"))
    assert mine.status_code == theirs.status_code == 201
    assert mine.json() != theirs.json()
    assert REPLAYED_HEADER not in theirs.headers
    assert await _count(engine, tickets) == 2


async def test_without_a_key_every_request_writes(
    client: httpx.AsyncClient, customer: Account, engine: AsyncEngine
) -> None:
    for _ in range(2):
        assert (await client.post("/tickets", json=TICKET, headers=customer.headers)).is_success
    assert await _count(engine, tickets) == 2
    assert await _count(engine, idempotency_keys) == 0


async def test_fifty_concurrent_requests_with_one_key_make_one_row(
    client: httpx.AsyncClient, customer: Account, engine: AsyncEngine
) -> None:
    headers = _with_key(customer, "burst")
    responses = await asyncio.gather(
        *(client.post("/tickets", json=TICKET, headers=headers) for _ in range(50))
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(REPLAYED_HEADER in r.headers for r in responses) == 49
    assert await _count(engine, tickets) == 1
    assert await _count(engine, messages) == 1


async def test_fifty_concurrent_messages_with_one_key_make_one_row(
    client: httpx.AsyncClient, customer: Account, engine: AsyncEngine
) -> None:
    ticket_id = await open_ticket(client, customer)
    path, headers = f"/tickets/{ticket_id}/messages", _with_key(customer, "burst")
    responses = await asyncio.gather(
        *(client.post(path, json={"text": "hello?"}, headers=headers) for _ in range(50))
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert await _count(engine, messages, messages.c.ticket_id == ticket_id) == 2


async def test_a_key_expires_after_its_lifetime(
    client: httpx.AsyncClient, customer: Account, engine: AsyncEngine
) -> None:
    first = await client.post("/tickets", json=TICKET, headers=_with_key(customer, "old"))
    async with engine.begin() as conn:
        await conn.execute(
            update(idempotency_keys).values(created_at=utcnow() - timedelta(hours=24, minutes=1))
        )
    again = await client.post("/tickets", json=TICKET, headers=_with_key(customer, "old"))
    assert again.status_code == 201
    assert again.json()["id"] != first.json()["id"]
    assert REPLAYED_HEADER not in again.headers
    assert await _count(engine, idempotency_keys) == 1  # the expired one is gone


async def test_a_failed_request_does_not_keep_its_key(
    client: httpx.AsyncClient, customer: Account, engine: AsyncEngine
) -> None:
    ticket_id = await open_ticket(client, customer)
    await client.patch(
        f"/tickets/{ticket_id}", json={"status": "canceled"}, headers=customer.headers
    )
    path, body = f"/tickets/{ticket_id}/messages", {"text": "still there?"}
    refused = await client.post(path, json=body, headers=_with_key(customer, "k"))
    assert refused.status_code == 409
    assert await _count(engine, idempotency_keys) == 0
    response = await client.post("/tickets", json=TICKET, headers=_with_key(customer, "k"))
    assert response.status_code == 201


@pytest.mark.parametrize("key", [b"", b"x" * 256, b"two words", "schlüssel".encode()])
async def test_a_malformed_key_is_400_and_writes_nothing(
    client: httpx.AsyncClient, customer: Account, engine: AsyncEngine, key: bytes
) -> None:
    headers: dict[str, str | bytes] = {**customer.headers, "Idempotency-Key": key}
    response = await client.post("/tickets", json=TICKET, headers=headers)
    assert response.status_code == 400
    assert await _count(engine, tickets) == 0
