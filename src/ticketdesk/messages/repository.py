"""All SQL of a ticket's messages: posting one (with what it does to its ticket), reading
them a page at a time, and who wrote them.

A customer reads the messages of their own tickets only, and never a note
(`tickets/policy.py`: `CUSTOMER_READS`). On PostgreSQL a new message is one statement: the
ticket's lock, the rules' check, the insert, the ticket's update and the events; SQLite runs
the same steps as several statements in one transaction. Both take the rules from
`tickets/policy.py` and the events' fields from `events/kinds.py`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    Integer,
    LargeBinary,
    Select,
    and_,
    bindparam,
    cast,
    func,
    insert,
    or_,
    select,
    text,
    update,
)

from ticketdesk.auth.principal import Viewer
from ticketdesk.db import Db, Statement
from ticketdesk.db.turns import Turns
from ticketdesk.events import kinds
from ticketdesk.events import repository as events
from ticketdesk.events.repository import GUARD, INSERT_COLUMNS
from ticketdesk.models import messages, tickets, users
from ticketdesk.pagination import Page, PageRequest, Sort, encode_cursor, page_parameters
from ticketdesk.tickets import policy, search
from ticketdesk.tickets.repository import lock_ticket, visible


class MessageRow(NamedTuple):
    id: int
    created_at: datetime
    type: policy.MessageType
    text: str
    attachment_count: int = 0
    author_id: int | None = None


_MESSAGE_COLUMNS = (
    messages.c.id,
    messages.c.created_at,
    messages.c.type,
    messages.c.text,
    messages.c.attachment_count,
    messages.c.author_id,
)
MESSAGES_IN_ORDER = Sort(name="id", id=messages.c.id, start=(None, 0))

_INSERT_MESSAGE = Statement(
    insert(messages)
    .values(
        ticket_id=bindparam("ticket_id"),
        author_id=bindparam("author_id"),
        type=bindparam("type"),
        text=bindparam("text"),
        created_at=bindparam("now"),
    )
    .returning(*_MESSAGE_COLUMNS)
)


def _post_message_postgres(message_type: policy.MessageType) -> Statement:
    """Lock, rule check, insert, the ticket's update and the events, in one statement.

    The ticket row comes back with the message, or alone when the rules kept the message
    out (`policy.accepts_messages_sql`), so the service can say why. A customer's request
    reopens a resolved ticket (`policy.reopen_sql`); an agent's response may be the
    ticket's first; a note changes nothing a customer could see, not even `updated_at`.
    """
    is_agent = message_type != policy.message_type(is_agent=False)
    scope = "" if is_agent else "AND author_id = :viewer_id"
    text_added = "CAST(:text AS TEXT)"
    if message_type == policy.NOTE:
        changes = search.extend("search_notes", text_added)
        rows = [(kinds.NOTE.sql(message_id="message.id"), "true")]
    else:
        if is_agent:
            changes = "first_response_at = COALESCE(first_response_at, CAST(:now AS TIMESTAMPTZ))"
        else:
            changes = f"status = {policy.reopen_sql('status')}"
        changes += ", updated_at = CAST(:now AS TIMESTAMPTZ), "
        changes += search.extend("search_public", text_added)
        reopened = kinds.STATUS.sql(
            before={"status": "ticket.status"}, status=policy.reopen_sql("ticket.status")
        )
        reopens = "false" if is_agent else policy.reopens_sql("ticket.status")
        rows = [
            (kinds.MESSAGE.sql(message_id="message.id", type="message.type"), "true"),
            (reopened, reopens),
        ]
    events_sql = " UNION ALL ".join(
        f"SELECT {row[1:-1]} WHERE {condition}" for row, condition in rows
    )
    return Statement(
        None,
        postgres=text(
            f"""
            WITH ticket AS (
                SELECT id, status FROM tickets WHERE id = :ticket_id {scope} FOR UPDATE
            ), message AS (
                INSERT INTO messages (ticket_id, author_id, type, text, created_at)
                SELECT id, CAST(:viewer_id AS BIGINT), '{message_type}',
                       CAST(:text AS TEXT), CAST(:now AS TIMESTAMPTZ)
                FROM ticket WHERE {policy.accepts_messages_sql("status")}
                RETURNING id, created_at, type, text, attachment_count, author_id
            ), touched AS (
                UPDATE tickets SET {changes}
                WHERE id = (SELECT id FROM ticket) AND EXISTS (SELECT FROM message)
            ), event AS (
                {INSERT_COLUMNS}
                SELECT ticket.id, CAST(:now AS TIMESTAMPTZ), CAST(:viewer_id AS BIGINT),
                       e.kind, e.before, e.after
                FROM ticket, message, {GUARD},
                     LATERAL ({events_sql}) AS e(kind, before, after)
            )
            SELECT ticket.status, message.id, message.created_at, message.type, message.text,
                   message.attachment_count, message.author_id
            FROM ticket LEFT JOIN message ON true
            """  # noqa: S608 - only our own constants are formatted in
        ),
        atomic=True,
    )


_POST_MESSAGE_POSTGRES = {kind: _post_message_postgres(kind) for kind in policy.POSTED_TYPES}
_TICKET_WRITES = Turns()
"""The messages posted to one ticket from this process reach PostgreSQL one at a time."""
_ANSWERED = Statement(
    update(tickets)
    .where(tickets.c.id == bindparam("ticket_id"))
    .values(
        updated_at=bindparam("now"),
        first_response_at=func.coalesce(tickets.c.first_response_at, bindparam("now")),
    )
)
_SET_STATUS = Statement(
    update(tickets)
    .where(tickets.c.id == bindparam("ticket_id"))
    .values(status=bindparam("new_status"), updated_at=bindparam("now"))
)


class PostedMessage(NamedTuple):
    """The ticket's status before the message, and the message, if the rules let it in."""

    status: policy.Status
    message: MessageRow | None


