"""Tickets: creation, visibility, and status changes through the API."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import Account, open_ticket
from ticketdesk.models import messages, ticket_events, tickets, users


async def count(engine: AsyncEngine, table: object) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())  # type: ignore[arg-type]


async def set_status(
    client: httpx.AsyncClient, account: Account, ticket_id: int, status: str, method: str = "PATCH"
) -> httpx.Response:
    return await client.request(
        method, f"/tickets/{ticket_id}", json={"status": status}, headers=account.headers
    )


async def reply(
    client: httpx.AsyncClient, account: Account, ticket_id: int, text: str = "hi"
) -> None:
    response = await client.post(
        f"/tickets/{ticket_id}/messages", json={"text": text}, headers=account.headers
    )
    assert response.status_code == 201, response.text


# creation


async def test_create_returns_the_ticket_id_not_a_message_id(
    client: httpx.AsyncClient, customer: Account
) -> None:
    first = await open_ticket(client, customer, topic="first")
    for _ in range(3):
        await reply(client, customer, first)
    second = await open_ticket(client, customer, topic="second")
    response = await client.get(f"/tickets/{second}", headers=customer.headers)
    assert response.json()["topic"] == "second"
    assert second == first + 1


async def test_create_stores_the_text_as_first_request_message(
    client: httpx.AsyncClient, customer: Account, engine: AsyncEngine
) -> None:
    ticket_id = await open_ticket(client, customer, text="my screen is dark")
    response = await client.get(f"/tickets/{ticket_id}/messages", headers=customer.headers)
    assert [(m["type"], m["text"]) for m in response.json()] == [("request", "my screen is dark")]
    async with engine.connect() as conn:
        count_ = (
            await conn.execute(select(users.c.tickets_count).where(users.c.id == customer.id))
        ).scalar_one()
    assert count_ == 1


async def test_create_anonymous_is_401(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    response = await client.post("/tickets", json={"topic": "a", "text": "b"})
    assert response.status_code == 401
    assert await count(engine, tickets) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"topic": "", "text": "x"},
        {"topic": "t" * 21, "text": "x"},
        {"topic": "ok", "text": ""},
        {"topic": "ok", "text": "   "},
        {"topic": "ok"},
        {"text": "x"},
        {"topic": 5, "text": "x"},
        {"topic": "ok", "text": ["x"]},
        {"topic": "ok", "text": "nul\u0000byte"},
        [],
        "text",
    ],
)
async def test_create_bad_body_is_400_and_writes_nothing(
    client: httpx.AsyncClient, customer: Account, engine: AsyncEngine, body: object
) -> None:
    response = await client.post("/tickets", json=body, headers=customer.headers)
    assert response.status_code == 400
    assert isinstance(response.json()["detail"], list)
    assert await count(engine, tickets) == 0
    assert await count(engine, messages) == 0


async def test_topic_of_twenty_characters_is_accepted(
    client: httpx.AsyncClient, customer: Account
) -> None:
    ticket_id = await open_ticket(client, customer, topic="ü" * 20)
    response = await client.get(f"/tickets/{ticket_id}", headers=customer.headers)
    assert response.json()["topic"] == "ü" * 20


async def test_lone_surrogate_is_400(client: httpx.AsyncClient, customer: Account) -> None:
    response = await client.post(
        "/tickets",
        content=b'{"topic": "ok", "text": "\\ud800"}',
        headers={**customer.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400


# listing and reading


async def test_list_is_empty_array_when_there_are_none(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    for account in (customer, staff):
        response = await client.get("/tickets", headers=account.headers)
        assert response.status_code == 200
        assert response.json() == []


async def test_customer_lists_own_tickets_without_author(
    client: httpx.AsyncClient, customer: Account, other_customer: Account
) -> None:
    mine = [await open_ticket(client, customer, topic=f"mine {i}") for i in range(2)]
    await open_ticket(client, other_customer, topic="theirs")
    body = (await client.get("/tickets", headers=customer.headers)).json()
    assert [t["id"] for t in body] == mine
    assert all("author" not in t for t in body)
    assert set(body[0]) == {"id", "created_at", "updated_at", "topic", "status"}
    assert body[0]["status"] == "pending"
    assert body[0]["created_at"].endswith("Z")


async def test_staff_list_all_tickets_with_author(
    client: httpx.AsyncClient, customer: Account, other_customer: Account, staff: Account
) -> None:
    await open_ticket(client, customer)
    await open_ticket(client, other_customer)
    body = (await client.get("/tickets", headers=staff.headers)).json()
    assert [t["author"] for t in body] == [customer.email, other_customer.email]


async def test_superuser_sees_all_tickets(
    client: httpx.AsyncClient, customer: Account, superuser: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    body = (await client.get("/tickets", headers=superuser.headers)).json()
    assert [(t["id"], t["author"]) for t in body] == [(ticket_id, customer.email)]


async def test_list_anonymous_is_401(client: httpx.AsyncClient) -> None:
    assert (await client.get("/tickets")).status_code == 401


async def test_get_own_ticket(client: httpx.AsyncClient, customer: Account) -> None:
    ticket_id = await open_ticket(client, customer, topic="hello")
    body = (await client.get(f"/tickets/{ticket_id}", headers=customer.headers)).json()
    assert body["id"] == ticket_id
    assert body["topic"] == "hello"
    assert "author" not in body


async def test_get_shows_author_to_staff(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    body = (await client.get(f"/tickets/{ticket_id}", headers=staff.headers)).json()
    assert body["author"] == customer.email


async def test_another_users_ticket_is_404(
    client: httpx.AsyncClient, customer: Account, other_customer: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    response = await client.get(f"/tickets/{ticket_id}", headers=other_customer.headers)
    assert response.status_code == 404
    assert response.json() == {"detail": "no such ticket"}


async def test_get_anonymous_is_401(client: httpx.AsyncClient, customer: Account) -> None:
    ticket_id = await open_ticket(client, customer)
    assert (await client.get(f"/tickets/{ticket_id}")).status_code == 401


@pytest.mark.parametrize(
    ("ticket_id", "status"),
    [
        ("abc", 400),
        ("1.5", 400),
        ("0", 404),
        ("-3", 404),
        ("99999999999999999999999", 404),
        ("9223372036854775807", 404),
    ],
)
async def test_ticket_ids(
    client: httpx.AsyncClient, customer: Account, ticket_id: str, status: int
) -> None:
    response = await client.get(f"/tickets/{ticket_id}", headers=customer.headers)
    assert response.status_code == status


# status changes


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_author_cancels(client: httpx.AsyncClient, customer: Account, method: str) -> None:
    ticket_id = await open_ticket(client, customer)
    before = (await client.get(f"/tickets/{ticket_id}", headers=customer.headers)).json()
    response = await set_status(client, customer, ticket_id, "canceled", method)
    assert response.status_code == 200
    assert response.json()["status"] == "canceled"
    assert response.json()["updated_at"] > before["updated_at"]
    assert response.json()["created_at"] == before["created_at"]


async def test_other_customer_cannot_cancel(
    client: httpx.AsyncClient, customer: Account, other_customer: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    response = await set_status(client, other_customer, ticket_id, "canceled")
    assert response.status_code == 404
    body = (await client.get(f"/tickets/{ticket_id}", headers=customer.headers)).json()
    assert body["status"] == "pending"


@pytest.mark.parametrize("status", ["pending", "resolved", "unresolved"])
async def test_author_may_not_set_staff_statuses(
    client: httpx.AsyncClient, customer: Account, status: str
) -> None:
    ticket_id = await open_ticket(client, customer)
    assert (await set_status(client, customer, ticket_id, status)).status_code == 400


@pytest.mark.parametrize("status", ["closed", "", "CANCELED", None, 1])
async def test_invalid_status_is_400(
    client: httpx.AsyncClient, customer: Account, staff: Account, status: object
) -> None:
    ticket_id = await open_ticket(client, customer)
    for account in (customer, staff):
        response = await set_status(client, account, ticket_id, status)  # type: ignore[arg-type]
        assert response.status_code == 400


async def test_staff_may_not_cancel(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    assert (await set_status(client, staff, ticket_id, "canceled")).status_code == 400


async def test_staff_set_unresolved_and_pending(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    for status in ("unresolved", "pending"):
        response = await set_status(client, staff, ticket_id, status)
        assert response.status_code == 200
        assert response.json()["status"] == status
        assert response.json()["author"] == customer.email


async def test_resolve_needs_a_response(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    await reply(client, customer, ticket_id, "still waiting")
    response = await set_status(client, staff, ticket_id, "resolved")
    assert response.status_code == 409
    await reply(client, staff, ticket_id, "fixed it")
    response = await set_status(client, staff, ticket_id, "resolved")
    assert response.status_code == 200
    assert response.json()["status"] == "resolved"


async def test_canceled_stays_canceled(
    client: httpx.AsyncClient, customer: Account, staff: Account, superuser: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    await reply(client, staff, ticket_id)
    assert (await set_status(client, customer, ticket_id, "canceled")).status_code == 200
    for account in (staff, superuser):
        for status in ("pending", "resolved", "unresolved"):
            assert (await set_status(client, account, ticket_id, status)).status_code == 409
    body = (await client.get(f"/tickets/{ticket_id}", headers=customer.headers)).json()
    assert body["status"] == "canceled"


async def ticket_and_events(engine: AsyncEngine, ticket_id: int) -> tuple[Any, int]:
    """The ticket's whole row, and how many events it has."""
    async with engine.connect() as conn:
        row = (await conn.execute(select(tickets).where(tickets.c.id == ticket_id))).one()
        events = (
            await conn.execute(select(func.count()).where(ticket_events.c.ticket_id == ticket_id))
        ).scalar_one()
    return tuple(row), int(events)


