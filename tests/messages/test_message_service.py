"""The messages service, called directly: what a request, a response and a note do to their
ticket, what a customer reads of them, and which tickets take none.

A new message is one statement on PostgreSQL and several on SQLite: the tests of what
posting does run on both backends.
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
from ticketdesk.auth.principal import Viewer
from ticketdesk.db import Db
from ticketdesk.errors import Conflict, Forbidden, NotFound
from ticketdesk.messages import service
from ticketdesk.pagination import PageRequest
from ticketdesk.tickets import service as tickets
from ticketdesk.tickets.policy import Status

COUNTED = PageRequest(limit=1000, cursor=None, count=True)


async def texts(db: Db, viewer: Viewer, ticket_id: int) -> list[tuple[str, str]]:
    """The ticket's messages as the viewer reads them: (type, text), oldest first."""
    page = await service.list_messages(db, viewer=viewer, ticket_id=ticket_id, page=ALL)
    return [(message.type, message.text) for message in page.items]


@pytest.mark.both_backends
@pytest.mark.parametrize("status", ["resolved", "unresolved"])
async def test_a_customers_reply_reopens_the_ticket(db: Db, status: Status) -> None:
    author = await a_customer(db)
    agent = await an_agent(db)
    ticket_id = await a_ticket(db, author)
    await a_reply(db, agent, ticket_id, "fixed?")
    await a_change(db, agent, ticket_id, status=status)
    message = await a_reply(db, author, ticket_id, "still jams")
    assert (message.type, message.text, message.author_id) == ("request", "still jams", author.id)
    assert (await tickets.get_ticket(db, viewer=author, ticket_id=ticket_id)).status == "pending"
    assert (await events_of(db, agent, ticket_id))[-2:] == [
        Event("message", None, {"message_id": message.id, "type": "request"}, author.id),
        Event("status", {"status": status}, {"status": "pending"}, author.id),
    ]


@pytest.mark.both_backends
async def test_a_customers_reply_to_a_pending_ticket_changes_no_status(db: Db) -> None:
    author = await a_customer(db)
    ticket_id = await a_ticket(db, author)
    before = await tickets.get_ticket(db, viewer=author, ticket_id=ticket_id)
    message = await a_reply(db, author, ticket_id, "also, it smokes")
    after = await tickets.get_ticket(db, viewer=author, ticket_id=ticket_id)
    assert after.status == "pending" and after.updated_at >= before.updated_at
    assert (await events_of(db, author, ticket_id))[1:] == [
        Event("message", None, {"message_id": message.id, "type": "request"}, author.id)
    ]


@pytest.mark.both_backends
async def test_the_first_response_is_recorded_once(db: Db) -> None:
    agent = await an_agent(db)
    ticket_id = await a_ticket(db, await a_customer(db))
    first = await a_reply(db, agent, ticket_id, "on it")
    answered = await tickets.get_ticket(db, viewer=agent, ticket_id=ticket_id)
    assert first.type == "response"
    assert answered.first_response_at == first.created_at == answered.updated_at
    assert answered.status == "pending"  # a response changes no status
    second = await a_reply(db, await an_agent(db), ticket_id, "and more")
    again = await tickets.get_ticket(db, viewer=agent, ticket_id=ticket_id)
    assert again.first_response_at == first.created_at
    assert again.updated_at == second.created_at


@pytest.mark.both_backends
async def test_a_note_changes_nothing_a_customer_sees(db: Db) -> None:
    author = await a_customer(db)
    agent = await an_agent(db)
    ticket_id = await a_resolved_ticket(db, author, agent)
    before = await tickets.get_ticket(db, viewer=agent, ticket_id=ticket_id)
    note = await a_note(db, agent, ticket_id, "they will be back")
    assert (note.type, note.author_id) == ("note", agent.id)
    assert await tickets.get_ticket(db, viewer=agent, ticket_id=ticket_id) == before
    last = (await events_of(db, agent, ticket_id))[-1]
    assert last == Event("note", None, {"message_id": note.id}, agent.id)
    assert "note" not in [event.kind for event in await events_of(db, author, ticket_id)]


async def test_a_note_is_no_first_response(db: Db) -> None:
    agent = await an_agent(db)
    ticket_id = await a_ticket(db, await a_customer(db))
    await a_note(db, agent, ticket_id)
    assert (
        await tickets.get_ticket(db, viewer=agent, ticket_id=ticket_id)
    ).first_response_at is None


