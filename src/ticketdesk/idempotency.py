"""`Idempotency-Key`: a write retried with the same key is answered, not done, again.

The key is claimed in the request's own transaction before the work, and the answer is
stored in it after: both commit together or not at all. A concurrent request with the same
key waits on the claim (PostgreSQL's unique index; SQLite's write lock) and then replays
the answer once the first commits. Keys belong to their user and last IDEMPOTENCY_HOURS.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketdesk.errors import Conflict, IdempotencyKeyReused
from ticketdesk.models import idempotency_keys, utcnow

REPLAYED_HEADER = "Idempotent-Replayed"
_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"  # visible ASCII, as HTTP header values are safe to log

Result = TypeVar("Result", bound=BaseModel)


def fingerprint(method: str, path: str, body: BaseModel) -> str:
    """What makes two requests the same: method, path and the body as parsed."""
    canonical = f"{method} {path}\n{body.model_dump_json()}"
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Idempotency:
    """The request's Idempotency-Key, if it sent one, and where it was sent."""

    key: str | None
    method: str
    path: str
    lifetime: timedelta

    async def run(
        self,
        conn: AsyncConnection,
        *,
        user_id: int,
        body: BaseModel,
        status_code: int,
        work: Callable[[], Awaitable[Result]],
    ) -> Result | Response:
        """`work()`'s answer, stored under the key; or the stored answer of an earlier run."""
        if self.key is None:
            return await work()
        request_hash = fingerprint(self.method, self.path, body)
        claim_id = await _claim(conn, user_id, self.key, request_hash, self.lifetime)
        if claim_id is None:
            return await _replay(conn, user_id, self.key, request_hash)
        result = await work()
        await conn.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.id == claim_id)
            .values(status_code=status_code, response_body=result.model_dump_json())
        )
        return result


async def _claim(
    conn: AsyncConnection, user_id: int, key: str, request_hash: str, lifetime: timedelta
) -> int | None:
    """The id of a new claim on the key, or None when the key is taken (and not expired)."""
    # Expired keys go first, this one's included: it may be claimed anew.
    await conn.execute(
        delete(idempotency_keys).where(idempotency_keys.c.created_at < utcnow() - lifetime)
    )
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    claim = (
        insert(idempotency_keys)
        .values(user_id=user_id, key=key, request_hash=request_hash, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["user_id", "key"])
        .returning(idempotency_keys.c.id)
    )
    claim_id: int | None = (await conn.execute(claim)).scalar_one_or_none()
    return claim_id


async def _replay(conn: AsyncConnection, user_id: int, key: str, request_hash: str) -> Response:
    stored = (
        await conn.execute(
            select(
                idempotency_keys.c.request_hash,
                idempotency_keys.c.status_code,
                idempotency_keys.c.response_body,
            ).where(idempotency_keys.c.user_id == user_id, idempotency_keys.c.key == key)
        )
    ).one()
    if stored.request_hash != request_hash:
        raise IdempotencyKeyReused()
    if stored.status_code is None:  # not expected: a claim commits with its answer
        raise Conflict("a request with this Idempotency-Key is still in progress")
    return Response(
        content=stored.response_body,
        status_code=stored.status_code,
        media_type="application/json",
        headers={REPLAYED_HEADER: "true"},
    )


async def _idempotency(
    request: Request,
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=_KEY_PATTERN,
            description=(
                "Any unique string (a UUID): a retry with the same key and body within "
                "IDEMPOTENCY_HOURS gets the first answer again, with no second write"
            ),
        ),
    ] = None,
) -> Idempotency:
    hours: int = request.app.state.settings.idempotency_hours
    return Idempotency(key, request.method, request.url.path, timedelta(hours=hours))


IdempotencyKey = Annotated[Idempotency, Depends(_idempotency)]
