"""All SQL of user accounts."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Integer, bindparam, func, insert, select, update

from ticketdesk.auth import policy as roles
from ticketdesk.db import Db, Statement, UniqueViolation
from ticketdesk.errors import BadRequest
from ticketdesk.models import users
from ticketdesk.pagination import Page, PageRequest, Sort, int_from_json, page_parameters, paginate


class UserRow(NamedTuple):
    id: int
    created_at: datetime
    username: str
    email: str
    is_staff: bool


class UserListRow(NamedTuple):
    id: int
    created_at: datetime
    username: str
    email: str
    is_staff: bool
    tickets_count: int


class UserDetailRow(NamedTuple):
    id: int
    created_at: datetime
    username: str
    email: str
    is_staff: bool
    tickets_count: int
    is_active: bool
    is_superuser: bool


class Roles(NamedTuple):
    is_staff: bool
    is_superuser: bool


PUBLIC_COLUMNS = (users.c.id, users.c.created_at, users.c.username, users.c.email, users.c.is_staff)
LIST_COLUMNS = (*PUBLIC_COLUMNS, users.c.tickets_count)
DETAIL_COLUMNS = (*LIST_COLUMNS, users.c.is_active, users.c.is_superuser)

MOST_TICKETS_FIRST = Sort(
    name="tickets_count",
    id=users.c.id,
    key=-users.c.tickets_count,  # one ascending key, as the index has it
    field="tickets_count",
    start=(-(2**31), 0),  # before any -tickets_count
    from_json=lambda value: -int_from_json(value),
)


_INSERT = Statement(
    insert(users)
    .values(
        email=bindparam("email"),
        username=bindparam("username"),
        password_hash=bindparam("password_hash"),
        is_staff=bindparam("is_staff"),
        is_superuser=bindparam("is_superuser"),
        is_active=True,
        tickets_count=0,
        token_version=0,
        created_at=bindparam("now"),
        mail_new_tickets=True,
        mail_customer_replies=True,
    )
    .returning(*PUBLIC_COLUMNS)
)
DUPLICATE_EMAIL = "a user with this email already exists"


async def insert_user(db: Db, **values: Any) -> UserRow:
    """The new account; BadRequest when the email is taken."""
    try:
        row = await db.first(_INSERT, values)
    except UniqueViolation:
        raise BadRequest(DUPLICATE_EMAIL) from None
    assert row is not None
    return UserRow(*row)


_PAGE = Statement(paginate(select(*LIST_COLUMNS), MOST_TICKETS_FIRST))
_COUNT = Statement(select(func.count()).select_from(users))


async def user_page(db: Db, page: PageRequest) -> Page[UserListRow]:
    rows = [
        UserListRow(*row) for row in await db.all(_PAGE, page_parameters(MOST_TICKETS_FIRST, page))
    ]
    result = Page.of(rows, MOST_TICKETS_FIRST, page)
    if page.count:
        return Page(result.items, result.next_cursor, int(await db.scalar(_COUNT)))
    return result


_DETAIL = Statement(select(*DETAIL_COLUMNS).where(users.c.id == bindparam("user_id")))
_PUBLIC = Statement(select(*PUBLIC_COLUMNS).where(users.c.id == bindparam("user_id")))
_ROLES = Statement(
    select(users.c.is_staff, users.c.is_superuser)
    .where(users.c.id == bindparam("user_id"))
    .with_for_update()
)


async def user_detail(db: Db, user_id: int) -> UserDetailRow | None:
    row = await db.first(_DETAIL, {"user_id": user_id})
    return UserDetailRow(*row) if row is not None else None


async def user(db: Db, user_id: int) -> UserRow | None:
    row = await db.first(_PUBLIC, {"user_id": user_id})
    return UserRow(*row) if row is not None else None


_ID_BY_EMAIL = Statement(
    select(users.c.id).where(users.c.email == bindparam("email", type_=users.c.email.type))
)
_ALL = Statement(select(*DETAIL_COLUMNS).order_by(users.c.id))


async def id_by_email(db: Db, email: str) -> int | None:
    row = await db.first(_ID_BY_EMAIL, {"email": email})
    return int(row[0]) if row is not None else None


async def all_users(db: Db) -> list[UserDetailRow]:
    """Every account, by id (the operator's list: no page, no limit)."""
    return [UserDetailRow(*row) for row in await db.all(_ALL)]


async def lock_roles(db: Db, user_id: int) -> Roles | None:
    """The user's roles, row-locked until the transaction ends."""
    row = await db.first(_ROLES, {"user_id": user_id})
    return Roles(*row) if row is not None else None


_UPDATES: dict[frozenset[str], Statement] = {}


async def update_user(db: Db, user_id: int, values: dict[str, Any]) -> None:
    """Set some of username, is_active, is_staff, password_hash (one statement per set of them)."""
    fields = frozenset(values)
    statement = _UPDATES.get(fields)
    if statement is None:
        assert fields <= {
            "username",
            "is_active",
            "is_staff",
            "password_hash",
            "is_superuser",
            "mail_new_tickets",
            "mail_customer_replies",
        }
        statement = _UPDATES[fields] = Statement(
            update(users)
            .where(users.c.id == bindparam("user_id"))
            .values({name: bindparam(f"new_{name}") for name in sorted(fields)})
        )
    await db.execute(
        statement, {f"new_{name}": value for name, value in values.items()} | {"user_id": user_id}
    )


class AgentRow(NamedTuple):
    id: int
    username: str
    email: str


_AGENTS = Statement(
    select(users.c.id, users.c.username, users.c.email)
    .where(roles.ACTIVE_AGENT)
    .order_by(users.c.username, users.c.id)
    .limit(bindparam("limit", type_=Integer))
)


async def active_agents(db: Db, limit: int = 200) -> list[AgentRow]:
    """Those a ticket can be assigned to, by name (the first `limit` of them)."""
    return [AgentRow(*row) for row in await db.all(_AGENTS, {"limit": limit})]


class MailChoices(NamedTuple):
    new_tickets: bool
    customer_replies: bool


_MAIL_CHOICES = Statement(
    select(users.c.mail_new_tickets, users.c.mail_customer_replies).where(
        users.c.id == bindparam("user_id")
    )
)


async def mail_choices(db: Db, user_id: int) -> MailChoices:
    row = await db.first(_MAIL_CHOICES, {"user_id": user_id})
    assert row is not None
    return MailChoices(bool(row[0]), bool(row[1]))