async def test_customers_never_read_notes_nor_count_them(db: Db) -> None:
    author = await a_customer(db)
    agent = await an_agent(db)
    ticket_id = await a_ticket(db, author, text="it jams")
    await a_note(db, agent, ticket_id, "customer is grumpy")
    await a_reply(db, agent, ticket_id, "we are on it")
    assert await texts(db, author, ticket_id) == [
        ("request", "it jams"),
        ("response", "we are on it"),
    ]
    assert await texts(db, agent, ticket_id) == [
        ("request", "it jams"),
        ("note", "customer is grumpy"),
        ("response", "we are on it"),
    ]
    customers = await service.list_messages(db, viewer=author, ticket_id=ticket_id, page=COUNTED)
    agents = await service.list_messages(db, viewer=agent, ticket_id=ticket_id, page=COUNTED)
    assert (customers.total, agents.total) == (2, 3)


async def test_pages_follow_on_without_a_note_for_the_customer(db: Db) -> None:
    author = await a_customer(db)
    agent = await an_agent(db)
    ticket_id = await a_ticket(db, author, text="one")
    await a_note(db, agent, ticket_id, "hidden")
    await a_reply(db, agent, ticket_id, "two")
    await a_reply(db, author, ticket_id, "three")
    seen: list[str] = []
    page = PageRequest(limit=1, cursor=None, count=False)
    while True:
        found = await service.list_messages(db, viewer=author, ticket_id=ticket_id, page=page)
        seen += [message.text for message in found.items]
        if found.next_cursor is None:
            break
        page = PageRequest(limit=1, cursor=found.next_cursor, count=False)
    assert seen == ["one", "two", "three"]


async def test_a_customer_writes_no_note(db: Db) -> None:
    author = await a_customer(db)
    ticket_id = await a_ticket(db, author)
    with pytest.raises(Forbidden):
        await a_note(db, author, ticket_id)
    assert await texts(db, author, ticket_id) == [("request", "it jams")]


@pytest.mark.both_backends
@pytest.mark.parametrize("writer", ["author", "agent", "note"])
async def test_a_canceled_ticket_takes_no_message(db: Db, writer: str) -> None:
    author = await a_customer(db)
    agent = await an_agent(db)
    ticket_id = await a_ticket(db, author)
    await a_change(db, author, ticket_id, status="canceled")
    history = await events_of(db, agent, ticket_id)
    with pytest.raises(Conflict, match="canceled") as refused:
        if writer == "note":
            await a_note(db, agent, ticket_id)
        else:
            await a_reply(db, author if writer == "author" else agent, ticket_id)
    assert refused.value.status_code == 409
    assert await texts(db, agent, ticket_id) == [("request", "it jams")]
    assert await events_of(db, agent, ticket_id) == history


@pytest.mark.both_backends
async def test_another_customers_ticket_is_not_found(db: Db) -> None:
    ticket_id = await a_ticket(db, await a_customer(db))
    stranger = await a_customer(db)
    await a_ticket(db, stranger)  # a ticket of their own changes nothing
    with pytest.raises(NotFound):
        await a_reply(db, stranger, ticket_id, "let me in")
    with pytest.raises(NotFound):
        await service.list_messages(db, viewer=stranger, ticket_id=ticket_id, page=ALL)
    assert await texts(db, await an_agent(db), ticket_id) == [("request", "it jams")]


@pytest.mark.both_backends
async def test_a_ticket_that_does_not_exist_is_not_found_for_staff_either(db: Db) -> None:
    agent = await an_agent(db)
    missing = await a_ticket(db, await a_customer(db)) + 1000
    with pytest.raises(NotFound):
        await a_reply(db, agent, missing)
    with pytest.raises(NotFound):
        await a_note(db, agent, missing)
    with pytest.raises(NotFound):
        await service.list_messages(db, viewer=agent, ticket_id=missing, page=ALL)


async def test_author_names_are_everyone_who_wrote(db: Db) -> None:
    author = await a_customer(db, username="Ada")
    agent = await an_agent(db, username="Grace")
    await an_agent(db, username="Nobody")
    ticket_id = await a_ticket(db, author)
    await a_note(db, agent, ticket_id)
    ticket = await tickets.get_ticket(db, viewer=agent, ticket_id=ticket_id)
    assert await service.author_names(db, ticket=ticket) == {author.id: "Ada", agent.id: "Grace"}
