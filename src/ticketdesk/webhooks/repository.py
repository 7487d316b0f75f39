"""All SQL of webhook endpoints (their deliveries are jobs: `jobs/repository.py`)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, delete, func, insert, select, update

from ticketdesk.db import Db, Statement, constants
from ticketdesk.models import jobs, webhooks


class WebhookRow(NamedTuple):
    id: int
    url: str
    events: list[str]
    is_active: bool
    disabled_reason: str | None
    created_at: datetime
    consecutive_failures: int
    paused_until: datetime | None
    paused_reason: str | None


class Endpoint(NamedTuple):
    """What a delivery needs of its endpoint."""

    url: str
    secret: str
    is_active: bool


_COLUMNS = (
    webhooks.c.id,
    webhooks.c.url,
    webhooks.c.events,
    webhooks.c.is_active,
    webhooks.c.disabled_reason,
    webhooks.c.created_at,
    webhooks.c.consecutive_failures,
    webhooks.c.paused_until,
    webhooks.c.paused_reason,
)


def _row(row: Any) -> WebhookRow:
    return WebhookRow(row[0], row[1], json.loads(row[2]), bool(row[3]), row[4], row[5], *row[6:])


_INSERT = Statement(
    insert(webhooks)
    .values(
        url=bindparam("url"),
        events=bindparam("events"),
        secret=bindparam("secret"),
        is_active=True,
        created_by=bindparam("created_by"),
        created_at=bindparam("now"),
    )
    .returning(*_COLUMNS)
)


async def insert_webhook(
    db: Db, *, url: str, events: list[str], secret: str, created_by: int, now: datetime
) -> WebhookRow:
    row = await db.first(
        _INSERT,
        {
            "url": url,
            "events": json.dumps(events),
            "secret": secret,
            "created_by": created_by,
            "now": now,
        },
    )
    assert row is not None
    return _row(row)


_ALL = Statement(select(*_COLUMNS).order_by(webhooks.c.id))
_ONE = Statement(select(*_COLUMNS).where(webhooks.c.id == bindparam("id")))
_ACTIVE = Statement(select(webhooks.c.id, webhooks.c.events).where(webhooks.c.is_active.is_(True)))
_ENDPOINT = Statement(
    select(webhooks.c.url, webhooks.c.secret, webhooks.c.is_active).where(
        webhooks.c.id == bindparam("id")
    )
)


async def all_webhooks(db: Db) -> list[WebhookRow]:
    return [_row(row) for row in await db.all(_ALL)]


async def webhook(db: Db, webhook_id: int) -> WebhookRow | None:
    row = await db.first(_ONE, {"id": webhook_id})
    return _row(row) if row is not None else None


async def subscribers(db: Db) -> list[tuple[int, frozenset[str]]]:
    """The active endpoints and the event kinds each receives."""
    return [(row[0], frozenset(json.loads(row[1]))) for row in await db.all(_ACTIVE)]


async def endpoint(db: Db, webhook_id: int) -> Endpoint | None:
    row = await db.first(_ENDPOINT, {"id": webhook_id})
    return Endpoint(row[0], row[1], bool(row[2])) if row is not None else None


def _update(columns: frozenset[str]) -> Statement:
    return Statement(
        update(webhooks)
        .where(webhooks.c.id == bindparam("webhook_id"))
        .values({column: bindparam(f"new_{column}") for column in sorted(columns)})
    )


_UPDATES: dict[frozenset[str], Statement] = {}
"""One statement per set of columns changed: a handful of shapes at most."""


_COLUMNS_SET = {
    "url",
    "events",
    "is_active",
    "disabled_reason",
    "consecutive_failures",
    "paused_until",
    "paused_reason",
}


async def update_webhook(db: Db, webhook_id: int, values: dict[str, Any]) -> bool:
    columns = frozenset(values)
    assert columns <= _COLUMNS_SET
    statement = _UPDATES.get(columns)
    if statement is None:
        statement = _UPDATES[columns] = _update(columns)
    if "events" in values:
        values = {**values, "events": json.dumps(values["events"])}
    params = {f"new_{column}": value for column, value in values.items()}
    params["webhook_id"] = webhook_id
    return await db.execute(statement, params) == 1


_DELETE = Statement(delete(webhooks).where(webhooks.c.id == bindparam("id")))


async def delete_webhook(db: Db, webhook_id: int) -> bool:
    return await db.execute(_DELETE, {"id": webhook_id}) == 1


class Health(NamedTuple):
    consecutive_failures: int
    paused_until: datetime | None


_HEALTH = Statement(
    select(webhooks.c.consecutive_failures, webhooks.c.paused_until)
    .where(webhooks.c.id == bindparam("id"))
    .with_for_update(key_share=True)
)


async def lock_health(db: Db, webhook_id: int) -> Health | None:
    """The endpoint's health, locked until the transaction ends (None: it was deleted)."""
    row = await db.first(_HEALTH, {"id": webhook_id})
    return Health(int(row[0]), row[1]) if row is not None else None


_HEALED = Statement(
    update(webhooks)
    .where(
        webhooks.c.id == bindparam("webhook_id"),
        (webhooks.c.consecutive_failures > 0) | webhooks.c.paused_until.is_not(None),
    )
    .values(consecutive_failures=0, paused_until=None, paused_reason=None)
)


async def healed(db: Db, webhook_id: int) -> bool:
    """A call went through: no failures in a row, no pause. True when it had some."""
    return await db.execute(_HEALED, {"webhook_id": webhook_id}) == 1


class PausedRow(NamedTuple):
    id: int
    url: str
    consecutive_failures: int
    paused_until: datetime
    paused_reason: str | None
    queued: int


_QUEUED = (
    select(func.count())
    .where(jobs.c.webhook_id == webhooks.c.id, jobs.c.status == constants("queued")[0])
    .scalar_subquery()
)
_PAUSED = Statement(
    select(
        webhooks.c.id,
        webhooks.c.url,
        webhooks.c.consecutive_failures,
        webhooks.c.paused_until,
        webhooks.c.paused_reason,
        _QUEUED,
    )
    .where(webhooks.c.paused_until.is_not(None), webhooks.c.is_active.is_(True))
    .order_by(webhooks.c.id)
)


async def paused(db: Db) -> list[PausedRow]:
    """The active endpoints paused after failing, with how many calls wait for each."""
    return [PausedRow(*row) for row in await db.all(_PAUSED)]


_BY_STATE = Statement(
    select(
        webhooks.c.is_active,
        webhooks.c.paused_until.is_not(None),
        func.count(),
    ).group_by(webhooks.c.is_active, webhooks.c.paused_until.is_not(None))
)


async def states(db: Db) -> dict[str, int]:
    """How many endpoints are active, paused and disabled."""
    found = dict.fromkeys(STATES, 0)
    for active, is_paused, count in await db.all(_BY_STATE):
        found[state(bool(active), bool(is_paused))] += int(count)
    return found


STATES = ("active", "paused", "disabled")


def state(is_active: bool, is_paused: bool) -> str:
    """Disabled (by failures through a whole schedule, or by hand), paused (after failures in
    a row, until a probe goes through), or active."""
    if not is_active:
        return "disabled"
    return "paused" if is_paused else "active"
