"""Tickets and their messages. Every query is scoped to what the viewer may see."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Integer, Select, bindparam, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketdesk.auth.dependencies import AuthUser
from ticketdesk.db import Db, Prepared, Record
from ticketdesk.errors import Forbidden, NotFound
from ticketdesk.models import UTCDateTime, messages, tickets, users, utcnow
from ticketdesk.pagination import (
    PageRequest,
    Sort,
    next_cursor,
    page_parameters,
    paginate,
    timestamp_from_json,
)
from ticketdesk.schemas import MAX_ID, normalize_email
from ticketdesk.tickets import rules

_TICKET_COLUMNS = (
    tickets.c.id,
    tickets.c.created_at,
    tickets.c.updated_at,
    tickets.c.topic,
    tickets.c.status,
)
_MESSAGE_COLUMNS = (
    messages.c.id,
    messages.c.created_at,
    messages.c.type,
    messages.c.text,
)
_NO_TICKET = "no such ticket"


def _tickets_for_agents() -> Select[*tuple[Any, ...]]:
    """Staff see every ticket, with its author's email."""
    return select(*_TICKET_COLUMNS, users.c.email.label("author")).join(
        users, users.c.id == tickets.c.author_id
    )


def _tickets_for(viewer_is_agent: bool) -> Select[*tuple[Any, ...]]:
    return _tickets_for_agents() if viewer_is_agent else select(*_TICKET_COLUMNS)


def _visible(query: Select[*tuple[Any, ...]], viewer_is_agent: bool) -> Select[*tuple[Any, ...]]:
    """A customer sees only their own tickets (parameter `viewer_id`); staff see all."""
    if viewer_is_agent:
        return query
    return query.where(tickets.c.author_id == bindparam("viewer_id"))


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


def _filtered(
    query: Select[*tuple[Any, ...]], viewer_is_agent: bool, shape: FilterShape
) -> Select[*tuple[Any, ...]]:
    """The query limited to what the viewer may see, and to the filters set in `shape`."""
    statuses, by_email, by_id, created_after, created_before, updated_after = shape
    query = _visible(query, viewer_is_agent)
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


async def create_ticket(conn: AsyncConnection, *, author: AuthUser, topic: str, text: str) -> int:
    """The ticket, its first message (a request) and the author's ticket count, in one go."""
    now = utcnow()
    ticket_id: int = (
        await conn.execute(
            insert(tickets)
            .values(
                author_id=author.id,
                topic=topic,
                status="pending",
                created_at=now,
                updated_at=now,
            )
            .returning(tickets.c.id)
        )
    ).scalar_one()
    await conn.execute(
        insert(messages).values(
            ticket_id=ticket_id,
            author_id=author.id,
            type="request",
            text=text,
            created_at=now,
        )
    )
    await conn.execute(
        update(users).where(users.c.id == author.id).values(tickets_count=users.c.tickets_count + 1)
    )
    return ticket_id


async def list_tickets(
    db: Db,
    *,
    viewer: AuthUser,
    page: PageRequest,
    filters: TicketFilter = TicketFilter(),
    sort: str = "created_at",
) -> tuple[Sequence[Record], str | None]:
    """One page of the tickets the viewer may see, and the cursor of the next page."""
    statement, params = ticket_page_query(viewer, page, filters, sort)
    rows = await statement.all(db, params)
    return rows[: page.limit], next_cursor(rows, SORTS[sort], page)


def ticket_page_query(
    viewer: AuthUser, page: PageRequest, filters: TicketFilter, sort: str
) -> tuple[Prepared, dict[str, Any]]:
    """The statement of one page, and its parameters."""
    if not viewer.is_agent and (filters.author_email is not None or filters.author_id is not None):
        raise Forbidden("only staff filter tickets by author")
    statement = _ticket_page(viewer.is_agent, filters.shape(), sort)
    params = {"viewer_id": viewer.id, **filters.parameters(), **page_parameters(SORTS[sort], page)}
    return statement, params


@lru_cache(maxsize=1024)
def _ticket_page(viewer_is_agent: bool, shape: FilterShape, sort: str) -> Prepared:
    # Built once per combination of viewer kind, filters set and sort order.
    query = _filtered(_tickets_for(viewer_is_agent), viewer_is_agent, shape)
    return Prepared(paginate(query, SORTS[sort]))


async def count_tickets(db: Db, *, viewer: AuthUser, filters: TicketFilter = TicketFilter()) -> int:
    statement = _ticket_count(viewer.is_agent, filters.shape())
    return int(await statement.scalar(db, {"viewer_id": viewer.id, **filters.parameters()}))


@lru_cache(maxsize=256)
def _ticket_count(viewer_is_agent: bool, shape: FilterShape) -> Prepared:
    query = select(func.count()).select_from(tickets)
    return Prepared(_filtered(query, viewer_is_agent, shape))


