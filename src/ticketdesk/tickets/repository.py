"""All SQL of tickets and messages, and the one place that limits a customer to their own.

Every statement that reads tickets takes the viewer: a customer's is limited to rows they
wrote (parameter `viewer_id`) and never reads a note or a staff-only column; an agent's is
not, and also reads each ticket's author, assignee, priority and service-level times.
On PostgreSQL a new ticket and a new message are each one statement, a unit of work by
itself, events included; SQLite runs the same steps as several statements in one
transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Integer,
    LargeBinary,
    Select,
    and_,
    bindparam,
    case,
    cast,
    exists,
    false,
    func,
    insert,
    not_,
    or_,
    select,
    text,
    update,
)

from ticketdesk.auth.principal import Viewer
from ticketdesk.db import Db, Statement, constants
from ticketdesk.events import repository as events
from ticketdesk.events.repository import GUARD, INSERT_COLUMNS, Change
from ticketdesk.models import UTCDateTime, messages, tickets, users
from ticketdesk.pagination import (
    Page,
    PageRequest,
    Sort,
    encode_cursor,
    int_from_json,
    page_parameters,
    paginate,
    timestamp_from_json,
)
from ticketdesk.schemas import MAX_ID, normalize_email
from ticketdesk.tickets import rules, search, sla


class TicketRow(NamedTuple):
    """A ticket as its viewer may see it: the fields after `rated_at` are read for agents only."""

    id: int
    created_at: datetime
    updated_at: datetime
    topic: str
    status: rules.Status
    rating_score: int | None = None
    rating_comment: str | None = None
    rated_at: datetime | None = None
    author: str | None = None  # the author's email
    assignee_id: int | None = None
    priority: int = rules.DEFAULT_PRIORITY
    first_response_due_at: datetime | None = None
    resolution_due_at: datetime | None = None
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    due_at: datetime | None = None  # the next due time (the `due` order's key)
    author_name: str | None = None  # the author's username


class MessageRow(NamedTuple):
    id: int
    created_at: datetime
    type: rules.MessageType
    text: str
    attachment_count: int = 0
    author_id: int | None = None


class LockedTicket(NamedTuple):
    author_id: int
    status: rules.Status
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
_MESSAGE_COLUMNS = (
    messages.c.id,
    messages.c.created_at,
    messages.c.type,
    messages.c.text,
    messages.c.attachment_count,
    messages.c.author_id,
)
_FAR = bindparam("far_future", sla.FAR_FUTURE, type_=UTCDateTime)
_NOTHING_DUE = tuple(sorted(sla.NOTHING_DUE))

DUE: ColumnElement[datetime] = case(
    (tickets.c.status.in_(constants(*_NOTHING_DUE)), _FAR),
    (tickets.c.first_response_at.is_(None), func.coalesce(tickets.c.first_response_due_at, _FAR)),
    else_=func.coalesce(tickets.c.resolution_due_at, _FAR),
)
"""The next due time (`sla.next_due`), far in the future when nothing is due."""

_NOW = bindparam("now", type_=UTCDateTime)
BREACHED: ColumnElement[bool] = func.coalesce(
    or_(
        and_(
            tickets.c.first_response_at.is_(None),
            tickets.c.status != constants("canceled")[0],
            tickets.c.first_response_due_at < _NOW,
        ),
        tickets.c.first_response_at > tickets.c.first_response_due_at,
        and_(
            tickets.c.status.not_in(constants(*_NOTHING_DUE)),
            tickets.c.resolution_due_at < _NOW,
        ),
        tickets.c.resolved_at > tickets.c.resolution_due_at,
    ),
    false(),
)
"""`sla.breached`, in SQL: a due time passed unmet, or met late."""

OVERDUE: ColumnElement[bool] = and_(
    tickets.c.status.in_(constants(*sorted(rules.OPEN_STATUSES))),
    or_(
        and_(tickets.c.first_response_at.is_(None), tickets.c.first_response_due_at < _NOW),
        and_(tickets.c.first_response_at.is_not(None), tickets.c.resolution_due_at < _NOW),
    ),
)
"""An open ticket whose next due time has passed: each half is read from its own index."""

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
)


def _tickets_for(viewer_is_agent: bool) -> Select[Any]:
    """Agents see every ticket, with its staff-only fields; customers their own, without."""
    if viewer_is_agent:
        return select(*_AGENT_COLUMNS).join(users, users.c.id == tickets.c.author_id)
    return select(*_PUBLIC_COLUMNS).where(tickets.c.author_id == bindparam("viewer_id"))


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
SORTS["priority"] = Sort(
    name="priority",
    id=tickets.c.id,
    key=tickets.c.priority,
    field="priority",
    start=(-1, 0),
    from_json=int_from_json,
)
SORTS["-priority"] = Sort(
    name="-priority",
    id=tickets.c.id,
    key=tickets.c.priority,
    field="priority",
    descending=True,
    start=(len(rules.PRIORITIES), MAX_ID),
    from_json=int_from_json,
)
SORTS["due"] = Sort(
    name="due",
    id=tickets.c.id,
    key=DUE,
    field="due_at",
    start=(_EARLIEST, 0),
    from_json=timestamp_from_json,
)
AGENT_SORTS = frozenset({"priority", "-priority", "due"})
"""Orders that would tell a customer what only staff may know."""
MESSAGES_IN_ORDER = Sort(name="id", id=messages.c.id, start=(None, 0))

FilterShape = tuple[
    int,
    bool,
    bool,
    bool,
    bool,
    bool,
    bool,
    bool,
    int,
    bool | None,
    bool,
    bool,
    rules.Waiting | None,
]

LAST_PUBLIC_TYPE = (
    select(messages.c.type)
    .where(messages.c.ticket_id == tickets.c.id, messages.c.type != constants("note")[0])
    .order_by(messages.c.id.desc())
    .limit(1)
    .scalar_subquery()
)
"""The type of the ticket's last message its customer can read."""
_RESPONSE = constants(rules.message_type(is_agent=True))[0]
_ON_CUSTOMER = rules.WAITING_ON_CUSTOMER_STATUSES
WAITING: dict[rules.Waiting, ColumnElement[bool]] = {
    "customer": or_(
        tickets.c.status.in_(constants(*sorted(_ON_CUSTOMER))),
        and_(
            tickets.c.status.in_(constants(*sorted(rules.OPEN_STATUSES - _ON_CUSTOMER))),
            LAST_PUBLIC_TYPE == _RESPONSE,
        ),
    ),
    "us": and_(
        tickets.c.status.in_(constants(*sorted(rules.OPEN_STATUSES - _ON_CUSTOMER))),
        func.coalesce(LAST_PUBLIC_TYPE, "") != _RESPONSE,
    ),
}
"""`rules.waiting_on` in SQL: an open ticket waits on whoever did not write last."""