async def canceled_ticket(client: httpx.AsyncClient, customer: Account, staff: Account) -> int:
    """A ticket that was answered, assigned and prioritised before its author canceled it."""
    ticket_id = await open_ticket(client, customer)
    await reply(client, staff, ticket_id)
    before = {"assignee_id": staff.id, "priority": "high"}
    response = await client.patch(f"/tickets/{ticket_id}", json=before, headers=staff.headers)
    assert response.status_code == 200, response.text
    assert (await set_status(client, customer, ticket_id, "canceled")).status_code == 200
    return ticket_id


CHANGES_OF_A_CANCELED_TICKET = [
    pytest.param({"assignee_id": "other agent"}, id="reassign"),
    pytest.param({"assignee_id": None}, id="unassign"),
    pytest.param({"priority": "low"}, id="priority-low"),
    pytest.param({"priority": "normal"}, id="priority-normal"),
    pytest.param({"priority": "urgent"}, id="priority-urgent"),
    pytest.param({"status": "pending"}, id="status-pending"),
    pytest.param({"status": "resolved"}, id="status-resolved"),
    pytest.param({"status": "unresolved"}, id="status-unresolved"),
    pytest.param({"status": "unresolved", "assignee_id": None, "priority": "low"}, id="all"),
    pytest.param({"priority": "high", "assignee_id": "other agent"}, id="one-same-one-not"),
    pytest.param({"topic": "a new topic", "priority": "urgent"}, id="topic-and-priority"),
]


