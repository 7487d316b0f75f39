"""The SQL of Idempotency-Key claims and their stored answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ticketdesk.db import Db, Statement
from ticketdesk.models import idempotency_keys


class StoredAnswer(NamedTuple):
    request_hash: str
    status_code: int | None
    response_body: str | None


_FORGET_EXPIRED = Statement(
    delete(idempotency_keys).where(idempotency_keys.c.created_at < bindparam("expired_before"))
)
_CLAIM_VALUES: dict[str, Any] = {
    "user_id": bindparam("user_id"),
    "key": bindparam("key"),
    "request_hash": bindparam("request_hash"),
    "created_at": bindparam("now"),
}
_CLAIM = Statement(
    sqlite.insert(idempotency_keys)
    .values(_CLAIM_VALUES)
    .on_conflict_do_nothing(index_elements=["user_id", "key"])
    .returning(idempotency_keys.c.id),
    postgres=postgresql.insert(idempotency_keys)
    .values(_CLAIM_VALUES)
    .on_conflict_do_nothing(index_elements=["user_id", "key"])
    .returning(idempotency_keys.c.id),
)


async def claim(
    db: Db, *, user_id: int, key: str, request_hash: str, now: datetime, expired_before: datetime
) -> int | None:
    """The id of a new claim on the key, or None when the key is taken (and not expired)."""
    # Expired keys go first, this one's included: it may be claimed anew.
    await db.execute(_FORGET_EXPIRED, {"expired_before": expired_before})
    params = {"user_id": user_id, "key": key, "request_hash": request_hash, "now": now}
    row = await db.first(_CLAIM, params)
    return int(row[0]) if row is not None else None


_STORE = Statement(
    update(idempotency_keys)
    .where(idempotency_keys.c.id == bindparam("claim_id"))
    .values(status_code=bindparam("status_code"), response_body=bindparam("body"))
)


async def store_answer(db: Db, *, claim_id: int, status_code: int, body: str) -> None:
    await db.execute(_STORE, {"claim_id": claim_id, "status_code": status_code, "body": body})


_STORED = Statement(
    select(
        idempotency_keys.c.request_hash,
        idempotency_keys.c.status_code,
        idempotency_keys.c.response_body,
    ).where(
        idempotency_keys.c.user_id == bindparam("user_id"),
        idempotency_keys.c.key == bindparam("key"),
    )
)


async def stored_answer(db: Db, *, user_id: int, key: str) -> StoredAnswer:
    row = await db.first(_STORED, {"user_id": user_id, "key": key})
    assert row is not None  # the claim that took the key has committed
    return StoredAnswer(*row)
