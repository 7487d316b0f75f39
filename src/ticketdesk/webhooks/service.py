"""Managing webhook endpoints and their deliveries (superusers only, by the router)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from ticketdesk.db import Db
from ticketdesk.errors import BadRequest, Conflict, NotFound
from ticketdesk.jobs import repository as jobs
from ticketdesk.jobs.repository import JobRow
from ticketdesk.models import utcnow
from ticketdesk.schemas import MAX_ID
from ticketdesk.settings import Settings
from ticketdesk.webhooks import delivery, repository
from ticketdesk.webhooks.repository import WebhookRow
from ticketdesk.webhooks.schemas import WebhookCreate, WebhookUpdate

NO_WEBHOOK = "no such webhook"
HEALTHY: dict[str, Any] = {"consecutive_failures": 0, "paused_until": None, "paused_reason": None}

log = logging.getLogger("ticketdesk.webhooks")

__all__ = ["JobRow", "WebhookRow"]


def _check_target(url: str, settings: Settings) -> None:
    if settings.webhook_allow_private:
        return
    reason = delivery.literal_refusal(url)
    if reason is not None:
        raise BadRequest(f"url: {reason}; only public addresses (WEBHOOK_ALLOW_PRIVATE)")


async def create(
    db: Db, *, data: WebhookCreate, created_by: int, settings: Settings
) -> tuple[WebhookRow, str]:
    """A new endpoint and its signing secret (which is not shown again)."""
    _check_target(data.url, settings)
    secret = delivery.new_secret()
    row = await repository.insert_webhook(
        db,
        url=data.url,
        events=list(data.events),
        secret=secret,
        created_by=created_by,
        now=utcnow(),
    )
    return row, secret


async def list_all(db: Db) -> list[WebhookRow]:
    return await repository.all_webhooks(db)


async def get(db: Db, webhook_id: int) -> WebhookRow:
    row = await repository.webhook(db, webhook_id)
    if row is None:
        raise NotFound(NO_WEBHOOK)
    return row


async def update(db: Db, *, webhook_id: int, data: WebhookUpdate, settings: Settings) -> WebhookRow:
    values: dict[str, Any] = data.model_dump(
        exclude_none=True, include={"url", "events", "is_active"}
    )
    if "url" in values:
        _check_target(values["url"], settings)
    if values.get("is_active") is True or "url" in values:
        # Enabled again, or pointed elsewhere: a fresh start, its waiting calls go at once.
        values.update(HEALTHY)
    if values.get("is_active") is True:
        values["disabled_reason"] = None
    if values and not await repository.update_webhook(db, webhook_id, values):
        raise NotFound(NO_WEBHOOK)
    return await get(db, webhook_id)


async def delete(db: Db, webhook_id: int) -> None:
    """The endpoint goes, and its deliveries with it."""
    if not await repository.delete_webhook(db, webhook_id):
        raise NotFound(NO_WEBHOOK)


async def deliveries(db: Db, *, webhook_id: int, before: int, limit: int) -> list[JobRow]:
    await get(db, webhook_id)
    return await jobs.deliveries(db, webhook_id=webhook_id, before=before, limit=limit)


async def retry(db: Db, *, webhook_id: int, delivery_id: int) -> None:
    """Queue a finished delivery again now, with a fresh schedule of attempts."""
    await get(db, webhook_id)
    if not 0 < delivery_id <= MAX_ID:
        raise NotFound("no such delivery")
    if not await jobs.retry(db, job_id=delivery_id, webhook_id=webhook_id, now=utcnow()):
        if await jobs.delivery(db, webhook_id=webhook_id, job_id=delivery_id) is None:
            raise NotFound("no such delivery")
        raise Conflict("this delivery is still queued or running")


async def given_up(db: Db, *, webhook_id: int, reason: str) -> None:
    """A delivery failed through its whole schedule: the endpoint stops receiving."""
    await repository.update_webhook(db, webhook_id, {"is_active": False, "disabled_reason": reason})


async def call_went_through(db: Db, *, webhook_id: int) -> None:
    """The endpoint answered 2xx: no more failures in a row; a paused one resumes, and its
    waiting calls flow."""
    if await repository.healed(db, webhook_id):
        log.info("webhook endpoint answered again", extra={"webhook_id": webhook_id})


async def call_failed(
    db: Db, *, webhook_id: int, reason: str, now: datetime, settings: Settings
) -> None:
    """Count a failed call; the WEBHOOK_PAUSE_AFTER-th in a row pauses the endpoint, and so
    does each failed probe after it, for twice as long as the pause before (up to the
    maximum). A call that was already in flight when the endpoint paused changes nothing."""
    health = await repository.lock_health(db, webhook_id)
    if health is None or (health.paused_until is not None and health.paused_until > now):
        return
    failures = health.consecutive_failures + 1
    values: dict[str, Any] = {"consecutive_failures": failures}
    if failures >= settings.webhook_pause_after:
        seconds = pause_seconds(failures, settings)
        values["paused_until"] = now + timedelta(seconds=seconds)
        values["paused_reason"] = f"{failures} calls failed in a row; the last: {reason}"
        log.warning(
            "webhook endpoint paused for %g s after %d failed calls in a row",
            seconds,
            failures,
            extra={"webhook_id": webhook_id, "error": reason},
        )
    await repository.update_webhook(db, webhook_id, values)


def pause_seconds(failures: int, settings: Settings) -> float:
    """How long an endpoint with this many failures in a row waits for its next probe."""
    doublings = min(failures - settings.webhook_pause_after, 32)
    seconds: float = settings.webhook_pause_seconds * 2**doublings
    return min(seconds, settings.webhook_pause_max_seconds)
