"""Single-use keys that a superuser hands to a new member of staff to register with."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from ticketdesk.auth.security import hash_key
from ticketdesk.db import Db
from ticketdesk.errors import BadRequest, NotFound, Unauthorized
from ticketdesk.models import utcnow
from ticketdesk.staff_keys import repository
from ticketdesk.staff_keys.repository import StaffKeyRow

KEY_PREFIX = "tdsk_"


async def create_key(
    db: Db, *, created_by: int, expires_at: datetime | None
) -> tuple[str, StaffKeyRow]:
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
    row = await repository.insert_key(
        db, key_hash=hash_key(key), created_by=created_by, expires_at=expires_at, now=utcnow()
    )
    return key, row


async def list_keys(db: Db) -> list[StaffKeyRow]:
    return await repository.all_keys(db)


async def delete_key(db: Db, key_id: int) -> None:
    if not await repository.delete_key(db, key_id):
        raise NotFound("no such staff key")


async def spend_key(db: Db, key: str) -> int:
    """Mark an unused, unexpired key as used, atomically; its id, or Unauthorized."""
    key_id = await repository.spend_key(db, key_hash=hash_key(key), now=utcnow())
    if key_id is None:
        raise Unauthorized("staff registration needs a valid staff key")
    return key_id


async def record_use(db: Db, *, key_id: int, user_id: int) -> None:
    await repository.record_use(db, key_id=key_id, user_id=user_id)
