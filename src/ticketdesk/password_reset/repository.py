"""All SQL of password reset links (kept as the SHA-256 of their token)."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, insert, select, update

from ticketdesk.db import Db, Statement
from ticketdesk.models import password_resets, users


class Recipient(NamedTuple):
    id: int
    email: str
    username: str


_RECIPIENT = Statement(
    select(users.c.id, users.c.email, users.c.username).where(
        users.c.email == bindparam("email", type_=users.c.email.type),
        users.c.is_active.is_(True),
    )
)


async def active_user(db: Db, email: str) -> Recipient | None:
    row = await db.first(_RECIPIENT, {"email": email})
    return Recipient(*row) if row is not None else None


_INSERT = Statement(
    insert(password_resets)
    .values(
        user_id=bindparam("user_id"),
        token_hash=bindparam("token_hash"),
        created_at=bindparam("now"),
        expires_at=bindparam("expires_at"),
    )
    .returning(password_resets.c.id)
)


async def insert_reset(
    db: Db, *, user_id: int, token_hash: str, now: datetime, expires_at: datetime
) -> int:
    reset_id: int = await db.scalar(
        _INSERT,
        {"user_id": user_id, "token_hash": token_hash, "now": now, "expires_at": expires_at},
    )
    return reset_id


_USABLE = Statement(
    select(password_resets.c.id).where(
        password_resets.c.token_hash == bindparam("of_hash"),
        password_resets.c.used_at.is_(None),
        password_resets.c.expires_at > bindparam("now"),
    )
)


async def usable(db: Db, *, token_hash: str, now: datetime) -> bool:
    """Whether the link is known, unused and unexpired; nothing is changed."""
    return await db.first(_USABLE, {"of_hash": token_hash, "now": now}) is not None


_SPEND = Statement(
    update(password_resets)
    .where(
        password_resets.c.token_hash == bindparam("of_hash"),
        password_resets.c.used_at.is_(None),
        password_resets.c.expires_at > bindparam("now"),
    )
    .values(used_at=bindparam("now"))
    .returning(password_resets.c.user_id)
)
_SPEND_OTHERS = Statement(
    update(password_resets)
    .where(password_resets.c.user_id == bindparam("of_user"), password_resets.c.used_at.is_(None))
    .values(used_at=bindparam("now"))
)


async def spend(db: Db, *, token_hash: str, now: datetime) -> int | None:
    """Use the link once: its user, or None when it is unknown, used or expired. Every
    other link of the user is spent with it."""
    user_id = (await db.first(_SPEND, {"of_hash": token_hash, "now": now}) or (None,))[0]
    if user_id is not None:
        await db.execute(_SPEND_OTHERS, {"of_user": user_id, "now": now})
    return user_id
