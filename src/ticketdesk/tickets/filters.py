"""Which tickets a list shows, and in what order: the filters, the sorts, the SLA checks.

A list's statement depends on which filters are set (`TicketFilter.shape`) and its sort;
it is built once for each (`tickets/repository.py` caches them) and takes the filters'
values as parameters. Filters and sorts by what only staff may know are refused to
customers by the service (`TicketFilter.for_agents_only`, `AGENT_SORTS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    case,
    exists,
    false,
    func,
    not_,
    or_,
    select,
)

from ticketdesk import sla
from ticketdesk.db import constants
from ticketdesk.models import UTCDateTime, messages, tags, ticket_tags, tickets, users
from ticketdesk.pagination import Sort, int_from_json, timestamp_from_json
from ticketdesk.schemas import MAX_ID, normalize_email
from ticketdesk.tickets import policy, search

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
            tickets.c.status != constants(sla.FIRST_RESPONSE_WAIVED)[0],
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
    tickets.c.status.in_(constants(*sorted(policy.OPEN_STATUSES))),
    or_(
        and_(tickets.c.first_response_at.is_(None), tickets.c.first_response_due_at < _NOW),
        and_(tickets.c.first_response_at.is_not(None), tickets.c.resolution_due_at < _NOW),
    ),
)
"""An open ticket whose next due time has passed: each half is read from its own index."""

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
    start=(len(policy.PRIORITIES), MAX_ID),
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
    policy.Waiting | None,
    int,
    int,
]

LAST_PUBLIC_TYPE = (
    select(messages.c.type)
    .where(messages.c.ticket_id == tickets.c.id, policy.CUSTOMER_READS)
    .order_by(messages.c.id.desc())
    .limit(1)
    .scalar_subquery()
)
"""The type of the ticket's last message its customer can read."""
_RESPONSE = constants(policy.message_type(is_agent=True))[0]
_ON_CUSTOMER = policy.WAITING_ON_CUSTOMER_STATUSES
WAITING: dict[policy.Waiting, ColumnElement[bool]] = {
    "customer": or_(
        tickets.c.status.in_(constants(*sorted(_ON_CUSTOMER))),
        and_(
            tickets.c.status.in_(constants(*sorted(policy.OPEN_STATUSES - _ON_CUSTOMER))),
            LAST_PUBLIC_TYPE == _RESPONSE,
        ),
    ),
    "us": and_(
        tickets.c.status.in_(constants(*sorted(policy.OPEN_STATUSES - _ON_CUSTOMER))),
        func.coalesce(LAST_PUBLIC_TYPE, "") != _RESPONSE,
    ),
}
"""`policy.waiting_on` in SQL: an open ticket waits on whoever did not write last."""


@dataclass(frozen=True)
class TicketFilter:
    statuses: tuple[policy.Status, ...] = ()
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
    waiting: policy.Waiting | None = None  # open, and waiting on the customer or on us
    tags: tuple[str, ...] = ()  # all of them (normalized names)
    not_tags: tuple[str, ...] = ()  # none of them

    def __post_init__(self) -> None:
        # Each value once: the statement depends on how many there are (a bounded number).
        object.__setattr__(self, "statuses", tuple(dict.fromkeys(self.statuses)))
        object.__setattr__(self, "priorities", tuple(dict.fromkeys(self.priorities)))
        object.__setattr__(self, "tags", tuple(dict.fromkeys(self.tags)))
        object.__setattr__(self, "not_tags", tuple(dict.fromkeys(self.not_tags)))

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
            or bool(self.tags)
            or bool(self.not_tags)
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
            len(self.tags),
            len(self.not_tags),
        )

    def parameters(self, now: datetime) -> dict[str, Any]:
        params: dict[str, Any] = {f"status_{i}": status for i, status in enumerate(self.statuses)}
        params.update({f"priority_{i}": rank for i, rank in enumerate(self.priorities)})
        params.update({f"tag_{i}": name for i, name in enumerate(self.tags)})
        params.update({f"not_tag_{i}": name for i, name in enumerate(self.not_tags)})
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


def filtered(
    query: Select[Any], shape: FilterShape, viewer_is_agent: bool, dialect: str
) -> Select[Any]:
    (statuses, by_email, by_id, created_after, created_before, updated_after) = shape[:6]
    by_assignee, unassigned, priorities, breached, searched, overdue, waiting = shape[6:13]
    tagged, not_tagged = shape[13:]
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
    for i in range(tagged):
        query = query.where(_holds_tag(f"tag_{i}"))
    for i in range(not_tagged):
        query = query.where(not_(_holds_tag(f"not_tag_{i}")))
    return query


def _holds_tag(parameter: str) -> ColumnElement[bool]:
    """The ticket holds the tag named by the parameter (a tag's tickets are indexed)."""
    tag_id = select(tags.c.id).where(tags.c.name == bindparam(parameter, type_=tags.c.name.type))
    return exists().where(
        ticket_tags.c.ticket_id == tickets.c.id, ticket_tags.c.tag_id == tag_id.scalar_subquery()
    )
