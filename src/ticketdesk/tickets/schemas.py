from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from ticketdesk.schemas import NonBlankStr, RequestBody
from ticketdesk.tickets.rules import MessageType, Status


class TicketCreate(RequestBody):
    topic: Annotated[NonBlankStr, Field(min_length=1, max_length=20)]
    text: Annotated[NonBlankStr, Field(min_length=1, description="the ticket's first message")]


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


class MessageCreate(RequestBody):
    text: Annotated[NonBlankStr, Field(min_length=1)]


class MessageOut(BaseModel):
    id: int
    created_at: datetime
    type: MessageType
    text: str
