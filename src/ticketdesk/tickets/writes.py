"""The ticket writes that are one statement on PostgreSQL: a new ticket (with its first
message, its author's count and its event), and a leaving agent's open tickets given back.

SQLite runs the same steps as several statements in the request's transaction. Both paths
take their rules from `policy.py` and their events' fields from `events/kinds.py`, and the
differential test (`tests/differential/`) holds what they leave equal, field by field.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, insert, select, text, update

from ticketdesk import sla
from ticketdesk.db import Db, Statement, constants
from ticketdesk.db.batches import Batches
from ticketdesk.events import kinds
from ticketdesk.events import repository as events
from ticketdesk.events.repository import GUARD, INSERT_COLUMNS
from ticketdesk.models import messages, tickets, users
from ticketdesk.tickets import policy, search

_REQUEST = policy.message_type(is_agent=False)
_CREATED = kinds.CREATED.sql(
    topic="ticket.topic", status=f"'{policy.INITIAL_STATUS}'", message_id="message.id"
)
_CREATE_TICKETS_POSTGRES = Statement(
    None,
    postgres=text(
        f"""
        WITH opened AS MATERIALIZED (
            SELECT nextval('tickets_id_seq') AS id, p.*
            FROM unnest(CAST(:topics AS TEXT[]), CAST(:texts AS TEXT[]),
                        CAST(:nows AS TIMESTAMPTZ[]), CAST(:first_dues AS TIMESTAMPTZ[]),
                        CAST(:resolution_dues AS TIMESTAMPTZ[]))
                WITH ORDINALITY AS p(topic, text, now, first_due, resolution_due, n)
            ORDER BY p.n
        ), ticket AS (
            INSERT INTO tickets (id, author_id, topic, status, priority, created_at, updated_at,
                                 first_response_due_at, resolution_due_at, search_public)
            SELECT id, :author_id, topic, '{policy.INITIAL_STATUS}', {policy.DEFAULT_PRIORITY},
                   now, now, first_due, resolution_due,
                   to_tsvector('{search.CONFIG}', topic)
                   || to_tsvector('{search.CONFIG}', {search.bound("text")})
            FROM opened ORDER BY n
            RETURNING id, topic, created_at
        ), message AS (
            INSERT INTO messages (ticket_id, author_id, type, text, created_at)
            SELECT id, CAST(:author_id AS BIGINT), '{_REQUEST}', text, now
            FROM opened ORDER BY n
            RETURNING id, ticket_id
        ), author AS (
            UPDATE users SET tickets_count = tickets_count + (SELECT count(*) FROM opened)
            WHERE id = :author_id
        ), event AS (
            {INSERT_COLUMNS}
            SELECT ticket.id, ticket.created_at, CAST(:author_id AS BIGINT),
                   e.kind, e.before, e.after
            FROM ticket JOIN message ON message.ticket_id = ticket.id, {GUARD},
                 LATERAL (VALUES {_CREATED}) AS e(kind, before, after)
            ORDER BY ticket.id
        )
        SELECT id FROM opened ORDER BY n
        """  # noqa: S608 - only our own constants are formatted in
    ),
    atomic=True,
)


class _Opening(NamedTuple):
    db: Db
    topic: str
    text: str
    now: datetime
    due: sla.DueTimes


_OPENINGS: Batches[_Opening, int] = Batches()
"""The tickets one customer opens from this process while another of theirs is being
opened go to PostgreSQL together (`db/batches.py`): each raises the count on their row."""


async def _open_tickets(
    author_id: int, leader: _Opening, openings: Sequence[_Opening]
) -> list[int]:
    params = {
        "author_id": author_id,
        "topics": [opening.topic for opening in openings],
        "texts": [opening.text for opening in openings],
        "nows": [opening.now for opening in openings],
        "first_dues": [opening.due.first_response_due_at for opening in openings],
        "resolution_dues": [opening.due.resolution_due_at for opening in openings],
    }
    return [int(row[0]) for row in await leader.db.all(_CREATE_TICKETS_POSTGRES, params)]


_INSERT_TICKET = Statement(
    insert(tickets)
    .values(
        author_id=bindparam("author_id"),
        topic=bindparam("topic"),
        status=policy.INITIAL_STATUS,
        priority=policy.DEFAULT_PRIORITY,
        created_at=bindparam("now"),
        updated_at=bindparam("now"),
        first_response_due_at=bindparam("first_response_due_at"),
        resolution_due_at=bindparam("resolution_due_at"),
    )
    .returning(tickets.c.id)
)
_FIRST_MESSAGE = Statement(
    insert(messages)
    .values(
        ticket_id=bindparam("ticket_id"),
        author_id=bindparam("author_id"),
        type=_REQUEST,
        text=bindparam("text"),
        created_at=bindparam("now"),
    )
    .returning(messages.c.id)
)
_COUNT_AUTHORED = Statement(
    update(users)
    .where(users.c.id == bindparam("author_id"))
    .values(tickets_count=users.c.tickets_count + 1)
)


async def create_ticket(
    db: Db, *, author_id: int, topic: str, text: str, now: datetime, due: sla.DueTimes
) -> int:
    """The ticket, its first message (a request), the author's ticket count and the event."""
    params = {"author_id": author_id, "topic": topic, "text": text, "now": now, **due._asdict()}
    if db.dialect == "postgresql":

        async def run(leader: _Opening, openings: Sequence[_Opening]) -> list[int]:
            return await _open_tickets(author_id, leader, openings)

        return await db.batch(_OPENINGS, author_id, _Opening(db, topic, text, now, due), run)
    ticket_id = int(await db.scalar(_INSERT_TICKET, params))
    message_id = await db.scalar(_FIRST_MESSAGE, {**params, "ticket_id": ticket_id})
    await db.execute(_COUNT_AUTHORED, params)
    created = kinds.CREATED.change(topic=topic, status=policy.INITIAL_STATUS, message_id=message_id)
    await events.record(db, ticket_id=ticket_id, actor_id=author_id, now=now, changes=[created])
    return ticket_id


