from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from ticketdesk.events.repository import EventRow

EventKind = Literal[
    "created", "status", "assignee", "priority", "message", "note", "rating", "tags"
]


class EventOut(BaseModel):
    """One change to a ticket: what its fields were before, and what they became."""

    id: int = Field(description="the event's position in the feed; ascending in commit order")
    ticket_id: int
    at: datetime
    actor_id: int | None = Field(description="who made the change; null once they are deleted")
    kind: EventKind
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    @classmethod
    def of(cls, row: EventRow) -> EventOut:
        return cls(
            id=row.id,
            ticket_id=row.ticket_id,
            at=row.at,
            actor_id=row.actor_id,
            kind=row.kind,
            before=json.loads(row.before) if row.before is not None else None,
            after=json.loads(row.after) if row.after is not None else None,
        )
