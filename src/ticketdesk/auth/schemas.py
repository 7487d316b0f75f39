from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, StringConstraints

from ticketdesk.schemas import AnyPassword, RequestBody, Storable


class LoginIn(RequestBody):
    email: Annotated[str, StringConstraints(min_length=1, max_length=320), Storable]
    password: AnyPassword


class TokenOut(BaseModel):
    token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme name
    expires_at: datetime