_UNASSIGNED = kinds.ASSIGNEE.sql(
    before={"assignee_id": "CAST(:agent_id AS BIGINT)"}, assignee_id="NULL"
)
_UNASSIGN_POSTGRES = Statement(
    None,
    postgres=text(
        f"""
        WITH gone AS (
            UPDATE tickets SET assignee_id = NULL
            WHERE assignee_id = :agent_id AND {policy.open_sql("status")}
            RETURNING id
        )
        {INSERT_COLUMNS}
        SELECT gone.id, CAST(:now AS TIMESTAMPTZ), CAST(:actor_id AS BIGINT),
               e.kind, e.before, e.after
        FROM gone, {GUARD}, LATERAL (VALUES {_UNASSIGNED}) AS e(kind, before, after)
        """  # noqa: S608 - only our own constants are formatted in
    ),
)
_OPEN = tickets.c.status.in_(constants(*sorted(policy.OPEN_STATUSES)))
_ASSIGNED_OPEN = Statement(
    select(tickets.c.id)
    .where(tickets.c.assignee_id == bindparam("agent_id"), _OPEN)
    .order_by(tickets.c.id)
    .with_for_update()
)
_UNASSIGN = Statement(
    update(tickets)
    .where(tickets.c.assignee_id == bindparam("agent_id"), _OPEN)
    .values(assignee_id=None)
)


async def unassign_agent(db: Db, *, agent_id: int, actor_id: int | None, now: datetime) -> None:
    """The agent's open tickets lose their assignee, each with its event, in this transaction."""
    params = {"agent_id": agent_id, "actor_id": actor_id, "now": now}
    if db.dialect == "postgresql":
        await db.execute(_UNASSIGN_POSTGRES, params)
        return
    ticket_ids = [row[0] for row in await db.all(_ASSIGNED_OPEN, params)]
    await db.execute(_UNASSIGN, params)
    unassigned = kinds.ASSIGNEE.change(before={"assignee_id": agent_id}, assignee_id=None)
    for ticket_id in ticket_ids:
        await events.record(
            db, ticket_id=ticket_id, actor_id=actor_id, now=now, changes=[unassigned]
        )
