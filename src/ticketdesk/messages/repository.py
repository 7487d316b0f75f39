"""All SQL of a ticket's messages: posting one (with what it does to its ticket), reading
them a page at a time, and who wrote them.

A customer reads the messages of their own tickets only, and never a note
(`tickets/policy.py`: `CUSTOMER_READS`). On PostgreSQL a new message is one statement: the
ticket's lock, the rules' check, the insert, the ticket's update and the events; SQLite runs
the same steps as several statements in one transaction. Both take the rules from
`tickets/policy.py` and the events' fields from `events/kinds.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from ticketdesk.db.batches import Batches
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


class PostedMessage(NamedTuple):
    """The ticket's status before the message, and the message, if the rules let it in."""

    status: policy.Status
    message: MessageRow | None


def _post_messages_postgres(message_type: policy.MessageType) -> Statement:
    """Lock, rule check, the inserts, the ticket's update and the events, in one statement.

    The messages are one author's, of one type, on one ticket (`texts` and `nows` in the
    order they were posted; one of each for a single message). The rules are checked once,
    on the ticket's status before them; a customer's first request reopens a resolved
    ticket, and later ones find it open. The ticket row comes back with each message, or
    alone when the rules kept the messages out (`policy.accepts_messages_sql`), so the
    service can say why. An agent's response may be the ticket's first; a note changes
    nothing a customer could see, not even `updated_at`.
    """
    is_agent = message_type != policy.message_type(is_agent=False)
    scope = "" if is_agent else "AND author_id = :viewer_id"
    # Each message's text within the bound it would have alone, joined (`tsvector ||` puts
    # the second after the first, as the words of the joined text are).
    text_added = (
        f"(SELECT string_agg({search.bound('posted.text')}, ' ' ORDER BY posted.n) FROM posted)"  # noqa: S608
    )
    if message_type == policy.NOTE:
        changes = search.extend("search_notes", text_added, bounded=True)
        rows = [(kinds.NOTE.sql(message_id="message.id"), "true")]
    else:
        if is_agent:
            first = "(SELECT min(now) FROM posted)"
            changes = f"first_response_at = COALESCE(first_response_at, {first})"
        else:
            changes = f"status = {policy.reopen_sql('status')}"
        changes += ", updated_at = (SELECT max(now) FROM posted), "
        changes += search.extend("search_public", text_added, bounded=True)
        reopened = kinds.STATUS.sql(
            before={"status": "ticket.status"}, status=policy.reopen_sql("ticket.status")
        )
        reopens = "false" if is_agent else policy.reopens_sql("ticket.status")
        rows = [
            (kinds.MESSAGE.sql(message_id="message.id", type="message.type"), "true"),
            (reopened, f"{reopens} AND message.id = (SELECT min(id) FROM message)"),  # noqa: S608
        ]
    events_sql = " UNION ALL ".join(
        f"SELECT {row[1:-1]}, {order} WHERE {condition}"
        for order, (row, condition) in enumerate(rows)
    )
    return Statement(
        None,
        postgres=text(
            f"""
            WITH ticket AS (
                SELECT id, status FROM tickets WHERE id = :ticket_id {scope} FOR UPDATE
            ), posted AS (
                SELECT * FROM unnest(CAST(:texts AS TEXT[]), CAST(:nows AS TIMESTAMPTZ[]))
                    WITH ORDINALITY AS p(text, now, n)
            ), message AS (
                INSERT INTO messages (ticket_id, author_id, type, text, created_at)
                SELECT ticket.id, CAST(:viewer_id AS BIGINT), '{message_type}',
                       posted.text, posted.now
                FROM ticket, posted WHERE {policy.accepts_messages_sql("ticket.status")}
                ORDER BY posted.n
                RETURNING id, created_at, type, text, attachment_count, author_id
            ), touched AS (
                UPDATE tickets SET {changes}
                WHERE id = (SELECT id FROM ticket) AND EXISTS (SELECT FROM message)
            ), event AS (
                {INSERT_COLUMNS}
                SELECT ticket.id, message.created_at, CAST(:viewer_id AS BIGINT),
                       e.kind, e.before, e.after
                FROM ticket, message, {GUARD},
                     LATERAL ({events_sql}) AS e(kind, before, after, n)
                ORDER BY message.id, e.n
            )
            SELECT ticket.status, message.id, message.created_at, message.type, message.text,
                   message.attachment_count, message.author_id
            FROM ticket LEFT JOIN message ON true
            ORDER BY message.id
            """  # noqa: S608 - only our own constants are formatted in
        ),
        atomic=True,
    )


_POST_MESSAGES_POSTGRES = {kind: _post_messages_postgres(kind) for kind in policy.POSTED_TYPES}


class _Post(NamedTuple):
    db: Db
    text: str
    now: datetime


_POSTS: Batches[_Post, PostedMessage | None] = Batches()
"""The messages posted from this process to one ticket, by one author, of one type, while
another such post runs, go to PostgreSQL together (`db/batches.py`)."""


async def _post_messages(
    ticket_id: int,
    viewer: Viewer,
    message_type: policy.MessageType,
    leader: _Post,
    posts: Sequence[_Post],
) -> list[PostedMessage | None]:
    params = {
        "ticket_id": ticket_id,
        "viewer_id": viewer.id,
        "texts": [post.text for post in posts],
        "nows": [post.now for post in posts],
    }
    rows = await leader.db.all(_POST_MESSAGES_POSTGRES[message_type], params)
    if not rows:
        return [None] * len(posts)
    if rows[0][1] is None:  # the rules kept them out
        return [PostedMessage(rows[0][0], None)] * len(posts)
    assert len(rows) == len(posts), (len(rows), len(posts))
    return [PostedMessage(status, MessageRow(*message)) for status, *message in rows]


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


async def post_message(
    db: Db, viewer: Viewer, ticket_id: int, text: str, now: datetime, *, internal: bool = False
) -> PostedMessage | None:
    """The message on the ticket, the ticket's update and the events; None: no such ticket."""
    message_type = policy.message_type(is_agent=viewer.is_agent, internal=internal)
    params = {"ticket_id": ticket_id, "viewer_id": viewer.id, "text": text, "now": now}
    if db.dialect == "postgresql":

        async def run(leader: _Post, posts: Sequence[_Post]) -> list[PostedMessage | None]:
            return await _post_messages(ticket_id, viewer, message_type, leader, posts)

        key = (ticket_id, viewer.id, message_type)
        return await db.batch(_POSTS, key, _Post(db, text, now), run)
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
