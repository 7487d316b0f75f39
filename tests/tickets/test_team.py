"""A team's help desk: assignment, priority, internal notes, history and ratings."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import Account, MakeUser, add_account, client_with, open_ticket
from ticketdesk import sla
from ticketdesk.models import tickets
from ticketdesk.settings import Settings


async def patch(
    client: httpx.AsyncClient, account: Account, ticket_id: int, **changes: Any
) -> httpx.Response:
    return await client.patch(f"/tickets/{ticket_id}", json=changes, headers=account.headers)


async def post(
    client: httpx.AsyncClient, account: Account, ticket_id: int, text: str, **extra: Any
) -> httpx.Response:
    return await client.post(
        f"/tickets/{ticket_id}/messages", json={"text": text, **extra}, headers=account.headers
    )


async def get(client: httpx.AsyncClient, account: Account, path: str) -> Any:
    response = await client.get(path, headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def events(client: httpx.AsyncClient, account: Account, ticket_id: int) -> list[Any]:
    body: list[Any] = await get(client, account, f"/tickets/{ticket_id}/events")
    return body


async def resolved_ticket(client: httpx.AsyncClient, customer: Account, staff: Account) -> int:
    ticket_id = await open_ticket(client, customer)
    assert (await post(client, staff, ticket_id, "fixed")).status_code == 201
    assert (await patch(client, staff, ticket_id, status="resolved")).status_code == 200
    return ticket_id


# assignment


async def test_an_agent_assigns_a_ticket_and_the_customer_never_sees_it(
    client: httpx.AsyncClient, customer: Account, staff: Account, make_user: MakeUser
) -> None:
    colleague = await make_user("staff")
    ticket_id = await open_ticket(client, customer)
    before = await get(client, staff, f"/tickets/{ticket_id}")
    assert before["assignee_id"] is None
    response = await patch(client, staff, ticket_id, assignee_id=colleague.id)
    assert response.status_code == 200, response.text
    assert response.json()["assignee_id"] == colleague.id
    assert (await get(client, staff, f"/tickets/{ticket_id}"))["assignee_id"] == colleague.id
    seen = await get(client, customer, f"/tickets/{ticket_id}")
    assert "assignee_id" not in seen and "priority" not in seen
    assert all("assignee_id" not in t for t in await get(client, customer, "/tickets"))


async def test_unassigning_takes_null(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    await patch(client, staff, ticket_id, assignee_id=staff.id)
    response = await patch(client, staff, ticket_id, assignee_id=None)
    assert response.status_code == 200
    assert response.json()["assignee_id"] is None


@pytest.mark.parametrize("target", ["customer", "blocked", "unknown", "zero", "huge"])
async def test_only_an_active_agent_can_be_assigned(
    client: httpx.AsyncClient,
    customer: Account,
    staff: Account,
    superuser: Account,
    make_user: MakeUser,
    target: str,
) -> None:
    ticket_id = await open_ticket(client, customer)
    if target == "blocked":
        blocked = await make_user("staff")
        block = await client.patch(
            f"/users/{blocked.id}", json={"is_active": False}, headers=superuser.headers
        )
        assert block.status_code == 200
        assignee: int = blocked.id
    else:
        assignee = {"customer": customer.id, "unknown": 10**9, "zero": 0, "huge": 2**70}[target]
    response = await patch(client, staff, ticket_id, assignee_id=assignee)
    assert response.status_code == 400, response.text
    assert (await get(client, staff, f"/tickets/{ticket_id}"))["assignee_id"] is None


async def test_a_superuser_can_be_assigned(
    client: httpx.AsyncClient, customer: Account, staff: Account, superuser: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    response = await patch(client, staff, ticket_id, assignee_id=superuser.id)
    assert response.status_code == 200
    assert response.json()["assignee_id"] == superuser.id


async def test_customers_may_not_assign_or_set_priority(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    assert (await patch(client, customer, ticket_id, assignee_id=staff.id)).status_code == 403
    assert (await patch(client, customer, ticket_id, priority="urgent")).status_code == 403
    # Not even with a change they may make: nothing at all happens.
    both = await patch(client, customer, ticket_id, status="canceled", priority="low")
    assert both.status_code == 403
    assert (await get(client, customer, f"/tickets/{ticket_id}"))["status"] == "pending"


async def test_a_refused_part_of_a_change_changes_nothing(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    response = await patch(
        client, staff, ticket_id, status="unresolved", priority="high", assignee_id=customer.id
    )
    assert response.status_code == 400
    ticket = await get(client, staff, f"/tickets/{ticket_id}")
    assert (ticket["status"], ticket["priority"], ticket["assignee_id"]) == (
        "pending",
        "normal",
        None,
    )
    assert [e["kind"] for e in await events(client, staff, ticket_id)] == ["created"]


@pytest.mark.parametrize("body", [{}, {"status": None}, {"priority": None}, {"priority": "top"}])
async def test_a_change_must_name_something_valid(
    client: httpx.AsyncClient, customer: Account, staff: Account, body: dict[str, Any]
) -> None:
    ticket_id = await open_ticket(client, customer)
    response = await client.patch(f"/tickets/{ticket_id}", json=body, headers=staff.headers)
    assert response.status_code == 400


async def test_the_assignee_filter(
    client: httpx.AsyncClient, customer: Account, staff: Account, make_user: MakeUser
) -> None:
    colleague = await make_user("staff")
    mine, theirs, nobodys = [await open_ticket(client, customer) for _ in range(3)]
    await patch(client, staff, mine, assignee_id=staff.id)
    await patch(client, staff, theirs, assignee_id=colleague.id)

    def ids(body: list[Any]) -> list[int]:
        return [t["id"] for t in body]

    assert ids(await get(client, staff, "/tickets?assignee=me")) == [mine]
    assert ids(await get(client, staff, "/tickets?assignee=none")) == [nobodys]
    assert ids(await get(client, staff, f"/tickets?assignee={colleague.id}")) == [theirs]
    assert ids(await get(client, colleague, "/tickets?assignee=me")) == [theirs]
    response = await client.get("/tickets?assignee=me", headers=customer.headers)
    assert response.status_code == 403
    bad = await client.get("/tickets?assignee=someone", headers=staff.headers)
    assert bad.status_code == 400


@pytest.mark.parametrize("change", [{"is_active": False}, {"is_staff": False}])
async def test_an_agent_who_leaves_is_taken_off_open_tickets(
    client: httpx.AsyncClient,
    customer: Account,
    staff: Account,
    superuser: Account,
    make_user: MakeUser,
    change: dict[str, bool],
) -> None:
    leaving = await make_user("staff")
    open_one, resolved = [await open_ticket(client, customer) for _ in range(2)]
    for ticket_id in (open_one, resolved):
        await patch(client, staff, ticket_id, assignee_id=leaving.id)
    await post(client, staff, resolved, "done")
    await patch(client, staff, resolved, status="resolved")
    response = await client.patch(f"/users/{leaving.id}", json=change, headers=superuser.headers)
    assert response.status_code == 200, response.text
    assert (await get(client, staff, f"/tickets/{open_one}"))["assignee_id"] is None
    assert (await get(client, staff, f"/tickets/{resolved}"))["assignee_id"] == leaving.id
    last = (await events(client, staff, open_one))[-1]
    assert (last["kind"], last["actor_id"]) == ("assignee", superuser.id)
    assert (last["before"], last["after"]) == ({"assignee_id": leaving.id}, {"assignee_id": None})


# priority


async def test_priority_is_normal_until_an_agent_sets_it(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    assert (await get(client, staff, f"/tickets/{ticket_id}"))["priority"] == "normal"
    response = await patch(client, staff, ticket_id, priority="urgent")
    assert response.status_code == 200
    assert response.json()["priority"] == "urgent"


async def test_priority_filter_and_most_urgent_first_in_pages(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    priorities = ["low", "urgent", "normal", "high", "urgent", "low"]
    ids = []
    for priority in priorities:
        ticket_id = await open_ticket(client, customer)
        await patch(client, staff, ticket_id, priority=priority)
        ids.append(ticket_id)
    seen: list[Any] = []
    url: str | None = "/tickets?sort=-priority&limit=2"
    while url:
        response = await client.get(url, headers=staff.headers)
        assert response.status_code == 200
        seen.extend(response.json())
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else None
    rank = {"low": 0, "normal": 1, "high": 2, "urgent": 3}
    expected = sorted(zip(priorities, ids, strict=True), key=lambda p: (-rank[p[0]], -p[1]))
    assert [(t["priority"], t["id"]) for t in seen] == expected
    urgent_or_high = await get(client, staff, "/tickets?priority=urgent&priority=high")
    assert sorted(t["id"] for t in urgent_or_high) == [ids[1], ids[3], ids[4]]
    ascending = await get(client, staff, "/tickets?sort=priority")
    assert [t["priority"] for t in ascending][:2] == ["low", "low"]
    for query in ("sort=-priority", "priority=high", "sort=due", "breached=true"):
        response = await client.get(f"/tickets?{query}", headers=customer.headers)
        assert response.status_code == 403, query


# internal notes


async def test_a_note_is_for_agents_only(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer, text="help")
    note = await post(client, staff, ticket_id, "customer is on the old plan", internal=True)
    assert note.status_code == 201, note.text
    assert note.json()["type"] == "note"
    await post(client, staff, ticket_id, "we are on it")
    staff_view = await get(client, staff, f"/tickets/{ticket_id}/messages")
    assert [m["type"] for m in staff_view] == ["request", "note", "response"]
    response = await client.get(
        f"/tickets/{ticket_id}/messages?count=true", headers=customer.headers
    )
    assert [m["type"] for m in response.json()] == ["request", "response"]
    assert "old plan" not in response.text
    assert response.headers["X-Total-Count"] == "2"
    staff_count = await client.get(
        f"/tickets/{ticket_id}/messages?count=true", headers=staff.headers
    )
    assert staff_count.headers["X-Total-Count"] == "3"
    customer_events = await client.get(f"/tickets/{ticket_id}/events", headers=customer.headers)
    assert "note" not in [e["kind"] for e in customer_events.json()]


async def test_a_customer_cannot_write_a_note(client: httpx.AsyncClient, customer: Account) -> None:
    ticket_id = await open_ticket(client, customer)
    response = await post(client, customer, ticket_id, "sneaky", internal=True)
    assert response.status_code == 403
    assert len(await get(client, customer, f"/tickets/{ticket_id}/messages")) == 1


async def test_a_note_is_not_a_response_and_changes_nothing_a_customer_sees(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    before = await get(client, customer, f"/tickets/{ticket_id}")
    await post(client, staff, ticket_id, "thinking", internal=True)
    assert await get(client, customer, f"/tickets/{ticket_id}") == before
    assert (await patch(client, staff, ticket_id, status="resolved")).status_code == 409
    ticket = await get(client, staff, f"/tickets/{ticket_id}")
    assert ticket["status"] == "pending"


async def test_a_note_does_not_reopen_a_resolved_ticket(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await resolved_ticket(client, customer, staff)
    await post(client, staff, ticket_id, "follow up next week", internal=True)
    assert (await get(client, staff, f"/tickets/{ticket_id}"))["status"] == "resolved"


# history


async def test_every_change_is_an_event_in_order(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer, topic="vpn")
    await patch(client, staff, ticket_id, assignee_id=staff.id, priority="high")
    await post(client, staff, ticket_id, "checking", internal=True)
    await post(client, staff, ticket_id, "try again")
    await patch(client, staff, ticket_id, status="resolved")
    await post(client, customer, ticket_id, "still broken")  # reopens
    await patch(client, staff, ticket_id, status="resolved")
    rate = await client.post(
        f"/tickets/{ticket_id}/rating", json={"score": 4}, headers=customer.headers
    )
    assert rate.status_code == 201
    history = await events(client, staff, ticket_id)
    kinds = [e["kind"] for e in history]
    assert kinds == [
        "created",
        "assignee",
        "priority",
        "note",
        "message",
        "status",
        "message",
        "status",
        "status",
        "rating",
    ]
    assert [e["id"] for e in history] == sorted(e["id"] for e in history)
    created = history[0]
    assert created["after"]["topic"] == "vpn"
    assert created["actor_id"] == customer.id and created["ticket_id"] == ticket_id
    assert history[2]["before"] == {"priority": "normal"}
    assert history[2]["after"] == {"priority": "high"}
    reopened = history[7]
    assert reopened["before"] == {"status": "resolved"}
    assert reopened["after"] == {"status": "pending"}
    assert reopened["actor_id"] == customer.id
    assert history[-1]["after"] == {"score": 4, "comment": None}
    at = [datetime.fromisoformat(e["at"]) for e in history]
    assert at == sorted(at)

    public = await events(client, customer, ticket_id)
    assert [e["kind"] for e in public] == [
        k for k in kinds if k in ("created", "status", "message", "rating")
    ]


async def test_history_is_paged_and_private(
    client: httpx.AsyncClient, customer: Account, other_customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    for i in range(4):
        await post(client, customer, ticket_id, f"more {i}")
    first = await client.get(f"/tickets/{ticket_id}/events?limit=2", headers=customer.headers)
    assert len(first.json()) == 2 and 'rel="next"' in first.headers["Link"]
    assert (await client.get(f"/tickets/{ticket_id}/events")).status_code == 401
    other = await client.get(f"/tickets/{ticket_id}/events", headers=other_customer.headers)
    assert other.status_code == 404
    assert (await client.get("/tickets/999999/events", headers=staff.headers)).status_code == 404


async def test_the_feed_is_for_agents_in_id_order(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    first = await open_ticket(client, customer)
    second = await open_ticket(client, customer)
    await post(client, staff, first, "hello")
    feed = await get(client, staff, "/events")
    assert [(e["ticket_id"], e["kind"]) for e in feed] == [
        (first, "created"),
        (second, "created"),
        (first, "message"),
    ]
    after = await get(client, staff, f"/events?after={feed[0]['id']}&limit=1")
    assert [e["id"] for e in after] == [feed[1]["id"]]
    assert (await client.get("/events", headers=customer.headers)).status_code == 403
    assert (await client.get("/events")).status_code == 401
    assert (await client.get("/events?after=-1", headers=staff.headers)).status_code == 400


# ratings


async def test_the_author_rates_a_resolved_ticket_once(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await resolved_ticket(client, customer, staff)
    response = await client.post(
        f"/tickets/{ticket_id}/rating",
        json={"score": 5, "comment": "quick and kind"},
        headers=customer.headers,
    )
    assert response.status_code == 201, response.text
    assert response.json()["score"] == 5
    again = await client.post(
        f"/tickets/{ticket_id}/rating", json={"score": 1}, headers=customer.headers
    )
    assert again.status_code == 409
    rating = (await get(client, staff, f"/tickets/{ticket_id}"))["rating"]
    assert (rating["score"], rating["comment"]) == (5, "quick and kind")


async def test_rating_before_resolution_or_by_others(
    client: httpx.AsyncClient, customer: Account, other_customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    url = f"/tickets/{ticket_id}/rating"
    assert (await client.post(url, json={"score": 3}, headers=customer.headers)).status_code == 409
    await post(client, staff, ticket_id, "done")
    await patch(client, staff, ticket_id, status="resolved")
    for account in (other_customer, staff):
        response = await client.post(url, json={"score": 3}, headers=account.headers)
        assert response.status_code == 404
    for score in (0, 6, "5", None):
        response = await client.post(url, json={"score": score}, headers=customer.headers)
        assert response.status_code == 400
    assert (await get(client, staff, f"/tickets/{ticket_id}"))["rating"] is None


# service levels


async def test_due_times_follow_the_priority(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    ticket = await get(client, staff, f"/tickets/{ticket_id}")
    created = datetime.fromisoformat(ticket["created_at"])
    first_due = datetime.fromisoformat(ticket["first_response_due_at"])
    assert first_due - created == timedelta(hours=8)  # normal, the default targets
    assert ticket["breached"] is False
    urgent = (await patch(client, staff, ticket_id, priority="urgent")).json()
    assert datetime.fromisoformat(urgent["first_response_due_at"]) - created == timedelta(hours=1)
    resolution = datetime.fromisoformat(urgent["resolution_due_at"])
    assert resolution - created == timedelta(hours=4)
    customer_view = await get(client, customer, f"/tickets/{ticket_id}")
    assert not {"first_response_due_at", "resolution_due_at", "breached"} & set(customer_view)


async def test_breached_once_a_due_time_passes_and_sorted_by_due(
    database_url: URL, tmp_path: Path, engine: AsyncEngine
) -> None:
    # Targets of about a second: urgent is due first, low never within the test.
    tight = "urgent=0.0002,high=0.0003,normal=0.0004,low=100"
    async with client_with(
        database_url, tmp_path, sla_first_response_hours=tight, sla_resolution_hours=tight
    ) as client:
        customer = await add_account(engine, "c@example.com")
        staff = await add_account(engine, "s@example.com", role="staff")
        slow, answered, calm = [await open_ticket(client, customer) for _ in range(3)]
        await patch(client, staff, slow, priority="urgent")
        await patch(client, staff, calm, priority="low")
        await post(client, staff, answered, "on it")  # answered in time, resolution still due
        by_due = await get(client, staff, "/tickets?sort=due")
        assert [t["id"] for t in by_due] == [slow, answered, calm]
        await asyncio.sleep(2)
        breached = await get(client, staff, "/tickets?breached=true")
        assert [t["id"] for t in breached] == [slow, answered]
        assert all(t["breached"] for t in breached)
        kept = await get(client, staff, "/tickets?breached=false")
        assert [(t["id"], t["breached"]) for t in kept] == [(calm, False)]
        page = await client.get("/tickets?sort=due&limit=1", headers=staff.headers)
        second = await client.get(page.headers["Link"][1:].split(">")[0], headers=staff.headers)
        assert [t["id"] for t in second.json()] == [answered]


def test_business_hours_count_only_open_hours() -> None:
    calendar = sla.BusinessHours.parse("Mon-Fri 09:00-17:00 Europe/Berlin")
    friday_4pm = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)  # 16:00 in Berlin
    assert calendar.add(friday_4pm, 1) == datetime(2026, 12, 4, 16, 0, tzinfo=UTC)
    # One hour left on Friday, three on Monday from 09:00 Berlin (08:00 UTC).
    assert calendar.add(friday_4pm, 4) == datetime(2026, 12, 7, 11, 0, tzinfo=UTC)
    saturday = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    assert calendar.add(saturday, 8) == datetime(2026, 12, 7, 16, 0, tzinfo=UTC)
    # Summer time: 09:00 in Berlin is 07:00 UTC.
    assert calendar.add(datetime(2026, 7, 6, 6, 0, tzinfo=UTC), 1) == datetime(
        2026, 7, 6, 8, 0, tzinfo=UTC
    )
    policy = sla.Policy(
        sla.parse_hours("urgent=1,high=2,normal=8,low=16"), {0: 1, 1: 1, 2: 1, 3: 1}
    )
    assert policy.due(friday_4pm, 3).first_response_due_at == friday_4pm + timedelta(hours=1)


@pytest.mark.parametrize(
    "calendar",
    ["weekdays 9-5", "Mon-Fri 17:00-09:00 Europe/Berlin", "Mon-Fri 09:00-17:00 Mars/Base"],
)
def test_a_bad_calendar_is_refused_at_start(calendar: str) -> None:
    with pytest.raises(ValueError, match=r"calendar|close after|time zone"):
        Settings(_env_file=None, sla_business_hours=calendar)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="no hours for"):
        Settings(_env_file=None, sla_first_response_hours="urgent=1")  # type: ignore[call-arg]


# search


def ids_of(body: list[Any]) -> list[int]:
    return sorted(t["id"] for t in body)


async def test_search_matches_stemmed_words_of_topics_and_messages(
    client: httpx.AsyncClient, customer: Account, other_customer: Account, staff: Account
) -> None:
    invoice = await open_ticket(client, customer, topic="Invoice wrong", text="charged twice")
    printer = await open_ticket(client, customer, topic="printer", text="the paper jams")
    theirs = await open_ticket(client, other_customer, topic="invoices", text="charged in March")
    await post(client, staff, printer, "their invoice is attached", internal=True)
    await post(client, customer, printer, "jamming again since the update")

    async def found(account: Account, query: str) -> list[int]:
        return ids_of(await get(client, account, f"/tickets?q={query}"))

    assert await found(customer, "invoices") == [invoice]  # stemmed; own tickets; no notes
    assert await found(staff, "invoice") == [invoice, printer, theirs]  # notes too
    assert await found(customer, "charged twice") == [invoice]  # every word must match
    assert await found(customer, "charged update") == []
    assert await found(customer, "jammed") == [printer]  # a later message counts
    assert await found(customer, '"paper jams"') == [printer]  # a phrase
    assert await found(customer, '"jams paper"') == []
    assert await found(staff, "charged&status=pending&sort=-created_at") == [invoice, theirs]
    await post(client, staff, invoice, "refunded")
    await patch(client, staff, invoice, status="resolved")
    assert await found(staff, "charged&status=pending") == [theirs]
    counted = await client.get("/tickets?q=invoice&count=true", headers=staff.headers)
    assert counted.headers["X-Total-Count"] == "3"


@pytest.mark.parametrize("query", ["%22%22", "...", "x" * 501, "%00"])
async def test_a_search_with_nothing_to_find_is_400(
    client: httpx.AsyncClient, customer: Account, query: str
) -> None:
    response = await client.get(f"/tickets?q={query}", headers=customer.headers)
    assert response.status_code == 400


async def test_search_words_are_never_operators(
    client: httpx.AsyncClient, customer: Account
) -> None:
    ticket_id = await open_ticket(client, customer, topic="a OR b", text="NEAR(x y) col:z*")
    for query in ("OR", "NEAR(x", "col:z*", "a OR b", '"x y"'):
        response = await client.get("/tickets", params={"q": query}, headers=customer.headers)
        assert response.status_code == 200, (query, response.text)
    body = await get(client, customer, "/tickets?q=col%3Az*")
    assert ids_of(body) == [ticket_id]


# the team lead's report


async def test_the_summary_counts_times_breaches_and_ratings_per_assignee(
    client: httpx.AsyncClient,
    customer: Account,
    staff: Account,
    make_user: MakeUser,
    engine: AsyncEngine,
) -> None:
    colleague = await make_user("staff")
    solved = [await resolved_ticket(client, customer, staff) for _ in range(3)]
    for ticket_id in solved[:2]:
        await patch(client, staff, ticket_id, assignee_id=staff.id)
    await patch(client, staff, solved[2], assignee_id=colleague.id)
    waiting = await open_ticket(client, customer)
    canceled = await open_ticket(client, customer)
    await patch(client, customer, canceled, status="canceled")
    for ticket_id, score in ((solved[0], 5), (solved[1], 2)):
        response = await client.post(
            f"/tickets/{ticket_id}/rating", json={"score": score}, headers=customer.headers
        )
        assert response.status_code == 201
    # One ticket was opened ten hours before its first response, due after eight.
    async with engine.begin() as conn:
        query = select(tickets.c.first_response_at).where(tickets.c.id == solved[1])
        answered = (await conn.execute(query)).scalar_one()
        await conn.execute(
            update(tickets)
            .where(tickets.c.id == solved[1])
            .values(
                created_at=answered - timedelta(hours=10),
                first_response_due_at=answered - timedelta(hours=2),
            )
        )

    report = await get(client, staff, "/reports/summary")
    overall = report["overall"]
    assert (overall["created"], overall["resolved"], overall["canceled"]) == (5, 3, 1)
    assert overall["breaches"] == 1
    assert overall["ratings"] == {"count": 2, "average": 3.5}
    first = overall["first_response"]
    assert first["tickets"] == 3
    assert first["median_seconds"] < 60 and 10 * 3600 - 60 < first["p90_seconds"] < 10 * 3600 + 60
    assert overall["resolution"]["tickets"] == 3
    rows = {row["assignee_id"]: row for row in report["by_assignee"]}
    assert set(rows) == {staff.id, colleague.id, None}
    assert (rows[staff.id]["resolved"], rows[staff.id]["breaches"]) == (2, 1)
    assert rows[staff.id]["ratings"] == {"count": 2, "average": 3.5}
    assert (rows[colleague.id]["resolved"], rows[colleague.id]["ratings"]["count"]) == (1, 0)
    assert (rows[None]["created"], rows[None]["canceled"]) == (2, 1)
    assert waiting not in solved

    later = await get(
        client, staff, "/reports/summary?from=2999-01-01T00:00:00Z&to=2999-02-01T00:00:00Z"
    )
    assert later["overall"]["created"] == 0 and later["by_assignee"] == []
    assert later["overall"]["first_response"]["median_seconds"] is None


async def test_the_summary_is_for_staff_over_a_real_period(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    assert (await client.get("/reports/summary")).status_code == 401
    assert (await client.get("/reports/summary", headers=customer.headers)).status_code == 403
    backwards = "/reports/summary?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z"
    assert (await client.get(backwards, headers=staff.headers)).status_code == 400
    bad = await client.get("/reports/summary?from=yesterday", headers=staff.headers)
    assert bad.status_code == 400
