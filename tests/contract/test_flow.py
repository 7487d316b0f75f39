"""The old service's Flow, end to end, each side authenticated by the cookie that login sets."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from conftest import STAFF_TOKEN


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A second client with its own cookie jar."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def test_flow(client: httpx.AsyncClient, browser: httpx.AsyncClient) -> None:
    customer, agent = client, browser

    # Common user, steps 1-7.
    created = await customer.post(
        "/users", json={"email": "user@post.io", "password": "atLeastEightChars", "username": "me"}
    )
    assert created.status_code == 201
    login = await customer.post(
        "/login", json={"email": "user@post.io", "password": "atLeastEightChars"}
    )
    assert login.status_code == 200
    assert customer.cookies.get("token") == login.json()["token"]
    ids = []
    for topic in ("new instances", "new discount"):
        response = await customer.post("/tickets", json={"topic": topic, "text": f"about {topic}"})
        assert response.status_code == 201
        ids.append(response.json()["id"])
    listed = (await customer.get("/tickets")).json()
    assert [t["id"] for t in listed] == ids
    ticket = ids[0]
    assert len((await customer.get(f"/tickets/{ticket}/messages")).json()) == 1
    posted = await customer.post(f"/tickets/{ticket}/messages", json={"text": "any news?"})
    assert posted.status_code == 201
    thread = (await customer.get(f"/tickets/{ticket}/messages")).json()
    assert thread[-1]["text"] == "any news?"

    # Staff user, steps 1-6.
    staff = await agent.post(
        "/users",
        json={
            "email": "staff@post.io",
            "password": "atLeastEightChars",
            "username": "agent",
            "isStaff": True,
        },
        headers={"Authorization": f"Bearer {STAFF_TOKEN}"},
    )
    assert staff.status_code == 201
    assert staff.json()["is_staff"] is True
    assert (
        await agent.post("/login", json={"email": "staff@post.io", "password": "atLeastEightChars"})
    ).status_code == 200
    all_tickets = (await agent.get("/tickets")).json()
    assert {t["author"] for t in all_tickets} == {"user@post.io"}
    picked = (await agent.get(f"/tickets/{ticket}")).json()
    assert picked["author"] == "user@post.io"
    thread = (await agent.get(f"/tickets/{ticket}/messages")).json()
    assert thread[-1]["type"] == "request"
    answer = await agent.post(
        f"/tickets/{ticket}/messages", json={"text": "Done. Can the ticket be closed?"}
    )
    assert answer.json()["type"] == "response"

    # Common user, step 8, and the alternative step 9 on the other ticket.
    thread = (await customer.get(f"/tickets/{ticket}/messages")).json()
    assert thread[-1] == answer.json()
    reply = await customer.post(f"/tickets/{ticket}/messages", json={"text": "Yes, thanks!"})
    assert reply.status_code == 201
    canceled = await customer.patch(f"/tickets/{ids[1]}/", json={"status": "canceled"})
    assert canceled.json()["status"] == "canceled"

    # Staff user, step 7.
    resolved = await agent.put(f"/tickets/{ticket}/", json={"status": "resolved"})
    assert resolved.status_code == 200
    assert (await customer.get(f"/tickets/{ticket}")).json()["status"] == "resolved"

    # Further considerations: the users list and a user's detail.
    users = (await agent.get("/users")).json()
    assert [(u["email"], u["tickets_count"]) for u in users] == [
        ("user@post.io", 2),
        ("staff@post.io", 0),
    ]
    detail = (await agent.get(f"/users/{created.json()['id']}")).json()
    assert [t["id"] for t in detail["tickets"]] == ids
