from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, Field
from pydantic_core import to_json

from ticketdesk.schemas import AnyPassword, EmailAddress, Password, RequestBody, Username
from ticketdesk.tickets.schemas import TicketOut
from ticketdesk.users.repository import UserListRow


class UserCreate(RequestBody):
    email: EmailAddress
    password: Password
    username: Username
    is_staff: bool = Field(
        default=False,
        alias="isStaff",
        description="Needs `Authorization: Bearer <STAFF_TOKEN or a staff key>`",
    )


class UserUpdate(RequestBody):
    username: Username | None = None
    is_active: bool | None = Field(default=None, description="false blocks the user")
    is_staff: bool | None = Field(default=None, description="superusers only")
    is_superuser: bool | None = Field(
        default=None, description="never changeable through the API: any value is a 403"
    )


class MeUpdate(RequestBody):
    username: Username | None = None
    password: Password | None = Field(default=None, description="needs current_password")
    current_password: AnyPassword | None = None


class MailChoicesOut(BaseModel):
    new_tickets: bool = Field(description="a mail for each new ticket")
    customer_replies: bool = Field(
        description="a mail for each customer's reply (on tickets assigned to you, or to nobody)"
    )


class MailChoicesUpdate(RequestBody):
    new_tickets: bool | None = None
    customer_replies: bool | None = None


class UserOut(BaseModel):
    id: int
    created_at: datetime
    username: str
    email: str
    is_staff: bool


class UserListItem(UserOut):
    tickets_count: int


def encode_list(rows: Iterable[UserListRow]) -> bytes:
    """A list answer's JSON, straight from the rows: `UserListItem`'s fields are the row's,
    in its order (a test holds them equal), so no model is built and checked for each."""
    return to_json([row._asdict() for row in rows])


class UserDetail(UserListItem):
    is_active: bool
    tickets: list[TicketOut]
