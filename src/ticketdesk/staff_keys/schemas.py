from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from ticketdesk.schemas import RequestBody, Timestamp


class StaffKeyIn(RequestBody):
    expires_at: Annotated[
        Timestamp | None,
        Field(strict=False, description="RFC 3339; the key cannot be used after it"),
    ] = None


class StaffKeyOut(BaseModel):
    id: int
    created_at: datetime
    created_by: int | None
    expires_at: datetime | None
    used_at: datetime | None
    used_by: int | None


class NewStaffKeyOut(StaffKeyOut):
    key: str = Field(description="Shown this once; only its hash is stored")
