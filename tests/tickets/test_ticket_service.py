"""The tickets service, called directly: the status machine through `change_ticket`, who may
assign, the events each change writes, rating, and what an agent's leaving does.

A new ticket and the unassigning of a leaving agent are one statement on PostgreSQL and
several on SQLite: those tests run on both backends.
"""

from __future__ import annotations

import pytest

from factories import (
    ALL,
    Event,
    a_change,
    a_customer,
    a_note,
    a_reply,
    a_resolved_ticket,
    a_ticket,
    an_agent,
    events_of,
)
from ticketdesk.db import Db
from ticketdesk.errors import BadRequest, Conflict, Forbidden, NotFound
from ticketdesk.messages import service as messages
from ticketdesk.tickets import service
from ticketdesk.tickets.policy import Status
from ticketdesk.tickets.service import TicketFilter
from ticketdesk.users import service as users

STAFF_STATUSES: list[Status] = ["pending", "resolved", "unresolved"]


@pytest.mark.both_backends
async def test_a_new_ticket_is_pending_with_its_request_and_one_created_event(db: Db) -> None:
    author = await a_customer(db)
    agent = await an_agent(db)
    ticket_id = await a_ticket(db, author, topic="printer", text="it jams")
    ticket = await service.get_ticket(db, viewer=agent, ticket_id=ticket_id)
    assert (ticket.status, ticket.topic, ticket.author) == ("pending", "printer", author.email)
    assert ticket.assignee_id is None and ticket.first_response_at is None
    assert ticket.first_response_due_at is not None and ticket.resolution_due_at is not None
    [request] = (
        await messages.list_messages(db, viewer=author, ticket_id=ticket_id, page=ALL)
    ).items
    assert (request.type, request.text, request.author_id) == ("request", "it jams", author.id)
    created = {"topic": "printer", "status": "pending", "message_id": request.id}
    assert await events_of(db, agent, ticket_id) == [Event("created", None, created, author.id)]
    assert (await users.get_user(db, author.id)).tickets_count == 1


async def test_the_author_cancels_and_a_canceled_ticket_never_changes_again(db: Db) -> None:
    author = await a_customer(db)
    agent = await an_agent(db)
    ticket_id = await a_ticket(db, author)
    assert (await a_change(db, author, ticket_id, status="canceled")).status == "canceled"
    history = await events_of(db, agent, ticket_id)
    assert history[-1] == Event("status", {"status": "pending"}, {"status": "canceled"}, author.id)
    for status in STAFF_STATUSES:
        with pytest.raises(Conflict, match="canceled"):
            await a_change(db, agent, ticket_id, status=status)
    with pytest.raises(Conflict, match="canceled"):
        await a_change(db, agent, ticket_id, assignee_id=agent.id)
    with pytest.raises(Conflict, match="canceled"):
        await a_change(db, agent, ticket_id, priority="urgent")
    # Canceling again asks for what it is: no change, and no event.
    assert (await a_change(db, author, ticket_id, status="canceled")).status == "canceled"
    assert await events_of(db, agent, ticket_id) == history


@pytest.mark.parametrize("status", STAFF_STATUSES)
async def test_a_customer_may_not_set_a_staff_status(db: Db, status: Status) -> None:
    author = await a_customer(db)
    ticket_id = await a_ticket(db, author)
    with pytest.raises(BadRequest, match=status):
        await a_change(db, author, ticket_id, status=status)


async def test_only_staff_assign_and_set_priority(db: Db) -> None:
    author = await a_customer(db)
    agent = await an_agent(db)
    ticket_id = await a_ticket(db, author)
    with pytest.raises(Forbidden):
        await a_change(db, author, ticket_id, assignee_id=agent.id)
    with pytest.raises(Forbidden):
        await a_change(db, author, ticket_id, priority="urgent")
    assert (await service.get_ticket(db, viewer=agent, ticket_id=ticket_id)).assignee_id is None


async def test_an_agent_may_not_cancel_a_customers_ticket(db: Db) -> None:
    ticket_id = await a_ticket(db, await a_customer(db))
    with pytest.raises(BadRequest, match="canceled"):
        await a_change(db, await an_agent(db), ticket_id, status="canceled")


async def test_an_agent_may_cancel_their_own_ticket(db: Db) -> None:
    agent = await an_agent(db)
    ticket_id = await a_ticket(db, agent)
    assert (await a_change(db, agent, ticket_id, status="canceled")).status == "canceled"


