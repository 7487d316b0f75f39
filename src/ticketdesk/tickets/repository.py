"""All SQL of tickets and messages, and the one place that limits a customer to their own.

Every statement that reads tickets takes the viewer: a customer's is limited to rows they
wrote (parameter `viewer_id`), an agent's is not and also names each ticket's author.
On PostgreSQL a new ticket and a new message are each one statement, a unit of work by
itself; SQLite runs the same steps as several statements in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import Integer, Select, and_, bindparam, exists, func, insert, select, text, update

from ticketdesk.auth.principal import Viewer
from ticketdesk.db import Db, Statement
from ticketdesk.models import UTCDateTime, messages, tickets, users
from ticketdesk.pagination import (
    Page,
    PageRequest,
    Sort,
    page_parameters,
    paginate,
    timestamp_from_json,
)
from ticketdesk.schemas import MAX_ID, normalize_email
from ticketdesk.tickets import rules


class TicketRow(NamedTuple):
    id: int
    created_at: datetime
    updated_at: datetime
    topic: str
    status: rules.Status
    author: str | None = None  # the author's email, for agents only


class MessageRow(NamedTuple):
    id: int
    created_at: datetime
    type: rules.MessageType
    text: str


class LockedTicket(NamedTuple):
    author_id: int
    status: rules.Status


_TICKET_COLUMNS = (
    tickets.c.id,
    tickets.c.created_at,
    tickets.c.updated_at,
    tickets.c.topic,
    tickets.c.status,
)
_MESSAGE_COLUMNS = (messages.c.id, messages.c.created_at, messages.c.type, messages.c.text)


def _tickets_for(viewer_is_agent: bool) -> Select[Any]:
    """Agents see every ticket, with its author's email; customers their own."""
    if viewer_is_agent:
        return select(*_TICKET_COLUMNS, users.c.email.label("author")).join(
            users, users.c.id == tickets.c.author_id
        )
    return select(*_TICKET_COLUMNS).where(tickets.c.author_id == bindparam("viewer_id"))


def _visible(query: Select[Any], viewer_is_agent: bool) -> Select[Any]:
    return query if viewer_is_agent else query.where(tickets.c.author_id == bindparam("viewer_id"))


_EARLIEST = datetime(1, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 12, 31, tzinfo=UTC)
SORTS: dict[str, Sort] = {
    name: Sort(
        name=name,
        id=tickets.c.id,
        key=tickets.c[name.lstrip("-")],
        field=name.lstrip("-"),
        descending=name.startswith("-"),
        start=(_LATEST, MAX_ID) if name.startswith("-") else (_EARLIEST, 0),
        from_json=timestamp_from_json,
    )
    for name in ("created_at", "-created_at", "updated_at", "-updated_at")
}
MESSAGES_IN_ORDER = Sort(name="id", id=messages.c.id, start=(None, 0))

FilterShape = tuple[int, bool, bool, bool, bool, bool]


@dataclass(frozen=True)
class TicketFilter:
    statuses: tuple[rules.Status, ...] = ()
    author_email: str | None = None
    author_id: int | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None

    def __post_init__(self) -> None:
        # Each status once: the statement depends on how many there are (a bounded number).
        object.__setattr__(self, "statuses", tuple(dict.fromkeys(self.statuses)))

    def shape(self) -> FilterShape:
        """Which filters are set: the statement depends on this, the parameters on the rest."""
        return (
            len(self.statuses),
            self.author_email is not None,
            self.author_id is not None,
            self.created_after is not None,
            self.created_before is not None,
            self.updated_after is not None,
        )

    def parameters(self) -> dict[str, Any]:
        params: dict[str, Any] = {f"status_{i}": status for i, status in enumerate(self.statuses)}
        if self.author_email is not None:
            params["author_email"] = normalize_email(self.author_email)
        params.update(
            author_id=self.author_id,
            created_after=self.created_after,
            created_before=self.created_before,
            updated_after=self.updated_after,
        )
        return params


def _filtered(query: Select[Any], shape: FilterShape) -> Select[Any]:
    statuses, by_email, by_id, created_after, created_before, updated_after = shape
    if statuses:
        query = query.where(
            tickets.c.status.in_(
                [bindparam(f"status_{i}", type_=tickets.c.status.type) for i in range(statuses)]
            )
        )
    if by_email:
        author = select(users.c.id).where(
            users.c.email == bindparam("author_email", type_=users.c.email.type)
        )
        query = query.where(tickets.c.author_id == author.scalar_subquery())
    if by_id:
        query = query.where(tickets.c.author_id == bindparam("author_id", type_=tickets.c.id.type))
    if created_after:
        query = query.where(tickets.c.created_at > bindparam("created_after", type_=UTCDateTime))
    if created_before:
        query = query.where(tickets.c.created_at < bindparam("created_before", type_=UTCDateTime))
    if updated_after:
        query = query.where(tickets.c.updated_at > bindparam("updated_after", type_=UTCDateTime))
    return query


