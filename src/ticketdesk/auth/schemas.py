from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from ticketdesk.schemas import RequestBody, StorableStr


class LoginIn(RequestBody):
    email: Annotated[StorableStr, Field(min_length=1, max_length=320)]
    password: Annotated[StorableStr, Field(min_length=1, max_length=1024)]


class TokenOut(BaseModel):
    token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme name
    expires_at: datetime
