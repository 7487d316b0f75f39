from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from ticketdesk.schemas import Password, RequestBody, Storable


class ResetRequest(RequestBody):
    email: Annotated[str, StringConstraints(min_length=1, max_length=320), Storable]


class ResetConfirm(RequestBody):
    token: Annotated[str, StringConstraints(min_length=1, max_length=200), Storable]
    password: Password = Field(description="the new password")


class ResetAccepted(BaseModel):
    detail: str
