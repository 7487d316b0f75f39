"""The SQL of taking mail in: whose ticket a reply is for, and which mails came already."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, insert, select

from ticketdesk.db import Db, Statement
from ticketdesk.models import inbound_mails, tickets, users


class Person(NamedTuple):
    id: int
    email: str
    username: str
    is_staff: bool
    is_superuser: bool
    is_active: bool


_PERSON_COLUMNS = (
    users.c.id,
    users.c.email,
    users.c.username,
    users.c.is_staff,
    users.c.is_superuser,
    users.c.is_active,
)
_AUTHOR = Statement(
    select(*_PERSON_COLUMNS)
    .select_from(tickets.join(users, users.c.id == tickets.c.author_id))
    .where(tickets.c.id == bindparam("ticket_id"))
)
_BY_EMAIL = Statement(
    select(*_PERSON_COLUMNS).where(users.c.email == bindparam("email", type_=users.c.email.type))
)


async def ticket_author(db: Db, ticket_id: int) -> Person | None:
    row = await db.first(_AUTHOR, {"ticket_id": ticket_id})
    return Person(*row) if row is not None else None


async def person(db: Db, email: str) -> Person | None:
    row = await db.first(_BY_EMAIL, {"email": email})
    return Person(*row) if row is not None else None


_SEEN = Statement(
    select(inbound_mails.c.ticket_id).where(inbound_mails.c.message_id == bindparam("mail_id"))
)
_RECORD = Statement(
    insert(inbound_mails).values(
        message_id=bindparam("mail_id"),
        ticket_id=bindparam("ticket_id"),
        received_at=bindparam("now"),
    )
)


async def seen(db: Db, mail_id: str) -> int | None:
    """The ticket a mail went to, if it came before."""
    row = await db.first(_SEEN, {"mail_id": mail_id})
    return int(row[0]) if row is not None else None


async def record(db: Db, *, mail_id: str, ticket_id: int, now: datetime) -> None:
    await db.execute(_RECORD, {"mail_id": mail_id, "ticket_id": ticket_id, "now": now})