@dataclass(frozen=True)
class TicketFilter:
    statuses: tuple[rules.Status, ...] = ()
    author_email: str | None = None
    author_id: int | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    assignee_id: int | None = None
    unassigned: bool = False
    priorities: tuple[int, ...] = ()
    breached: bool | None = None
    search: str | None = None  # words, or "phrases in quotes", all of which must match
    overdue: bool = False  # the next due time has passed (the console's breaching queue)
    waiting: rules.Waiting | None = None  # open, and waiting on the customer or on us

    def __post_init__(self) -> None:
        # Each value once: the statement depends on how many there are (a bounded number).
        object.__setattr__(self, "statuses", tuple(dict.fromkeys(self.statuses)))
        object.__setattr__(self, "priorities", tuple(dict.fromkeys(self.priorities)))

    @property
    def for_agents_only(self) -> bool:
        """Filters by what only staff may know (the author, the assignee, priority, SLA)."""
        return (
            self.author_email is not None
            or self.author_id is not None
            or self.assignee_id is not None
            or self.unassigned
            or bool(self.priorities)
            or self.breached is not None
            or self.overdue
            or self.waiting is not None
        )

    def shape(self) -> FilterShape:
        """Which filters are set: the statement depends on this, the parameters on the rest."""
        return (
            len(self.statuses),
            self.author_email is not None,
            self.author_id is not None,
            self.created_after is not None,
            self.created_before is not None,
            self.updated_after is not None,
            self.assignee_id is not None,
            self.unassigned,
            len(self.priorities),
            self.breached,
            self.search is not None,
            self.overdue,
            self.waiting,
        )

    def parameters(self, now: datetime) -> dict[str, Any]:
        params: dict[str, Any] = {f"status_{i}": status for i, status in enumerate(self.statuses)}
        params.update({f"priority_{i}": rank for i, rank in enumerate(self.priorities)})
        if self.author_email is not None:
            params["author_email"] = normalize_email(self.author_email)
        params.update(
            author_id=self.author_id,
            created_after=self.created_after,
            created_before=self.created_before,
            updated_after=self.updated_after,
            assignee_id=self.assignee_id,
            now=now,
        )
        if self.search is not None:
            params.update(search=self.search, fts_search=search.fts5_query(self.search))
        return params