async def test_resolving_needs_a_response_and_a_note_is_none(db: Db) -> None:
    author = await a_customer(db)
    agent = await an_agent(db)
    ticket_id = await a_ticket(db, author)
    await a_note(db, agent, ticket_id)
    with pytest.raises(Conflict, match="responded"):
        await a_change(db, agent, ticket_id, status="resolved")
    assert (await service.get_ticket(db, viewer=agent, ticket_id=ticket_id)).status == "pending"
    await a_reply(db, agent, ticket_id)
    resolved = await a_change(db, agent, ticket_id, status="resolved")
    assert resolved.status == "resolved"
    assert resolved.resolved_at is not None and resolved.resolved_at >= resolved.created_at


@pytest.mark.parametrize(("current", "new"), [("pending", "unresolved"), ("unresolved", "pending")])
async def test_staff_move_a_ticket_between_their_statuses(
    db: Db, current: Status, new: Status
) -> None:
    agent = await an_agent(db)
    ticket_id = await a_ticket(db, await a_customer(db))
    if current != "pending":
        await a_change(db, agent, ticket_id, status=current)
    assert (await a_change(db, agent, ticket_id, status=new)).status == new
    last = (await events_of(db, agent, ticket_id))[-1]
    assert last == Event("status", {"status": current}, {"status": new}, agent.id)


async def test_setting_what_a_ticket_already_has_writes_nothing(db: Db) -> None:
    agent = await an_agent(db)
    ticket_id = await a_ticket(db, await a_customer(db))
    before = await service.get_ticket(db, viewer=agent, ticket_id=ticket_id)
    after = await a_change(db, agent, ticket_id, status="pending", priority="normal")
    assert after == before
    assert [event.kind for event in await events_of(db, agent, ticket_id)] == ["created"]


@pytest.mark.parametrize("who", ["customer", "blocked agent", "nobody", "zero"])
async def test_the_assignee_must_be_an_active_agent(db: Db, who: str) -> None:
    agent = await an_agent(db)
    ticket_id = await a_ticket(db, await a_customer(db))
    if who == "customer":
        assignee = (await a_customer(db)).id
    elif who == "blocked agent":
        assignee = (await an_agent(db, active=False)).id
    else:
        assignee = 0 if who == "zero" else agent.id + 1000
    with pytest.raises(BadRequest, match="active staff"):
        await a_change(db, agent, ticket_id, assignee_id=assignee)
    assert (await service.get_ticket(db, viewer=agent, ticket_id=ticket_id)).assignee_id is None


@pytest.mark.parametrize("superuser", [False, True])
async def test_an_active_agent_or_superuser_is_assigned_and_unassigned(
    db: Db, superuser: bool
) -> None:
    agent = await an_agent(db)
    assignee = await an_agent(db, superuser=superuser)
    ticket_id = await a_ticket(db, await a_customer(db))
    assert (
        await a_change(db, agent, ticket_id, assignee_id=assignee.id)
    ).assignee_id == assignee.id
    assert (await a_change(db, agent, ticket_id, assignee_id=None)).assignee_id is None
    assert (await events_of(db, agent, ticket_id))[1:] == [
        Event("assignee", {"assignee_id": None}, {"assignee_id": assignee.id}, agent.id),
        Event("assignee", {"assignee_id": assignee.id}, {"assignee_id": None}, agent.id),
    ]


async def test_one_change_of_three_fields_is_three_events_in_order(db: Db) -> None:
    agent = await an_agent(db)
    ticket_id = await a_ticket(db, await a_customer(db))
    before = await service.get_ticket(db, viewer=agent, ticket_id=ticket_id)
    after = await a_change(
        db, agent, ticket_id, status="unresolved", assignee_id=agent.id, priority="urgent"
    )
    assert (after.status, after.assignee_id, after.priority) == ("unresolved", agent.id, 3)
    # Urgent is due sooner, counted from the ticket's creation as before.
    assert before.first_response_due_at is not None and after.first_response_due_at is not None
    assert after.first_response_due_at < before.first_response_due_at
    assert (await events_of(db, agent, ticket_id))[1:] == [
        Event("status", {"status": "pending"}, {"status": "unresolved"}, agent.id),
        Event("assignee", {"assignee_id": None}, {"assignee_id": agent.id}, agent.id),
        Event("priority", {"priority": "normal"}, {"priority": "urgent"}, agent.id),
    ]


async def test_a_refused_change_changes_no_field(db: Db) -> None:
    agent = await an_agent(db)
    ticket_id = await a_ticket(db, await a_customer(db))
    with pytest.raises(Conflict):  # no response yet: nothing of it is made
        await a_change(db, agent, ticket_id, status="resolved", assignee_id=agent.id)
    ticket = await service.get_ticket(db, viewer=agent, ticket_id=ticket_id)
    assert (ticket.status, ticket.assignee_id) == ("pending", None)
    assert len(await events_of(db, agent, ticket_id)) == 1