async def post_message(
    db: Db, viewer: Viewer, ticket_id: int, text: str, now: datetime, *, internal: bool = False
) -> PostedMessage | None:
    """The message on the ticket, the ticket's update and the events; None: no such ticket."""
    message_type = policy.message_type(is_agent=viewer.is_agent, internal=internal)
    params = {"ticket_id": ticket_id, "viewer_id": viewer.id, "text": text, "now": now}
    if db.dialect == "postgresql":
        async with db.turn(_TICKET_WRITES, ticket_id):
            row = await db.first(_POST_MESSAGE_POSTGRES[message_type], params)
        if row is None:
            return None
        status, *message = row
        return PostedMessage(status, MessageRow(*message) if message[0] is not None else None)
    ticket = await lock_ticket(db, viewer, ticket_id)
    if ticket is None:
        return None
    if not policy.accepts_messages(ticket.status):
        return PostedMessage(ticket.status, None)
    values = {**params, "author_id": viewer.id, "type": message_type}
    inserted = await db.first(_INSERT_MESSAGE, values)
    assert inserted is not None
    posted = MessageRow(*inserted)
    changes: list[kinds.Change] = []
    if message_type == policy.NOTE:
        changes.append(kinds.NOTE.change(message_id=posted.id))
    else:
        changes.append(kinds.MESSAGE.change(message_id=posted.id, type=posted.type))
        if viewer.is_agent:
            await db.execute(_ANSWERED, params)
        else:
            new_status = policy.status_after_message(ticket.status, is_agent=False)
            await db.execute(_SET_STATUS, {**params, "new_status": new_status})
            if new_status != ticket.status:
                before = {"status": ticket.status}
                changes.append(kinds.STATUS.change(before=before, status=new_status))
    await events.record(db, ticket_id=ticket_id, actor_id=viewer.id, now=now, changes=changes)
    return PostedMessage(ticket.status, posted)