def _one_ticket(viewer_is_agent: bool) -> Select[*tuple[Any, ...]]:
    query = _visible(_tickets_for(viewer_is_agent), viewer_is_agent)
    return query.where(tickets.c.id == bindparam("ticket_id"))


def _locked(viewer_is_agent: bool) -> Select[*tuple[Any, ...]]:
    query = select(tickets.c.author_id, tickets.c.status).where(
        tickets.c.id == bindparam("ticket_id")
    )
    return _visible(query, viewer_is_agent).with_for_update()


# The statements of every request that touches one ticket, built once per viewer kind.
_GET_TICKET = {is_agent: Prepared(_one_ticket(is_agent)) for is_agent in (False, True)}
_LOCK_TICKET = {is_agent: _locked(is_agent) for is_agent in (False, True)}
_HAS_RESPONSE = select(
    exists().where(messages.c.ticket_id == bindparam("ticket_id"), messages.c.type == "response")
)
_INSERT_MESSAGE = insert(messages).returning(*_MESSAGE_COLUMNS)
_TOUCH_TICKET = (
    update(tickets)
    .where(tickets.c.id == bindparam("ticket_id"))
    .values(status=bindparam("new_status"), updated_at=bindparam("now"))
)


async def get_ticket(db: Db, *, viewer: AuthUser, ticket_id: int) -> Record:
    params = {"ticket_id": ticket_id, "viewer_id": viewer.id}
    row = await _GET_TICKET[viewer.is_agent].one_or_none(db, params)
    if row is None:
        raise NotFound(_NO_TICKET)
    return row


async def _lock_ticket(conn: AsyncConnection, *, viewer: AuthUser, ticket_id: int) -> Record:
    """The ticket's author and status, row-locked until the transaction ends."""
    params = {"ticket_id": ticket_id, "viewer_id": viewer.id}
    row = (await conn.execute(_LOCK_TICKET[viewer.is_agent], params)).mappings().one_or_none()
    if row is None:
        raise NotFound(_NO_TICKET)
    return row


async def change_status(
    conn: AsyncConnection, *, viewer: AuthUser, ticket_id: int, status: rules.Status
) -> Record:
    ticket = await _lock_ticket(conn, viewer=viewer, ticket_id=ticket_id)
    has_response = (
        status == "resolved"
        and (await conn.execute(_HAS_RESPONSE, {"ticket_id": ticket_id})).scalar_one()
    )
    if rules.check_status_change(
        ticket["status"],
        status,
        is_author=ticket["author_id"] == viewer.id,
        is_agent=viewer.is_agent,
        has_response=has_response,
    ):
        params = {"ticket_id": ticket_id, "new_status": status, "now": utcnow()}
        await conn.execute(_TOUCH_TICKET, params)
    return await get_ticket(conn, viewer=viewer, ticket_id=ticket_id)


_MESSAGE_PAGE = Prepared(
    paginate(
        select(*_MESSAGE_COLUMNS).where(messages.c.ticket_id == bindparam("ticket_id")),
        MESSAGES_IN_ORDER,
    )
)


async def list_messages(
    db: Db, *, viewer: AuthUser, ticket_id: int, page: PageRequest
) -> tuple[Sequence[Record], str | None]:
    """One page of the ticket's messages, oldest first, and the cursor of the next page."""
    await get_ticket(db, viewer=viewer, ticket_id=ticket_id)
    params = {"ticket_id": ticket_id, **page_parameters(MESSAGES_IN_ORDER, page)}
    rows = await _MESSAGE_PAGE.all(db, params)
    return rows[: page.limit], next_cursor(rows, MESSAGES_IN_ORDER, page)


_COUNT_MESSAGES = Prepared(
    select(func.count()).where(messages.c.ticket_id == bindparam("ticket_id", type_=Integer))
)


async def count_messages(db: Db, *, ticket_id: int) -> int:
    return int(await _COUNT_MESSAGES.scalar(db, {"ticket_id": ticket_id}))


async def post_message(
    conn: AsyncConnection, *, viewer: AuthUser, ticket_id: int, text: str
) -> Record:
    ticket = await _lock_ticket(conn, viewer=viewer, ticket_id=ticket_id)
    rules.check_can_post(ticket["status"])
    now = utcnow()
    values = {
        "ticket_id": ticket_id,
        "author_id": viewer.id,
        "type": rules.message_type(is_agent=viewer.is_agent),
        "text": text,
        "created_at": now,
    }
    message = (await conn.execute(_INSERT_MESSAGE, values)).mappings().one()
    new_status = rules.status_after_message(ticket["status"], is_agent=viewer.is_agent)
    await conn.execute(
        _TOUCH_TICKET, {"ticket_id": ticket_id, "new_status": new_status, "now": now}
    )
    return message
