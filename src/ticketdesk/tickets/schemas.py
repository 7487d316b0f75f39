from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import AliasChoices, BaseModel, Field, StringConstraints, model_validator
from pydantic_core import to_json

from ticketdesk import sla
from ticketdesk.schemas import MessageText, NotBlank, RequestBody, Storable, UtcDatetime
from ticketdesk.tags import policy as tag_policy
from ticketdesk.tags.schemas import TagName
from ticketdesk.tickets import policy, search
from ticketdesk.tickets.policy import Priority, Status
from ticketdesk.tickets.repository import TicketRow


class TicketCreate(RequestBody):
    topic: Annotated[str, StringConstraints(min_length=1, max_length=20), Storable, NotBlank]
    text: Annotated[MessageText, Field(description="the ticket's first message")]


TicketSort = Literal[
    "created_at", "-created_at", "updated_at", "-updated_at", "priority", "-priority", "due"
]
Assignee = Annotated[str, StringConstraints(pattern=r"^(me|none|[1-9][0-9]{0,18})$")]


class TicketQuery(BaseModel):
    """Filters and order of GET /tickets."""

    sort: TicketSort = Field(
        default="created_at",
        description="a leading - for newest (or most urgent) first; `due`: the next due time "
        "first, tickets with nothing due last; priority and due are for staff only",
    )
    status: list[Status] = Field(default=[], description="repeat for several")
    author: Annotated[str, Storable] | None = Field(
        default=None, max_length=320, description="email; staff only"
    )
    created_after: UtcDatetime | None = None
    created_before: UtcDatetime | None = None
    updated_after: UtcDatetime | None = None
    assignee: Assignee | None = Field(
        default=None, description="`me`, `none` (unassigned) or a user id; staff only"
    )
    priority: list[Priority] = Field(default=[], description="repeat for several; staff only")
    breached: bool | None = Field(
        default=None, description="true: a service-level due time was missed; staff only"
    )
    q: Annotated[str, Storable] | None = Field(
        default=None,
        max_length=search.MAX_LENGTH,
        description='words to find in the topic and messages, all of them (stemmed); a "phrase '
        'in quotes" as a phrase. Staff also search internal notes',
    )
    tag: list[TagName] = Field(
        default=[],
        max_length=tag_policy.MAX_FILTERS,
        description="tickets holding every one of these tags; repeat for several; staff only",
    )
    not_tag: list[TagName] = Field(
        default=[],
        max_length=tag_policy.MAX_FILTERS,
        validation_alias=AliasChoices("not_tag", "-tag"),
        description="tickets holding none of these tags (also `-tag=`); staff only",
    )


class TicketCreated(BaseModel):
    id: int


class StatusChange(RequestBody):
    status: Status


class TicketChange(RequestBody):
    """Any of: a new status; and, for staff, an assignee (null: nobody) and a priority."""

    status: Status | None = None
    assignee_id: int | None = Field(
        default=None, description="an active agent's id, or null to unassign; staff only"
    )
    priority: Priority | None = Field(default=None, description="staff only")

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        if not self.model_fields_set & {"status", "assignee_id", "priority"}:
            raise ValueError("name at least one of status, assignee_id, priority")
        if "status" in self.model_fields_set and self.status is None:
            raise ValueError("status cannot be null")
        if "priority" in self.model_fields_set and self.priority is None:
            raise ValueError("priority cannot be null")
        return self


class RatingIn(RequestBody):
    score: Annotated[int, Field(ge=1, le=5)]
    comment: Annotated[str, StringConstraints(max_length=2000), Storable] | None = None


class Rating(BaseModel):
    score: int = Field(description="1 (poor) to 5 (excellent)")
    comment: str | None
    rated_at: datetime


_STAFF = "staff only"


class TicketOut(BaseModel):
    """A ticket. Fields marked staff only are left out of a customer's answers."""

    id: int
    created_at: datetime
    updated_at: datetime
    author: str | None = Field(default=None, description="the author's email; staff only")
    topic: str
    status: Status
    rating: Rating | None = Field(default=None, description="the author's, once resolved")
    assignee_id: int | None = Field(default=None, description=_STAFF)
    priority: Priority | None = Field(default=None, description=_STAFF)
    first_response_due_at: datetime | None = Field(default=None, description=_STAFF)
    resolution_due_at: datetime | None = Field(default=None, description=_STAFF)
    breached: bool | None = Field(
        default=None, description="a due time passed unmet, or was met late; staff only"
    )
    tags: list[str] | None = Field(default=None, description="sorted; staff only")

    @classmethod
    def of(cls, row: TicketRow, *, agent: bool, now: datetime) -> TicketOut:
        # Fields not given stay unset, and answers leave unset fields out.
        return cls(**answer(row, agent=agent, now=now))


def answer(row: TicketRow, *, agent: bool, now: datetime) -> dict[str, Any]:
    """A ticket's answer: `TicketOut`'s fields in its order, those a customer may not see
    left out. `TicketOut.of` validates it; a list is encoded from these straight away
    (`encode_list`), without a model per ticket."""
    fields: dict[str, Any] = {
        "id": row.id,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }
    if agent:
        fields["author"] = row.author
    fields["topic"] = row.topic
    fields["status"] = row.status
    rating = _rating(row)
    if rating is not None or agent:
        fields["rating"] = rating
    if agent:
        fields["assignee_id"] = row.assignee_id
        fields["priority"] = policy.priority_name(row.priority)
        fields["first_response_due_at"] = row.first_response_due_at
        fields["resolution_due_at"] = row.resolution_due_at
        fields["breached"] = sla.breached(_sla_state(row), now)
        fields["tags"] = tag_policy.joined(row.tags)
    return fields


def encode_list(rows: Iterable[TicketRow], *, agent: bool, now: datetime) -> bytes:
    """A list answer's JSON: what FastAPI would make of `[TicketOut.of(row) ...]`, without
    building and checking a model for each row (the rows come from our own database)."""
    return to_json([answer(row, agent=agent, now=now) for row in rows])


def _rating(row: TicketRow) -> dict[str, Any] | None:
    if row.rating_score is None or row.rated_at is None:
        return None
    return {"score": row.rating_score, "comment": row.rating_comment, "rated_at": row.rated_at}


def _sla_state(row: TicketRow) -> sla.SlaState:
    return sla.SlaState(
        row.status,
        row.first_response_due_at,
        row.resolution_due_at,
        row.first_response_at,
        row.resolved_at,
    )
