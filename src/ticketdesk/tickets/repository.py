"""All SQL of tickets, and the one place that limits a customer to their own.

Every statement that reads tickets takes the viewer: a customer's is limited to rows they
wrote (parameter `viewer_id`) and never reads a staff-only column; an agent's is not, and
also reads each ticket's author, assignee, priority and service-level times. Which tickets
a list holds and in what order is `filters.py`.

The writes that exist once per backend (a new ticket, a leaving agent's tickets) are
`writes.py`; a ticket's messages are `messages/`.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import Integer, Select, bindparam, exists, func, select, update

from ticketdesk.auth.principal import Viewer
from ticketdesk.db import Db, Statement, constants
from ticketdesk.models import messages, tickets, users
from ticketdesk.pagination import Page, PageRequest, page_parameters, paginate
from ticketdesk.tags.repository import TAG_NAMES
from ticketdesk.tickets import policy
from ticketdesk.tickets.filters import (
    DUE,
    LAST_PUBLIC_TYPE,
    SORTS,
    FilterShape,
    TicketFilter,
    filtered,
)


class TicketRow(NamedTuple):
    """A ticket as its viewer may see it: the fields after `rated_at` are read for agents only."""

    id: int
    created_at: datetime
    updated_at: datetime
    topic: str
    status: policy.Status
    rating_score: int | None = None
    rating_comment: str | None = None
    rated_at: datetime | None = None
    author: str | None = None  # the author's email
    assignee_id: int | None = None
    priority: int = policy.DEFAULT_PRIORITY
    first_response_due_at: datetime | None = None
    resolution_due_at: datetime | None = None
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    due_at: datetime | None = None  # the next due time (the `due` order's key)
    author_name: str | None = None  # the author's username
    tags: str | None = None  # comma-joined, in no order (`tags.policy.joined`)


class LockedTicket(NamedTuple):
    author_id: int
    status: policy.Status
    assignee_id: int | None
    priority: int
    created_at: datetime


_PUBLIC_COLUMNS = (
    tickets.c.id,
    tickets.c.created_at,
    tickets.c.updated_at,
    tickets.c.topic,
    tickets.c.status,
    tickets.c.rating_score,
    tickets.c.rating_comment,
    tickets.c.rated_at,
)
_AGENT_COLUMNS = (
    *_PUBLIC_COLUMNS,
    users.c.email.label("author"),
    tickets.c.assignee_id,
    tickets.c.priority,
    tickets.c.first_response_due_at,
    tickets.c.resolution_due_at,
    tickets.c.first_response_at,
    tickets.c.resolved_at,
    DUE.label("due_at"),
    users.c.username.label("author_name"),
    TAG_NAMES.label("tags"),
)


def _tickets_for(viewer_is_agent: bool) -> Select[Any]:
    """Agents see every ticket, with its staff-only fields; customers their own, without."""
    if viewer_is_agent:
        return select(*_AGENT_COLUMNS).join(users, users.c.id == tickets.c.author_id)
    return select(*_PUBLIC_COLUMNS).where(tickets.c.author_id == bindparam("viewer_id"))


def visible(query: Select[Any], viewer_is_agent: bool) -> Select[Any]:
    return query if viewer_is_agent else query.where(tickets.c.author_id == bindparam("viewer_id"))


@lru_cache(maxsize=512)
def ticket_page_statement(viewer_is_agent: bool, shape: FilterShape, sort: str) -> Statement:
    """Built once per viewer kind, set of filters and sort order (a bounded number of them)."""
    query = _tickets_for(viewer_is_agent)
    return Statement(
        paginate(filtered(query, shape, viewer_is_agent, "sqlite"), SORTS[sort]),
        postgres=paginate(filtered(query, shape, viewer_is_agent, "postgresql"), SORTS[sort]),
    )


def ticket_page_query(
    viewer: Viewer, page: PageRequest, filters: TicketFilter, sort: str, now: datetime
) -> tuple[Statement, dict[str, Any]]:
    """The statement of one page of tickets, and its parameters."""
    statement = ticket_page_statement(viewer.is_agent, filters.shape(), sort)
    params = {
        "viewer_id": viewer.id,
        **filters.parameters(now),
        **page_parameters(SORTS[sort], page),
    }
    return statement, params


async def ticket_page(
    db: Db, viewer: Viewer, page: PageRequest, filters: TicketFilter, sort: str, now: datetime
) -> Page[TicketRow]:
    statement, params = ticket_page_query(viewer, page, filters, sort, now)
    rows = [TicketRow(*row) for row in await db.all(statement, params)]
    return Page.of(rows, SORTS[sort], page)


@lru_cache(maxsize=128)
def _ticket_count(viewer_is_agent: bool, shape: FilterShape) -> Statement:
    query = visible(select(func.count()).select_from(tickets), viewer_is_agent)
    return Statement(
        filtered(query, shape, viewer_is_agent, "sqlite"),
        postgres=filtered(query, shape, viewer_is_agent, "postgresql"),
    )


@lru_cache(maxsize=128)
def _capped_count(viewer_is_agent: bool, shape: FilterShape) -> Statement:
    def build(dialect: str) -> Select[Any]:
        query = visible(select(tickets.c.id).select_from(tickets), viewer_is_agent)
        found = filtered(query, shape, viewer_is_agent, dialect).limit(
            bindparam("cap", type_=Integer)
        )
        return select(func.count()).select_from(found.subquery())

    return Statement(build("sqlite"), postgres=build("postgresql"))


async def count_tickets_up_to(
    db: Db, viewer: Viewer, filters: TicketFilter, now: datetime, cap: int
) -> int:
    """How many tickets match, counting no further than `cap` (a queue's badge)."""
    statement = _capped_count(viewer.is_agent, filters.shape())
    params = {"viewer_id": viewer.id, "cap": cap, **filters.parameters(now)}
    return int(await db.scalar(statement, params))


async def count_tickets(db: Db, viewer: Viewer, filters: TicketFilter, now: datetime) -> int:
    statement = _ticket_count(viewer.is_agent, filters.shape())
    return int(await db.scalar(statement, {"viewer_id": viewer.id, **filters.parameters(now)}))


_ONE_TICKET = {
    is_agent: Statement(_tickets_for(is_agent).where(tickets.c.id == bindparam("ticket_id")))
    for is_agent in (False, True)
}


async def get_ticket(db: Db, viewer: Viewer, ticket_id: int) -> TicketRow | None:
    row = await db.first(
        _ONE_TICKET[viewer.is_agent], {"ticket_id": ticket_id, "viewer_id": viewer.id}
    )
    return TicketRow(*row) if row is not None else None


_LOCK = {
    is_agent: Statement(
        visible(
            select(
                tickets.c.author_id,
                tickets.c.status,
                tickets.c.assignee_id,
                tickets.c.priority,
                tickets.c.created_at,
            ).where(tickets.c.id == bindparam("ticket_id")),
            is_agent,
        ).with_for_update()
    )
    for is_agent in (False, True)
}


async def lock_ticket(db: Db, viewer: Viewer, ticket_id: int) -> LockedTicket | None:
    """What a change to the ticket depends on, row-locked until the request's transaction ends."""
    row = await db.first(_LOCK[viewer.is_agent], {"ticket_id": ticket_id, "viewer_id": viewer.id})
    return LockedTicket(*row) if row is not None else None


_HAS_RESPONSE = Statement(
    select(
        exists().where(
            messages.c.ticket_id == bindparam("ticket_id"),
            messages.c.type == constants(policy.message_type(is_agent=True))[0],
        )
    )
)


async def has_response(db: Db, ticket_id: int) -> bool:
    return bool(await db.scalar(_HAS_RESPONSE, {"ticket_id": ticket_id}))


CHANGEABLE = frozenset(
    {
        "status",
        "updated_at",
        "resolved_at",
        "assignee_id",
        "priority",
        "first_response_due_at",
        "resolution_due_at",
    }
)
_UPDATES: dict[frozenset[str], Statement] = {}


async def update_ticket(db: Db, ticket_id: int, values: dict[str, Any]) -> None:
    """Set some of the `CHANGEABLE` columns (one statement per set of them, built once)."""
    fields = frozenset(values)
    statement = _UPDATES.get(fields)
    if statement is None:
        assert fields <= CHANGEABLE, fields - CHANGEABLE
        statement = _UPDATES[fields] = Statement(
            update(tickets)
            .where(tickets.c.id == bindparam("ticket_id"))
            .values({name: bindparam(f"new_{name}") for name in sorted(fields)})
        )
    params = {f"new_{name}": value for name, value in values.items()}
    await db.execute(statement, {**params, "ticket_id": ticket_id})


_ASSIGNABLE = Statement(
    select(users.c.id).where(users.c.id == bindparam("user_id"), policy.ASSIGNABLE)
)


async def may_be_assigned(db: Db, user_id: int) -> bool:
    """`policy.ASSIGNABLE`: whether the user may be assigned a ticket."""
    return await db.first(_ASSIGNABLE, {"user_id": user_id}) is not None


class RatingTarget(NamedTuple):
    status: policy.Status
    rating_score: int | None


_LOCK_FOR_RATING = Statement(
    select(tickets.c.status, tickets.c.rating_score)
    .where(tickets.c.id == bindparam("ticket_id"), tickets.c.author_id == bindparam("viewer_id"))
    .with_for_update()
)
_RATE = Statement(
    update(tickets)
    .where(tickets.c.id == bindparam("ticket_id"))
    .values(
        rating_score=bindparam("score"),
        rating_comment=bindparam("comment"),
        rated_at=bindparam("now"),
    )
)


async def lock_for_rating(db: Db, *, author_id: int, ticket_id: int) -> RatingTarget | None:
    """The author's ticket, row-locked; None if it is not theirs."""
    row = await db.first(_LOCK_FOR_RATING, {"ticket_id": ticket_id, "viewer_id": author_id})
    return RatingTarget(*row) if row is not None else None


async def rate(db: Db, *, ticket_id: int, score: int, comment: str | None, now: datetime) -> None:
    await db.execute(
        _RATE, {"ticket_id": ticket_id, "score": score, "comment": comment, "now": now}
    )


_LAST_PUBLIC_TYPES = {
    size: Statement(
        select(tickets.c.id, LAST_PUBLIC_TYPE).where(
            tickets.c.id.in_([bindparam(f"id_{i}", type_=tickets.c.id.type) for i in range(size)])
        )
    )
    for size in range(1, 101)
}


async def last_public_types(db: Db, ticket_ids: list[int]) -> dict[int, policy.MessageType]:
    """For each ticket, the type of its last message its customer can read (up to 100)."""
    found: dict[int, policy.MessageType] = {}
    unique = list(dict.fromkeys(ticket_ids))
    for start in range(0, len(unique), 100):
        chunk = unique[start : start + 100]
        params = {f"id_{i}": ticket_id for i, ticket_id in enumerate(chunk)}
        for ticket_id, kind in await db.all(_LAST_PUBLIC_TYPES[len(chunk)], params):
            if kind is not None:
                found[ticket_id] = kind
    return found