@pytest.mark.parametrize("change", CHANGES_OF_A_CANCELED_TICKET)
async def test_a_canceled_ticket_changes_no_more(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    customer: Account,
    staff: Account,
    superuser: Account,
    change: dict[str, Any],
) -> None:
    ticket_id = await canceled_ticket(client, customer, staff)
    before = await ticket_and_events(engine, ticket_id)
    if change.get("assignee_id") == "other agent":
        change = {**change, "assignee_id": superuser.id}
    for account in (staff, superuser):
        response = await client.patch(f"/tickets/{ticket_id}", json=change, headers=account.headers)
        assert response.status_code == 409, response.text
        assert "canceled" in response.json()["detail"]
    assert await ticket_and_events(engine, ticket_id) == before


async def test_a_canceled_ticket_refuses_a_change_before_checking_the_assignee(
    client: httpx.AsyncClient, engine: AsyncEngine, customer: Account, staff: Account
) -> None:
    ticket_id = await canceled_ticket(client, customer, staff)
    before = await ticket_and_events(engine, ticket_id)
    response = await client.patch(
        f"/tickets/{ticket_id}", json={"assignee_id": customer.id}, headers=staff.headers
    )
    assert response.status_code == 409
    assert await ticket_and_events(engine, ticket_id) == before


async def test_a_canceled_ticket_takes_its_own_values_as_a_no_op(
    client: httpx.AsyncClient, engine: AsyncEngine, customer: Account, staff: Account
) -> None:
    ticket_id = await canceled_ticket(client, customer, staff)
    before = await ticket_and_events(engine, ticket_id)
    same = {"assignee_id": staff.id, "priority": "high"}
    response = await client.patch(f"/tickets/{ticket_id}", json=same, headers=staff.headers)
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["priority"]) == ("canceled", "high")
    assert (await set_status(client, customer, ticket_id, "canceled")).status_code == 200
    assert await ticket_and_events(engine, ticket_id) == before


async def test_same_status_is_a_200_no_op(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    first = await set_status(client, customer, ticket_id, "canceled")
    again = await set_status(client, customer, ticket_id, "canceled")
    assert again.status_code == 200
    assert again.json()["updated_at"] == first.json()["updated_at"]
    other = await open_ticket(client, customer)
    response = await set_status(client, staff, other, "pending")
    assert response.status_code == 200
    assert response.json()["updated_at"] == response.json()["created_at"]


async def test_status_change_anonymous_is_401(client: httpx.AsyncClient, customer: Account) -> None:
    ticket_id = await open_ticket(client, customer)
    response = await client.patch(f"/tickets/{ticket_id}", json={"status": "canceled"})
    assert response.status_code == 401


async def test_status_change_unknown_ticket_is_404(
    client: httpx.AsyncClient, staff: Account
) -> None:
    assert (await set_status(client, staff, 12345, "pending")).status_code == 404