async def test_a_customer_neither_sees_nor_changes_another_customers_ticket(db: Db) -> None:
    ticket_id = await a_ticket(db, await a_customer(db))
    stranger = await a_customer(db)
    with pytest.raises(NotFound):
        await service.get_ticket(db, viewer=stranger, ticket_id=ticket_id)
    with pytest.raises(NotFound):
        await a_change(db, stranger, ticket_id, status="canceled")
    page = await service.list_tickets(db, viewer=stranger, page=ALL)
    assert page.items == []


async def test_customers_may_not_filter_by_what_staff_know(db: Db) -> None:
    author = await a_customer(db)
    with pytest.raises(Forbidden):
        await service.list_tickets(db, viewer=author, page=ALL, filters=TicketFilter(author_id=1))


async def test_only_the_author_rates_a_resolved_ticket_once(db: Db) -> None:
    author = await a_customer(db)
    agent = await an_agent(db)
    pending = await a_ticket(db, author)
    with pytest.raises(Conflict, match="resolved"):
        await service.rate_ticket(db, viewer=author, ticket_id=pending, score=5, comment=None)
    ticket_id = await a_resolved_ticket(db, author, agent)
    for other in (agent, await a_customer(db)):
        with pytest.raises(NotFound):
            await service.rate_ticket(db, viewer=other, ticket_id=ticket_id, score=1, comment=None)
    rated_at = await service.rate_ticket(
        db, viewer=author, ticket_id=ticket_id, score=4, comment="quick"
    )
    ticket = await service.get_ticket(db, viewer=author, ticket_id=ticket_id)
    assert (ticket.rating_score, ticket.rating_comment, ticket.rated_at) == (4, "quick", rated_at)
    last = (await events_of(db, agent, ticket_id))[-1]
    assert last == Event("rating", None, {"score": 4, "comment": "quick"}, author.id)
    with pytest.raises(Conflict, match="rated already"):
        await service.rate_ticket(db, viewer=author, ticket_id=ticket_id, score=1, comment=None)


@pytest.mark.both_backends
async def test_an_agent_who_leaves_gives_back_their_open_tickets_only(db: Db) -> None:
    author = await a_customer(db)
    leaving = await an_agent(db)
    staying = await an_agent(db)
    boss = await an_agent(db, superuser=True)
    tickets = {status: await a_ticket(db, author, topic=status) for status in STAFF_STATUSES}
    tickets["canceled"] = await a_ticket(db, author, topic="canceled")
    for ticket_id in tickets.values():
        await a_change(db, boss, ticket_id, assignee_id=leaving.id)
    await a_reply(db, leaving, tickets["resolved"])
    await a_change(db, leaving, tickets["resolved"], status="resolved")
    await a_change(db, leaving, tickets["unresolved"], status="unresolved")
    await a_change(db, author, tickets["canceled"], status="canceled")
    others = await a_ticket(db, author, topic="someone else's")
    await a_change(db, boss, others, assignee_id=staying.id)
    before = {t: await events_of(db, boss, t) for t in [*tickets.values(), others]}

    await service.agent_left(db, agent_id=leaving.id, actor=boss)

    async def assignee(ticket_id: int) -> int | None:
        return (await service.get_ticket(db, viewer=boss, ticket_id=ticket_id)).assignee_id

    gone = Event("assignee", {"assignee_id": leaving.id}, {"assignee_id": None}, boss.id)
    for status, ticket_id in tickets.items():
        if status in ("pending", "unresolved"):
            assert await assignee(ticket_id) is None
            assert await events_of(db, boss, ticket_id) == [*before[ticket_id], gone]
        else:
            assert await assignee(ticket_id) == leaving.id
            assert await events_of(db, boss, ticket_id) == before[ticket_id]
    assert await assignee(others) == staying.id
    assert await events_of(db, boss, others) == before[others]


@pytest.mark.both_backends
async def test_an_agent_removed_at_the_command_line_leaves_no_actor(db: Db) -> None:
    leaving = await an_agent(db)
    ticket_id = await a_ticket(db, await a_customer(db))
    await a_change(db, leaving, ticket_id, assignee_id=leaving.id)
    await service.agent_left(db, agent_id=leaving.id, actor=None)
    last = (await events_of(db, leaving, ticket_id))[-1]
    assert last == Event("assignee", {"assignee_id": leaving.id}, {"assignee_id": None}, None)
