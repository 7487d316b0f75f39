"""What a customer sees of a ticket's history (`events/policy.py`), and the event kinds'
two ways of writing an event (`events/kinds.py`) holding the same fields in the same order.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import text

from factories import (
    ALL,
    a_change,
    a_customer,
    a_note,
    a_reply,
    a_resolved_ticket,
    an_agent,
    events_of,
)
from ticketdesk.auth.principal import Viewer
from ticketdesk.db import Db, Statement
from ticketdesk.errors import NotFound
from ticketdesk.events import kinds, policy, repository, service
from ticketdesk.models import EVENT_KINDS
from ticketdesk.pagination import PageRequest
from ticketdesk.tags import service as tags
from ticketdesk.tickets import service as tickets

COUNTED = PageRequest(limit=1000, cursor=None, count=True)


def test_the_kinds_are_the_customers_or_the_staffs() -> None:
    assert set(policy.CUSTOMER_KINDS).isdisjoint(policy.STAFF_KINDS)
    assert sorted([*policy.CUSTOMER_KINDS, *policy.STAFF_KINDS]) == sorted(EVENT_KINDS)
    assert set(policy.STAFF_KINDS) == {"assignee", "priority", "note", "tags"}
    assert set(policy.CUSTOMER_KINDS) >= policy.MAILED_KINDS
    assert [kind for kind in EVENT_KINDS if policy.customer_sees(kind)] == list(
        policy.CUSTOMER_KINDS
    )


async def a_ticket_with_every_kind(db: Db) -> tuple[Viewer, Viewer, int]:
    """A ticket whose history holds an event of each kind; its author, an agent, its id."""
    author = await a_customer(db)
    agent = await an_agent(db)
    ticket_id = await a_resolved_ticket(db, author, agent)  # created, message, status
    await a_note(db, agent, ticket_id)
    await a_change(db, agent, ticket_id, assignee_id=agent.id, priority="high")
    await tags.change_tags(db, viewer=agent, ticket_id=ticket_id, add=["vip"])
    await a_reply(db, author, ticket_id, "it jams again")  # message, status (reopened)
    await a_reply(db, agent, ticket_id, "fixed for good")
    await a_change(db, agent, ticket_id, status="resolved")
    await tickets.rate_ticket(db, viewer=author, ticket_id=ticket_id, score=5, comment=None)
    return author, agent, ticket_id


async def test_a_customer_sees_only_the_public_kinds_of_their_tickets_history(db: Db) -> None:
    author, agent, ticket_id = await a_ticket_with_every_kind(db)
    everything = await events_of(db, agent, ticket_id)
    assert {event.kind for event in everything} == set(EVENT_KINDS)
    public = await events_of(db, author, ticket_id)
    assert public == [event for event in everything if event.kind in policy.CUSTOMER_KINDS]
    assert {event.kind for event in public} == set(policy.CUSTOMER_KINDS)


async def test_the_history_counts_what_the_viewer_sees(db: Db) -> None:
    author, agent, ticket_id = await a_ticket_with_every_kind(db)
    for viewer in (author, agent):
        page = await service.history(db, viewer=viewer, ticket_id=ticket_id, page=COUNTED)
        assert page.total == len(page.items) == len(await events_of(db, viewer, ticket_id))
        assert await repository.count_history(db, viewer, ticket_id) == page.total
    agents = await repository.count_history(db, agent, ticket_id)
    customers = await repository.count_history(db, author, ticket_id)
    assert agents - customers == 4  # the note, the assignment, the priority and the tags


async def test_a_customers_history_pages_skip_staff_events(db: Db) -> None:
    author, _, ticket_id = await a_ticket_with_every_kind(db)
    seen: list[str] = []
    page = PageRequest(limit=2, cursor=None, count=False)
    while True:
        found = await service.history(db, viewer=author, ticket_id=ticket_id, page=page)
        assert len(found.items) <= 2
        seen += [row.kind for row in found.items]
        if found.next_cursor is None:
            break
        page = PageRequest(limit=2, cursor=found.next_cursor, count=False)
    assert seen == [event.kind for event in await events_of(db, author, ticket_id)]


async def test_another_customers_history_is_not_found(db: Db) -> None:
    _, agent, ticket_id = await a_ticket_with_every_kind(db)
    stranger = await a_customer(db)
    assert await repository.history(db, stranger, ticket_id, ALL) is None
    with pytest.raises(NotFound):
        await service.history(db, viewer=stranger, ticket_id=ticket_id, page=ALL)
    with pytest.raises(NotFound):
        await service.history(db, viewer=agent, ticket_id=ticket_id + 1000, page=ALL)


@pytest.mark.parametrize("kind", kinds.ALL, ids=lambda kind: kind.name)
def test_change_and_sql_take_exactly_the_kinds_fields_in_order(kind: kinds.Kind) -> None:
    before = None if kind.before is None else dict.fromkeys(kind.before, "NULL")
    after = dict.fromkeys(kind.after, "NULL")
    kind.change(before=before, **after)
    kind.sql(before=before, **after)
    reordered = dict(reversed(after.items())) if len(after) > 1 else {**after, "extra": "NULL"}
    with pytest.raises(AssertionError):
        kind.change(before=before, **reordered)
    with pytest.raises(AssertionError):
        kind.sql(before=before, **reordered)
    other_before = {"extra": "NULL"} if kind.before is not None else {"status": "NULL"}
    with pytest.raises(AssertionError):
        kind.change(before=other_before, **after)
    with pytest.raises(AssertionError):
        kind.sql(before=other_before, **after)


# Each field's value as an SQL literal and as Python: once set, once NULL where it may be.
VALUES: dict[str, tuple[str, Any]] = {
    "topic": ("'the printer'", "the printer"),
    "status": ("'pending'", "pending"),
    "message_id": ("CAST(7 AS BIGINT)", 7),
    "assignee_id": ("CAST(12 AS BIGINT)", 12),
    "priority": ("'urgent'", "urgent"),
    "type": ("'request'", "request"),
    "score": ("5", 5),
    "comment": ("'quick, \"kind\" help'", 'quick, "kind" help'),
    "tags": ("json_build_array('billing', 'region:eu')", ["billing", "region:eu"]),
}
NULLS: dict[str, tuple[str, Any]] = {
    **VALUES,
    "assignee_id": ("CAST(NULL AS BIGINT)", None),
    "comment": ("CAST(NULL AS TEXT)", None),
}


@pytest.mark.postgresql_only
@pytest.mark.parametrize("values", [VALUES, NULLS], ids=["set", "null"])
async def test_the_sql_of_each_kind_writes_the_json_of_its_change(
    db: Db, values: dict[str, tuple[str, Any]]
) -> None:
    """`json_build_object` and `as_json` give the same fields, values and order (the text
    differs in its spaces only, which no reader of the JSON sees)."""
    for kind in kinds.ALL:
        sql_before = None if kind.before is None else {f: values[f][0] for f in kind.before}
        py_before = None if kind.before is None else {f: values[f][1] for f in kind.before}
        row = kind.sql(before=sql_before, **{f: values[f][0] for f in kind.after})
        change = kind.change(before=py_before, **{f: values[f][1] for f in kind.after})
        query = Statement(text(f"SELECT * FROM (VALUES {row}) AS e(kind, before, after)"))
        name, before, after = await db.first(query) or ()
        assert name == change.kind == kind.name
        for written, wanted in ((before, change.before), (after, change.after)):
            if wanted is None:
                assert written is None
                continue
            parsed = json.loads(written)
            assert list(parsed) == list(wanted), kind.name  # the same fields in the same order
            assert repository.as_json(parsed) == repository.as_json(wanted), kind.name