@lru_cache(maxsize=512)
def ticket_page_statement(viewer_is_agent: bool, shape: FilterShape, sort: str) -> Statement:
    """Built once per viewer kind, set of filters and sort order (a bounded number of them)."""
    return Statement(paginate(_filtered(_tickets_for(viewer_is_agent), shape), SORTS[sort]))


def ticket_page_query(
    viewer: Viewer, page: PageRequest, filters: TicketFilter, sort: str
) -> tuple[Statement, dict[str, Any]]:
    """The statement of one page of tickets, and its parameters."""
    statement = ticket_page_statement(viewer.is_agent, filters.shape(), sort)
    params = {"viewer_id": viewer.id, **filters.parameters(), **page_parameters(SORTS[sort], page)}
    return statement, params


async def ticket_page(
    db: Db, viewer: Viewer, page: PageRequest, filters: TicketFilter, sort: str
) -> Page[TicketRow]:
    statement, params = ticket_page_query(viewer, page, filters, sort)
    rows = [TicketRow(*row) for row in await db.all(statement, params)]
    return Page.of(rows, SORTS[sort], page)


@lru_cache(maxsize=128)
def _ticket_count(viewer_is_agent: bool, shape: FilterShape) -> Statement:
    query = _visible(select(func.count()).select_from(tickets), viewer_is_agent)
    return Statement(_filtered(query, shape))


async def count_tickets(db: Db, viewer: Viewer, filters: TicketFilter) -> int:
    statement = _ticket_count(viewer.is_agent, filters.shape())
    return int(await db.scalar(statement, {"viewer_id": viewer.id, **filters.parameters()}))


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
        _visible(
            select(tickets.c.author_id, tickets.c.status).where(
                tickets.c.id == bindparam("ticket_id")
            ),
            is_agent,
        ).with_for_update()
    )
    for is_agent in (False, True)
}


async def lock_ticket(db: Db, viewer: Viewer, ticket_id: int) -> LockedTicket | None:
    """The ticket's author and status, row-locked until the request's transaction ends."""
    row = await db.first(_LOCK[viewer.is_agent], {"ticket_id": ticket_id, "viewer_id": viewer.id})
    return LockedTicket(*row) if row is not None else None


_HAS_RESPONSE = Statement(
    select(
        exists().where(
            messages.c.ticket_id == bindparam("ticket_id"),
            messages.c.type == rules.message_type(is_agent=True),
        )
    )
)


async def has_response(db: Db, ticket_id: int) -> bool:
    return bool(await db.scalar(_HAS_RESPONSE, {"ticket_id": ticket_id}))


_SET_STATUS = Statement(
    update(tickets)
    .where(tickets.c.id == bindparam("ticket_id"))
    .values(status=bindparam("new_status"), updated_at=bindparam("now"))
)


async def set_status(db: Db, ticket_id: int, status: rules.Status, now: datetime) -> None:
    await db.execute(_SET_STATUS, {"ticket_id": ticket_id, "new_status": status, "now": now})


def _quoted(values: frozenset[str]) -> str:
    return ", ".join(f"'{value}'" for value in sorted(values))  # our own constants, never input


_CREATE_TICKET_POSTGRES = Statement(
    None,
    postgres=text(
        f"""
        WITH ticket AS (
            INSERT INTO tickets (author_id, topic, status, created_at, updated_at)
            VALUES (:author_id, :topic, '{rules.INITIAL_STATUS}', :now, :now)
            RETURNING id
        ), message AS (
            INSERT INTO messages (ticket_id, author_id, type, text, created_at)
            SELECT id, CAST(:author_id AS BIGINT), '{rules.message_type(is_agent=False)}',
                   CAST(:text AS TEXT), CAST(:now AS TIMESTAMPTZ)
            FROM ticket
        ), author AS (
            UPDATE users SET tickets_count = tickets_count + 1 WHERE id = :author_id
        )
        SELECT id FROM ticket
        """  # noqa: S608 - only our own constants are formatted in
    ),
    atomic=True,
)
_INSERT_TICKET = Statement(
    insert(tickets)
    .values(
        author_id=bindparam("author_id"),
        topic=bindparam("topic"),
        status=rules.INITIAL_STATUS,
        created_at=bindparam("now"),
        updated_at=bindparam("now"),
    )
    .returning(tickets.c.id)
)
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
_COUNT_AUTHORED = Statement(
    update(users)
    .where(users.c.id == bindparam("author_id"))
    .values(tickets_count=users.c.tickets_count + 1)
)


async def create_ticket(db: Db, *, author_id: int, topic: str, text: str, now: datetime) -> int:
    """The ticket, its first message (a request) and the author's ticket count, together."""
    params = {"author_id": author_id, "topic": topic, "text": text, "now": now}
    if db.dialect == "postgresql":
        return int(await db.scalar(_CREATE_TICKET_POSTGRES, params))
    ticket_id = int(await db.scalar(_INSERT_TICKET, params))
    message = {**params, "ticket_id": ticket_id, "type": rules.message_type(is_agent=False)}
    await db.execute(_INSERT_MESSAGE, message)
    await db.execute(_COUNT_AUTHORED, params)
    return ticket_id


