"""All SQL of ticket events: what changed on a ticket, written in the change's own transaction.

A ticket's history is read by its id; the feed of every ticket's events by position (the
event id). A follower of the feed asks for the events after the last id it saw, so the feed
must never hand out an id while a smaller one may still commit. SQLite has one writer at a
time, so ids commit in order there. PostgreSQL writers run at once and may commit out of
id order, so each writer, before it draws an id, takes a shared advisory lock keyed by the
id sequence's current value (`GUARD`), held until its transaction ends; every id it then
draws is larger than that key. The feed serves only ids below the smallest key still held,
and no higher than the sequence had reached before it looked at the locks
(`feed_horizon`): every id it serves has committed or rolled back for good.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Integer, and_, bindparam, func, insert, select, text

from ticketdesk.auth.principal import Viewer
from ticketdesk.db import Db, Statement
from ticketdesk.events import policy
from ticketdesk.events.kinds import Change as Change
from ticketdesk.models import ticket_events, tickets
from ticketdesk.pagination import Page, PageRequest, Sort, page_parameters
from ticketdesk.schemas import MAX_ID

CHANNEL = "ticketdesk_events"
"""This process's streams hear on it that the process wrote events (`stream.py`)."""

GUARD = "(SELECT pg_advisory_xact_lock_shared(last_value) FROM ticket_events_id_seq) AS guard"
"""A FROM item for every INSERT of events on PostgreSQL: see the module's docstring."""

INSERT_COLUMNS = "INSERT INTO ticket_events (ticket_id, at, actor_id, kind, before, after)"


class EventRow(NamedTuple):
    id: int
    ticket_id: int
    at: datetime
    actor_id: int | None
    kind: str
    before: str | None  # JSON
    after: str | None  # JSON


def as_json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


_COLUMNS = (
    ticket_events.c.id,
    ticket_events.c.ticket_id,
    ticket_events.c.at,
    ticket_events.c.actor_id,
    ticket_events.c.kind,
    ticket_events.c.before,
    ticket_events.c.after,
)

_INSERT = Statement(
    insert(ticket_events).values(
        ticket_id=bindparam("ticket_id"),
        at=bindparam("now"),
        actor_id=bindparam("actor_id"),
        kind=bindparam("kind"),
        before=bindparam("before"),
        after=bindparam("after"),
    ),
    postgres=text(
        f"""
        {INSERT_COLUMNS}
        SELECT CAST(:ticket_id AS BIGINT), CAST(:now AS TIMESTAMPTZ), CAST(:actor_id AS BIGINT),
               CAST(:kind AS VARCHAR), CAST(:before AS TEXT), CAST(:after AS TEXT)
        FROM {GUARD}
        """  # noqa: S608 - only our own constants are formatted in
    ),
)


async def record(
    db: Db, *, ticket_id: int, actor_id: int | None, now: datetime, changes: list[Change]
) -> None:
    """Write the events of one change to a ticket, in the request's transaction."""
    db.notify(CHANNEL, "")  # this process's streams read at once when it commits
    for change in changes:
        await db.execute(
            _INSERT,
            {
                "ticket_id": ticket_id,
                "now": now,
                "actor_id": actor_id,
                "kind": change.kind,
                "before": as_json(change.before),
                "after": as_json(change.after),
            },
        )


IN_ORDER = Sort(name="id", id=ticket_events.c.id, start=(None, 0))


def _history(viewer_is_agent: bool) -> Statement:
    """The ticket, if the viewer may see it, joined with one page of its events.

    As for messages: no row at all when the ticket is not the viewer's to see; one row of
    NULLs when it is and no event lies past the cursor.
    """
    joined = [ticket_events.c.ticket_id == tickets.c.id, IN_ORDER.after()]
    if not viewer_is_agent:
        joined.append(policy.CUSTOMER_SEES)
    query = (
        select(*_COLUMNS)
        .select_from(tickets.outerjoin(ticket_events, and_(*joined)))
        .where(tickets.c.id == bindparam("ticket_id"))
        .order_by(*IN_ORDER.order_by())
        .limit(bindparam("limit", type_=Integer))
    )
    if not viewer_is_agent:
        query = query.where(tickets.c.author_id == bindparam("viewer_id"))
    return Statement(query)


_HISTORY = {is_agent: _history(is_agent) for is_agent in (False, True)}


async def history(
    db: Db, viewer: Viewer, ticket_id: int, page: PageRequest
) -> Page[EventRow] | None:
    """One page of a ticket's events, oldest first; None if the viewer may not see it."""
    params = {"ticket_id": ticket_id, "viewer_id": viewer.id, **page_parameters(IN_ORDER, page)}
    rows = await db.all(_HISTORY[viewer.is_agent], params)
    if not rows:
        return None
    return Page.of([EventRow(*row) for row in rows if row[0] is not None], IN_ORDER, page)


_OF_TICKET = ticket_events.c.ticket_id == bindparam("ticket_id", type_=tickets.c.id.type)
_COUNT_HISTORY = {
    True: Statement(select(func.count()).where(_OF_TICKET)),
    False: Statement(select(func.count()).where(_OF_TICKET, policy.CUSTOMER_SEES)),
}


async def count_history(db: Db, viewer: Viewer, ticket_id: int) -> int:
    """How many of the ticket's events the viewer may see: its author, the public ones only.

    For a ticket `history` has shown the viewer already: it decides who may see the ticket.
    """
    return int(await db.scalar(_COUNT_HISTORY[viewer.is_agent], {"ticket_id": ticket_id}))


_FEED = Statement(
    select(*_COLUMNS)
    .where(
        ticket_events.c.id > bindparam("after", type_=ticket_events.c.id.type),
        ticket_events.c.id < bindparam("below", type_=ticket_events.c.id.type),
    )
    .order_by(ticket_events.c.id)
    .limit(bindparam("limit", type_=Integer))
)
_DRAWN = Statement(
    None,
    postgres=text(
        "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM ticket_events_id_seq"
    ),
    writes=False,
)
_HELD = Statement(
    None,
    postgres=text(
        """
        SELECT min((classid::bigint << 32) | objid::bigint) FROM pg_locks
        WHERE locktype = 'advisory' AND objsubid = 1
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
        """
    ),
    writes=False,
)


async def feed_horizon(db: Db) -> int:
    """The feed may serve ids below this one: each has committed or will never exist.

    Two statements, in this order, each with its own snapshot, and the feed's read after
    them: an id drawn after the first is not served; one drawn before it by a transaction
    still open when the second looks is below that transaction's lock, so not served either.
    """
    if db.dialect != "postgresql":
        return MAX_ID
    drawn = int(await db.scalar(_DRAWN))
    held = await db.scalar(_HELD)
    return min(drawn + 1, int(held) if held is not None else MAX_ID)


async def feed(db: Db, *, after: int, limit: int) -> list[EventRow]:
    """Every ticket's events after the position `after`, in id order, never skipping one."""
    below = await feed_horizon(db)
    rows = await db.all(_FEED, {"after": after, "below": below, "limit": limit})
    return [EventRow(*row) for row in rows]


_NEWEST = Statement(
    select(func.coalesce(func.max(ticket_events.c.id), 0)).where(
        ticket_events.c.id < bindparam("below", type_=ticket_events.c.id.type)
    )
)


async def position(db: Db) -> int:
    """The feed's position now: a stream opened after it sends what happens from here on
    (and nothing is skipped: ids not yet committed are above it)."""
    below = await feed_horizon(db)
    return int(await db.scalar(_NEWEST, {"below": below}))