def _message_page_for(viewer_is_agent: bool, dialect: str) -> Select[Any]:
    """The ticket, if the viewer may see it, joined with one page of its messages.

    One statement for both: a ticket the viewer may not see gives no row at all; a visible
    one with no messages past the cursor gives one row of NULLs. Customers never read notes.

    The page ends early once it holds `max_bytes` of text (always one message at least): a
    running sum of the sizes over the page's rows keeps those that start below the bound.
    The last column says how many rows the page had before that, so a page cut short still
    gets a cursor.
    """
    page = [messages.c.ticket_id == tickets.c.id, MESSAGES_IN_ORDER.after()]
    if not viewer_is_agent:
        page.append(policy.CUSTOMER_READS)
    size = (
        func.octet_length(messages.c.text)
        if dialect == "postgresql"
        else func.length(cast(messages.c.text, LargeBinary))
    )
    rows = visible(
        select(*_MESSAGE_COLUMNS, size.label("size"))
        .select_from(tickets.outerjoin(messages, and_(*page)))
        .where(tickets.c.id == bindparam("ticket_id"))
        .order_by(*MESSAGES_IN_ORDER.order_by())
        .limit(bindparam("limit", type_=Integer)),
        viewer_is_agent,
    ).subquery("page")
    sized = select(
        rows,
        func.sum(rows.c.size).over(order_by=rows.c.id).label("upto"),
        func.count().over().label("fetched"),
    ).subquery("sized")
    return (
        select(*(sized.c[column.name] for column in _MESSAGE_COLUMNS), sized.c.fetched)
        .where(
            or_(
                sized.c.size.is_(None),
                sized.c.upto - sized.c.size < bindparam("max_bytes", type_=Integer),
            )
        )
        .order_by(sized.c.id)
    )


def _message_page(viewer_is_agent: bool) -> Statement:
    return Statement(
        _message_page_for(viewer_is_agent, "sqlite"),
        postgres=_message_page_for(viewer_is_agent, "postgresql"),
    )


_MESSAGE_PAGE = {is_agent: _message_page(is_agent) for is_agent in (False, True)}


async def message_page(
    db: Db, viewer: Viewer, ticket_id: int, page: PageRequest, *, max_bytes: int
) -> Page[MessageRow] | None:
    """One page of a ticket's messages, oldest first, of at most `page.limit` messages and
    about `max_bytes` of text (never less than one message); None if the viewer may not see
    the ticket."""
    params = {
        "ticket_id": ticket_id,
        "viewer_id": viewer.id,
        "max_bytes": max_bytes,
        **page_parameters(MESSAGES_IN_ORDER, page),
    }
    rows = await db.all(_MESSAGE_PAGE[viewer.is_agent], params)
    if not rows:
        return None
    found = [MessageRow(*row[:-1]) for row in rows if row[0] is not None]
    if found and len(found) < min(int(rows[0][-1]), page.limit + 1):
        # Cut short by the bytes: the next page starts after the last message here.
        return Page(found, encode_cursor(MESSAGES_IN_ORDER.name, None, found[-1].id))
    return Page.of(found, MESSAGES_IN_ORDER, page)


_ON_TICKET = messages.c.ticket_id == bindparam("ticket_id", type_=tickets.c.id.type)
_COUNT_MESSAGES = {
    True: Statement(select(func.count()).where(_ON_TICKET)),
    False: Statement(select(func.count()).where(_ON_TICKET, policy.CUSTOMER_READS)),
}


async def count_messages(db: Db, viewer: Viewer, ticket_id: int) -> int:
    """How many of the ticket's messages the viewer may read (notes for agents only)."""
    return int(await db.scalar(_COUNT_MESSAGES[viewer.is_agent], {"ticket_id": ticket_id}))


_AUTHOR_NAMES = Statement(
    select(users.c.id, users.c.username).where(
        users.c.id.in_(
            select(messages.c.author_id).where(messages.c.ticket_id == bindparam("ticket_id"))
        )
    )
)


async def author_names(db: Db, ticket_id: int) -> dict[int, str]:
    """The usernames of everyone who wrote on the ticket (the page shows who wrote what)."""
    return {
        user_id: name for user_id, name in await db.all(_AUTHOR_NAMES, {"ticket_id": ticket_id})
    }
