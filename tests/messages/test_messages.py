"""Messages on a ticket: who may read and write them, and what they do to the ticket."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import Account, open_ticket
from ticketdesk.models import messages


async def post(
    client: httpx.AsyncClient, account: Account, ticket_id: int, text: str = "hello"
) -> httpx.Response:
    return await client.post(
        f"/tickets/{ticket_id}/messages", json={"text": text}, headers=account.headers
    )


async def read(
    client: httpx.AsyncClient, account: Account, ticket_id: int
) -> list[dict[str, object]]:
    response = await client.get(f"/tickets/{ticket_id}/messages", headers=account.headers)
    assert response.status_code == 200, response.text
    body: list[dict[str, object]] = response.json()
    return body


async def ticket(client: httpx.AsyncClient, account: Account, ticket_id: int) -> dict[str, str]:
    body: dict[str, str] = (
        await client.get(f"/tickets/{ticket_id}", headers=account.headers)
    ).json()
    return body


async def message_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(messages))).scalar_one())


async def test_post_returns_the_stored_message(
    client: httpx.AsyncClient, customer: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    response = await post(client, customer, ticket_id, "more details")
    assert response.status_code == 201
    body = response.json()
    assert body["type"] == "request"
    assert body["text"] == "more details"
    assert body["created_at"].endswith("Z")
    assert (await read(client, customer, ticket_id))[-1] == body


async def test_thread_is_oldest_first_with_types(
    client: httpx.AsyncClient, customer: Account, staff: Account, superuser: Account
) -> None:
    ticket_id = await open_ticket(client, customer, text="first")
    await post(client, customer, ticket_id, "second")
    await post(client, staff, ticket_id, "third")
    await post(client, superuser, ticket_id, "fourth")
    thread = await read(client, customer, ticket_id)
    assert [(m["type"], m["text"]) for m in thread] == [
        ("request", "first"),
        ("request", "second"),
        ("response", "third"),
        ("response", "fourth"),
    ]
    assert thread == await read(client, staff, ticket_id)
    assert [m["created_at"] for m in thread] == sorted(m["created_at"] for m in thread)  # type: ignore[type-var]


async def test_other_customers_cannot_read_or_write(
    client: httpx.AsyncClient, customer: Account, other_customer: Account, engine: AsyncEngine
) -> None:
    ticket_id = await open_ticket(client, customer)
    read_response = await client.get(
        f"/tickets/{ticket_id}/messages", headers=other_customer.headers
    )
    assert read_response.status_code == 404
    assert (await post(client, other_customer, ticket_id)).status_code == 404
    assert await message_count(engine) == 1


async def test_anonymous_is_401(client: httpx.AsyncClient, customer: Account) -> None:
    ticket_id = await open_ticket(client, customer)
    assert (await client.get(f"/tickets/{ticket_id}/messages")).status_code == 401
    response = await client.post(f"/tickets/{ticket_id}/messages", json={"text": "x"})
    assert response.status_code == 401


async def test_unknown_ticket_is_404(client: httpx.AsyncClient, staff: Account) -> None:
    assert (await post(client, staff, 999)).status_code == 404
    response = await client.get("/tickets/999/messages", headers=staff.headers)
    assert response.status_code == 404


@pytest.mark.parametrize(
    "body", [{}, {"text": ""}, {"text": " \n"}, {"text": 3}, {"text": "a\u0000"}]
)
async def test_bad_body_is_400_and_writes_nothing(
    client: httpx.AsyncClient, customer: Account, engine: AsyncEngine, body: object
) -> None:
    ticket_id = await open_ticket(client, customer)
    response = await client.post(
        f"/tickets/{ticket_id}/messages", json=body, headers=customer.headers
    )
    assert response.status_code == 400
    assert await message_count(engine) == 1


async def test_no_messages_on_a_canceled_ticket(
    client: httpx.AsyncClient, customer: Account, staff: Account, engine: AsyncEngine
) -> None:
    ticket_id = await open_ticket(client, customer)
    await client.patch(
        f"/tickets/{ticket_id}", json={"status": "canceled"}, headers=customer.headers
    )
    assert (await post(client, customer, ticket_id)).status_code == 409
    assert (await post(client, staff, ticket_id)).status_code == 409
    assert await message_count(engine) == 1


@pytest.mark.parametrize("status", ["resolved", "unresolved"])
async def test_customer_message_reopens_the_ticket(
    client: httpx.AsyncClient, customer: Account, staff: Account, status: str
) -> None:
    ticket_id = await open_ticket(client, customer)
    await post(client, staff, ticket_id, "try turning it off and on")
    response = await client.patch(
        f"/tickets/{ticket_id}", json={"status": status}, headers=staff.headers
    )
    assert response.json()["status"] == status
    await post(client, staff, ticket_id, "anything else?")
    assert (await ticket(client, customer, ticket_id))["status"] == status
    await post(client, customer, ticket_id, "it broke again")
    assert (await ticket(client, customer, ticket_id))["status"] == "pending"


async def test_messages_advance_updated_at(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    before = await ticket(client, customer, ticket_id)
    await post(client, staff, ticket_id)
    middle = await ticket(client, customer, ticket_id)
    await post(client, customer, ticket_id)
    after = await ticket(client, customer, ticket_id)
    assert before["updated_at"] < middle["updated_at"] < after["updated_at"]
    assert after["created_at"] == before["created_at"]
