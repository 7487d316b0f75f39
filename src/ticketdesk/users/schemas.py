from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from ticketdesk.schemas import AnyPassword, EmailAddress, Password, RequestBody, Username
from ticketdesk.tickets.schemas import TicketOut


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


class UserDetail(UserListItem):
    is_active: bool
    tickets: list[TicketOut]
