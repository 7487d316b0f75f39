"""Single-use keys that a superuser hands to a new member of staff to register with."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketdesk.auth.security import hash_key
from ticketdesk.db import Db, Prepared, Record
from ticketdesk.errors import BadRequest, NotFound, Unauthorized
from ticketdesk.models import staff_keys, utcnow

KEY_PREFIX = "tdsk_"
_PUBLIC_COLUMNS = (
    staff_keys.c.id,
    staff_keys.c.created_at,
    staff_keys.c.created_by,
    staff_keys.c.expires_at,
    staff_keys.c.used_at,
    staff_keys.c.used_by,
)


async def create_key(
    conn: AsyncConnection, *, created_by: int, expires_at: datetime | None
) -> tuple[str, Record]:
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise BadRequest("expires_at needs a timezone offset, e.g. 2030-01-01T00:00:00Z")
        try:
            expires_at = expires_at.astimezone(UTC)
        except OverflowError:
            raise BadRequest("expires_at is out of range") from None
        if expires_at <= utcnow():
            raise BadRequest("expires_at must lie in the future")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    query = (
        insert(staff_keys)
        .values(key_hash=hash_key(key), created_by=created_by, expires_at=expires_at)
        .returning(*_PUBLIC_COLUMNS)
    )
    return key, (await conn.execute(query)).mappings().one()


_ALL_KEYS = Prepared(select(*_PUBLIC_COLUMNS).order_by(staff_keys.c.id))


async def list_keys(db: Db) -> Sequence[Record]:
    return await _ALL_KEYS.all(db, {})


async def delete_key(conn: AsyncConnection, key_id: int) -> None:
    result = await conn.execute(delete(staff_keys).where(staff_keys.c.id == key_id))
    if result.rowcount == 0:
        raise NotFound("no such staff key")


async def spend_key(conn: AsyncConnection, key: str) -> int:
    """Mark an unused, unexpired key as used, atomically; its id, or Unauthorized."""
    now = utcnow()
    query = (
        update(staff_keys)
        .where(
            staff_keys.c.key_hash == hash_key(key),
            staff_keys.c.used_at.is_(None),
            or_(staff_keys.c.expires_at.is_(None), staff_keys.c.expires_at > now),
        )
        .values(used_at=now)
        .returning(staff_keys.c.id)
    )
    key_id: int | None = (await conn.execute(query)).scalar_one_or_none()
    if key_id is None:
        raise Unauthorized("staff registration needs a valid staff key")
    return key_id


async def record_use(conn: AsyncConnection, *, key_id: int, user_id: int) -> None:
    await conn.execute(update(staff_keys).where(staff_keys.c.id == key_id).values(used_by=user_id))