def _post_message_postgres(viewer_is_agent: bool) -> Statement:
    """Lock, rule check, insert, `updated_at` and a customer's reopening, in one statement.

    The ticket row comes back with the message, or alone when the rules kept the message
    out (`rules.CLOSED_TO_MESSAGES`), so the service can say why.
    """
    scope = "" if viewer_is_agent else "AND author_id = :viewer_id"
    message_type = rules.message_type(is_agent=viewer_is_agent)
    new_status = (
        "status"
        if viewer_is_agent
        else f"CASE WHEN status IN ({_quoted(rules.REOPENED_BY_CUSTOMER)}) "
        f"THEN '{rules.INITIAL_STATUS}' ELSE status END"
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
                FROM ticket WHERE status NOT IN ({_quoted(rules.CLOSED_TO_MESSAGES)})
                RETURNING id, created_at, type, text
            ), touched AS (
                UPDATE tickets SET status = {new_status}, updated_at = CAST(:now AS TIMESTAMPTZ)
                WHERE id = (SELECT id FROM ticket) AND EXISTS (SELECT FROM message)
            )
            SELECT ticket.status, message.id, message.created_at, message.type, message.text
            FROM ticket LEFT JOIN message ON true
            """  # noqa: S608 - only our own constants are formatted in
        ),
        atomic=True,
    )


_POST_MESSAGE_POSTGRES = {is_agent: _post_message_postgres(is_agent) for is_agent in (False, True)}


class PostedMessage(NamedTuple):
    """The ticket's status before the message, and the message, if the rules let it in."""

    status: rules.Status
    message: MessageRow | None


async def post_message(
    db: Db, viewer: Viewer, ticket_id: int, text: str, now: datetime
) -> PostedMessage | None:
    """The message on the ticket, with the ticket's `updated_at` and status; None: no ticket."""
    params = {"ticket_id": ticket_id, "viewer_id": viewer.id, "text": text, "now": now}
    if db.dialect == "postgresql":
        row = await db.first(_POST_MESSAGE_POSTGRES[viewer.is_agent], params)
        if row is None:
            return None
        status, *message = row
        return PostedMessage(status, MessageRow(*message) if message[0] is not None else None)
    ticket = await lock_ticket(db, viewer, ticket_id)
    if ticket is None:
        return None
    if ticket.status in rules.CLOSED_TO_MESSAGES:
        return PostedMessage(ticket.status, None)
    values = {
        **params,
        "author_id": viewer.id,
        "type": rules.message_type(is_agent=viewer.is_agent),
    }
    inserted = await db.first(_INSERT_MESSAGE, values)
    assert inserted is not None
    new_status = rules.status_after_message(ticket.status, is_agent=viewer.is_agent)
    await set_status(db, ticket_id, new_status, now)
    return PostedMessage(ticket.status, MessageRow(*inserted))


def _message_page(viewer_is_agent: bool) -> Statement:
    """The ticket, if the viewer may see it, joined with one page of its messages.

    One statement for both: a ticket the viewer may not see gives no row at all; a visible
    one with no messages past the cursor gives one row of NULLs.
    """
    page = messages.c.ticket_id == tickets.c.id, MESSAGES_IN_ORDER.after()
    query = (
        select(*_MESSAGE_COLUMNS)
        .select_from(tickets.outerjoin(messages, and_(*page)))
        .where(tickets.c.id == bindparam("ticket_id"))
        .order_by(*MESSAGES_IN_ORDER.order_by())
        .limit(bindparam("limit", type_=Integer))
    )
    return Statement(_visible(query, viewer_is_agent))


_MESSAGE_PAGE = {is_agent: _message_page(is_agent) for is_agent in (False, True)}


async def message_page(
    db: Db, viewer: Viewer, ticket_id: int, page: PageRequest
) -> Page[MessageRow] | None:
    """One page of a ticket's messages, oldest first; None if the viewer may not see it."""
    params = {
        "ticket_id": ticket_id,
        "viewer_id": viewer.id,
        **page_parameters(MESSAGES_IN_ORDER, page),
    }
    rows = await db.all(_MESSAGE_PAGE[viewer.is_agent], params)
    if not rows:
        return None
    found = [MessageRow(*row) for row in rows if row[0] is not None]
    return Page.of(found, MESSAGES_IN_ORDER, page)


_COUNT_MESSAGES = Statement(
    select(func.count()).where(
        messages.c.ticket_id == bindparam("ticket_id", type_=tickets.c.id.type)
    )
)


async def count_messages(db: Db, ticket_id: int) -> int:
    return int(await db.scalar(_COUNT_MESSAGES, {"ticket_id": ticket_id}))
