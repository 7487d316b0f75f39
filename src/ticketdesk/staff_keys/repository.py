"""All SQL of staff keys. A key is stored as its SHA-256 only."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, delete, insert, or_, select, update

from ticketdesk.db import Db, Statement
from ticketdesk.models import staff_keys


class StaffKeyRow(NamedTuple):
    id: int
    created_at: datetime
    created_by: int | None
    expires_at: datetime | None
    used_at: datetime | None
    used_by: int | None


_COLUMNS = (
    staff_keys.c.id,
    staff_keys.c.created_at,
    staff_keys.c.created_by,
    staff_keys.c.expires_at,
    staff_keys.c.used_at,
    staff_keys.c.used_by,
)

_INSERT = Statement(
    insert(staff_keys)
    .values(
        key_hash=bindparam("key_hash"),
        created_by=bindparam("created_by"),
        created_at=bindparam("now"),
        expires_at=bindparam("expires_at"),
    )
    .returning(*_COLUMNS)
)


async def insert_key(
    db: Db, *, key_hash: str, created_by: int, expires_at: datetime | None, now: datetime
) -> StaffKeyRow:
    params = {"key_hash": key_hash, "created_by": created_by, "expires_at": expires_at, "now": now}
    row = await db.first(_INSERT, params)
    assert row is not None
    return StaffKeyRow(*row)


_ALL = Statement(select(*_COLUMNS).order_by(staff_keys.c.id))


async def all_keys(db: Db) -> list[StaffKeyRow]:
    return [StaffKeyRow(*row) for row in await db.all(_ALL)]


_DELETE = Statement(delete(staff_keys).where(staff_keys.c.id == bindparam("key_id")))


async def delete_key(db: Db, key_id: int) -> bool:
    return await db.execute(_DELETE, {"key_id": key_id}) > 0


_SPEND = Statement(
    update(staff_keys)
    .where(
        staff_keys.c.key_hash == bindparam("spent_hash"),
        staff_keys.c.used_at.is_(None),
        or_(staff_keys.c.expires_at.is_(None), staff_keys.c.expires_at > bindparam("now")),
    )
    .values(used_at=bindparam("now"))
    .returning(staff_keys.c.id)
)


async def spend_key(db: Db, *, key_hash: str, now: datetime) -> int | None:
    """Mark an unused, unexpired key as used, atomically; its id, or None."""
    row = await db.first(_SPEND, {"spent_hash": key_hash, "now": now})
    return int(row[0]) if row is not None else None


_RECORD_USE = Statement(
    update(staff_keys)
    .where(staff_keys.c.id == bindparam("key_id"))
    .values(used_by=bindparam("user_id"))
)


async def record_use(db: Db, *, key_id: int, user_id: int) -> None:
    await db.execute(_RECORD_USE, {"key_id": key_id, "user_id": user_id})