def _filtered(
    query: Select[Any], shape: FilterShape, viewer_is_agent: bool, dialect: str
) -> Select[Any]:
    (statuses, by_email, by_id, created_after, created_before, updated_after) = shape[:6]
    by_assignee, unassigned, priorities, breached, searched, overdue, waiting = shape[6:]
    if searched:
        query = query.where(search.matches(viewer_is_agent, dialect))
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
    if by_assignee:
        query = query.where(
            tickets.c.assignee_id == bindparam("assignee_id", type_=tickets.c.id.type)
        )
    if unassigned:
        query = query.where(tickets.c.assignee_id.is_(None))
    if priorities:
        query = query.where(
            tickets.c.priority.in_(
                [
                    bindparam(f"priority_{i}", type_=tickets.c.priority.type)
                    for i in range(priorities)
                ]
            )
        )
    if breached is not None:
        query = query.where(BREACHED if breached else not_(BREACHED))
    if overdue:
        query = query.where(OVERDUE)
    if waiting is not None:
        query = query.where(WAITING[waiting])
    return query


@lru_cache(maxsize=512)
def ticket_page_statement(viewer_is_agent: bool, shape: FilterShape, sort: str) -> Statement:
    """Built once per viewer kind, set of filters and sort order (a bounded number of them)."""
    query = _tickets_for(viewer_is_agent)
    return Statement(
        paginate(_filtered(query, shape, viewer_is_agent, "sqlite"), SORTS[sort]),
        postgres=paginate(_filtered(query, shape, viewer_is_agent, "postgresql"), SORTS[sort]),
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
    query = _visible(select(func.count()).select_from(tickets), viewer_is_agent)
    return Statement(
        _filtered(query, shape, viewer_is_agent, "sqlite"),
        postgres=_filtered(query, shape, viewer_is_agent, "postgresql"),
    )


@lru_cache(maxsize=128)
def _capped_count(viewer_is_agent: bool, shape: FilterShape) -> Statement:
    def build(dialect: str) -> Select[Any]:
        query = _visible(select(tickets.c.id).select_from(tickets), viewer_is_agent)
        found = _filtered(query, shape, viewer_is_agent, dialect).limit(
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
        _visible(
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
            messages.c.type == rules.message_type(is_agent=True),
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


def _quoted(values: frozenset[str] | tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in sorted(values))  # our own constants, never input


_CREATE_TICKET_POSTGRES = Statement(
    None,
    postgres=text(
        f"""
        WITH ticket AS (
            INSERT INTO tickets (author_id, topic, status, priority, created_at, updated_at,
                                 first_response_due_at, resolution_due_at, search_public)
            VALUES (:author_id, :topic, '{rules.INITIAL_STATUS}', {rules.DEFAULT_PRIORITY},
                    :now, :now, :first_response_due_at, :resolution_due_at,
                    to_tsvector('{search.CONFIG}', CAST(:topic AS VARCHAR))
                    || to_tsvector('{search.CONFIG}',
                                   left(CAST(:text AS TEXT), {search.INDEXED_CHARACTERS})))
            RETURNING id
        ), message AS (
            INSERT INTO messages (ticket_id, author_id, type, text, created_at)
            SELECT id, CAST(:author_id AS BIGINT), '{rules.message_type(is_agent=False)}',
                   CAST(:text AS TEXT), CAST(:now AS TIMESTAMPTZ)
            FROM ticket
            RETURNING id
        ), author AS (
            UPDATE users SET tickets_count = tickets_count + 1 WHERE id = :author_id
        ), event AS (
            {INSERT_COLUMNS}
            SELECT ticket.id, CAST(:now AS TIMESTAMPTZ), CAST(:author_id AS BIGINT), 'created',
                   NULL, json_build_object('topic', CAST(:topic AS TEXT),
                                           'status', '{rules.INITIAL_STATUS}',
                                           'message_id', message.id)::text
            FROM ticket, message, {GUARD}
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
        priority=rules.DEFAULT_PRIORITY,
        created_at=bindparam("now"),
        updated_at=bindparam("now"),
        first_response_due_at=bindparam("first_response_due_at"),
        resolution_due_at=bindparam("resolution_due_at"),
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


async def create_ticket(
    db: Db, *, author_id: int, topic: str, text: str, now: datetime, due: sla.DueTimes
) -> int:
    """The ticket, its first message (a request), the author's ticket count and the event."""
    params = {"author_id": author_id, "topic": topic, "text": text, "now": now, **due._asdict()}
    if db.dialect == "postgresql":
        return int(await db.scalar(_CREATE_TICKET_POSTGRES, params))
    ticket_id = int(await db.scalar(_INSERT_TICKET, params))
    message = {**params, "ticket_id": ticket_id, "type": rules.message_type(is_agent=False)}
    message_id = (await db.first(_INSERT_MESSAGE, message) or (None,))[0]
    await db.execute(_COUNT_AUTHORED, params)
    created = {"topic": topic, "status": rules.INITIAL_STATUS, "message_id": message_id}
    await events.record(
        db,
        ticket_id=ticket_id,
        actor_id=author_id,
        now=now,
        changes=[Change("created", None, created)],
    )
    return ticket_id


def _post_message_postgres(message_type: rules.MessageType) -> Statement:
    """Lock, rule check, insert, the ticket's update and the events, in one statement.

    The ticket row comes back with the message, or alone when the rules kept the message
    out (`rules.CLOSED_TO_MESSAGES`), so the service can say why. A customer's request
    reopens a resolved ticket; an agent's response may be the ticket's first; a note
    changes nothing a customer could see, not even `updated_at`.
    """
    is_agent = message_type != rules.message_type(is_agent=False)
    scope = "" if is_agent else "AND author_id = :viewer_id"
    text_added = "CAST(:text AS TEXT)"
    if message_type == "note":
        changes = search.extend("search_notes", text_added)
        kinds = "('note', NULL, json_build_object('message_id', message.id)::text)"
        which = "true"
    else:
        if is_agent:
            changes = "first_response_at = COALESCE(first_response_at, CAST(:now AS TIMESTAMPTZ))"
        else:
            changes = (
                f"status = CASE WHEN status IN ({_quoted(rules.REOPENED_BY_CUSTOMER)}) "
                f"THEN '{rules.INITIAL_STATUS}' ELSE status END"
            )
        changes += ", updated_at = CAST(:now AS TIMESTAMPTZ), "
        changes += search.extend("search_public", text_added)
        kinds = f"""
            ('message', NULL,
             json_build_object('message_id', message.id, 'type', message.type)::text),
            ('status', json_build_object('status', ticket.status)::text,
             json_build_object('status', '{rules.INITIAL_STATUS}')::text)"""
        reopens = (
            "false" if is_agent else f"ticket.status IN ({_quoted(rules.REOPENED_BY_CUSTOMER)})"
        )
        which = f"e.kind = 'message' OR {reopens}"
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
                RETURNING id, created_at, type, text, attachment_count, author_id
            ), touched AS (
                UPDATE tickets SET {changes}
                WHERE id = (SELECT id FROM ticket) AND EXISTS (SELECT FROM message)
            ), event AS (
                {INSERT_COLUMNS}
                SELECT ticket.id, CAST(:now AS TIMESTAMPTZ), CAST(:viewer_id AS BIGINT),
                       e.kind, e.before, e.after
                FROM ticket, message, {GUARD}, LATERAL (VALUES {kinds}) AS e(kind, before, after)
                WHERE {which}
            )
            SELECT ticket.status, message.id, message.created_at, message.type, message.text,
                   message.attachment_count, message.author_id
            FROM ticket LEFT JOIN message ON true
            """  # noqa: S608 - only our own constants are formatted in
        ),
        atomic=True,
    )


_POST_MESSAGE_POSTGRES = {kind: _post_message_postgres(kind) for kind in rules.POSTED_TYPES}
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

    status: rules.Status
    message: MessageRow | None


async def post_message(
    db: Db, viewer: Viewer, ticket_id: int, text: str, now: datetime, *, internal: bool = False
) -> PostedMessage | None:
    """The message on the ticket, the ticket's update and the events; None: no such ticket."""
    message_type = rules.message_type(is_agent=viewer.is_agent, internal=internal)
    params = {"ticket_id": ticket_id, "viewer_id": viewer.id, "text": text, "now": now}
    if db.dialect == "postgresql":
        row = await db.first(_POST_MESSAGE_POSTGRES[message_type], params)
        if row is None:
            return None
        status, *message = row
        return PostedMessage(status, MessageRow(*message) if message[0] is not None else None)
    ticket = await lock_ticket(db, viewer, ticket_id)
    if ticket is None:
        return None
    if ticket.status in rules.CLOSED_TO_MESSAGES:
        return PostedMessage(ticket.status, None)
    values = {**params, "author_id": viewer.id, "type": message_type}
    inserted = await db.first(_INSERT_MESSAGE, values)
    assert inserted is not None
    posted = MessageRow(*inserted)
    changes: list[Change] = []
    if message_type == "note":
        changes.append(Change("note", None, {"message_id": posted.id}))
    else:
        changes.append(Change("message", None, {"message_id": posted.id, "type": posted.type}))
        if viewer.is_agent:
            await db.execute(_ANSWERED, params)
        else:
            new_status = rules.status_after_message(ticket.status, is_agent=False)
            await db.execute(_SET_STATUS, {**params, "new_status": new_status})
            if new_status != ticket.status:
                changes.append(Change("status", {"status": ticket.status}, {"status": new_status}))
    await events.record(db, ticket_id=ticket_id, actor_id=viewer.id, now=now, changes=changes)
    return PostedMessage(ticket.status, posted)


_OPEN = tuple(sorted(rules.OPEN_STATUSES))
_UNASSIGN_POSTGRES = Statement(
    None,
    postgres=text(
        f"""
        WITH gone AS (
            UPDATE tickets SET assignee_id = NULL
            WHERE assignee_id = :agent_id AND status IN ({_quoted(_OPEN)})
            RETURNING id
        )
        {INSERT_COLUMNS}
        SELECT gone.id, CAST(:now AS TIMESTAMPTZ), CAST(:actor_id AS BIGINT), 'assignee',
               json_build_object('assignee_id', CAST(:agent_id AS BIGINT))::text,
               json_build_object('assignee_id', NULL)::text
        FROM gone, {GUARD}
        """  # noqa: S608 - only our own constants are formatted in
    ),
)
_ASSIGNED_OPEN = Statement(
    select(tickets.c.id)
    .where(tickets.c.assignee_id == bindparam("agent_id"), tickets.c.status.in_(constants(*_OPEN)))
    .order_by(tickets.c.id)
    .with_for_update()
)
_UNASSIGN = Statement(
    update(tickets)
    .where(tickets.c.assignee_id == bindparam("agent_id"), tickets.c.status.in_(constants(*_OPEN)))
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
    for ticket_id in ticket_ids:
        await events.record(
            db,
            ticket_id=ticket_id,
            actor_id=actor_id,
            now=now,
            changes=[Change("assignee", {"assignee_id": agent_id}, {"assignee_id": None})],
        )


_ACTIVE_AGENT = Statement(
    select(users.c.id).where(
        users.c.id == bindparam("user_id"),
        users.c.is_active,
        or_(users.c.is_staff, users.c.is_superuser),
    )
)


async def is_active_agent(db: Db, user_id: int) -> bool:
    return await db.first(_ACTIVE_AGENT, {"user_id": user_id}) is not None


class RatingTarget(NamedTuple):
    status: rules.Status
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
        page.append(messages.c.type != constants("note")[0])
    size = (
        func.octet_length(messages.c.text)
        if dialect == "postgresql"
        else func.length(cast(messages.c.text, LargeBinary))
    )
    rows = _visible(
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
    False: Statement(
        select(func.count()).where(_ON_TICKET, messages.c.type != constants("note")[0])
    ),
}


async def count_messages(db: Db, viewer: Viewer, ticket_id: int) -> int:
    """How many of the ticket's messages the viewer may read (notes for agents only)."""
    return int(await db.scalar(_COUNT_MESSAGES[viewer.is_agent], {"ticket_id": ticket_id}))


_LAST_PUBLIC_TYPES = {
    size: Statement(
        select(tickets.c.id, LAST_PUBLIC_TYPE).where(
            tickets.c.id.in_([bindparam(f"id_{i}", type_=tickets.c.id.type) for i in range(size)])
        )
    )
    for size in range(1, 101)
}


async def last_public_types(db: Db, ticket_ids: list[int]) -> dict[int, rules.MessageType]:
    """For each ticket, the type of its last message its customer can read (up to 100)."""
    found: dict[int, rules.MessageType] = {}
    unique = list(dict.fromkeys(ticket_ids))
    for start in range(0, len(unique), 100):
        chunk = unique[start : start + 100]
        params = {f"id_{i}": ticket_id for i, ticket_id in enumerate(chunk)}
        for ticket_id, kind in await db.all(_LAST_PUBLIC_TYPES[len(chunk)], params):
            if kind is not None:
                found[ticket_id] = kind
    return found


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
