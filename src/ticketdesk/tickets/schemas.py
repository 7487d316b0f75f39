from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from ticketdesk.schemas import NotBlank, RequestBody, Storable, UtcDatetime
from ticketdesk.tickets.repository import MessageRow, TicketRow
from ticketdesk.tickets.rules import MessageType, Status

MessageText = Annotated[str, StringConstraints(min_length=1), Storable, NotBlank]


class TicketCreate(RequestBody):
    topic: Annotated[str, StringConstraints(min_length=1, max_length=20), Storable, NotBlank]
    text: Annotated[MessageText, Field(description="the ticket's first message")]


TicketSort = Literal["created_at", "-created_at", "updated_at", "-updated_at"]


class TicketQuery(BaseModel):
    """Filters and order of GET /tickets; every combination is served by an index."""

    sort: TicketSort = Field(default="created_at", description="a leading - for newest first")
    status: list[Status] = Field(default=[], description="repeat for several")
    author: Annotated[str, Storable] | None = Field(
        default=None, max_length=320, description="email; staff only"
    )
    created_after: UtcDatetime | None = None
    created_before: UtcDatetime | None = None
    updated_after: UtcDatetime | None = None


class TicketCreated(BaseModel):
    id: int


class StatusChange(RequestBody):
    status: Status


class TicketOut(BaseModel):
    id: int
    created_at: datetime
    updated_at: datetime
    author: str | None = Field(default=None, description="the author's email; for staff only")
    topic: str
    status: Status

    @classmethod
    def of(cls, row: TicketRow) -> TicketOut:
        # Read from the row's attributes by pydantic-core: faster than model_construct.
        return cls.model_validate(row, from_attributes=True)


class MessageCreate(RequestBody):
    text: MessageText


class MessageOut(BaseModel):
    id: int
    created_at: datetime
    type: MessageType
    text: str

    @classmethod
    def of(cls, row: MessageRow) -> MessageOut:
        return cls.model_validate(row, from_attributes=True)
