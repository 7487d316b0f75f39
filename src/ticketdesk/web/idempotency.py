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

from ticketdesk.db import Db
from ticketdesk.errors import Conflict, IdempotencyKeyReused
from ticketdesk.idempotency import repository
from ticketdesk.models import utcnow

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
        db: Db,
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
        await db.begin()  # the claim, the work and the answer commit together
        now = utcnow()
        claim_id = await repository.claim(
            db,
            user_id=user_id,
            key=self.key,
            request_hash=request_hash,
            now=now,
            expired_before=now - self.lifetime,
        )
        if claim_id is None:
            return await _replay(db, user_id, self.key, request_hash)
        result = await work()
        await repository.store_answer(
            db, claim_id=claim_id, status_code=status_code, body=result.model_dump_json()
        )
        return result


async def _replay(db: Db, user_id: int, key: str, request_hash: str) -> Response:
    stored = await repository.stored_answer(db, user_id=user_id, key=key)
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
    if key is None:  # the common case: nothing to look up, nothing to store
        return _NO_KEY
    hours: int = request.app.state.settings.idempotency_hours
    return Idempotency(key, request.method, request.scope["path"], timedelta(hours=hours))


_NO_KEY = Idempotency(None, "", "", timedelta())


IdempotencyKey = Annotated[Idempotency, Depends(_idempotency)]
