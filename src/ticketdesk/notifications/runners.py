"""Running the jobs: a mail to the SMTP server, a call to a webhook endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import datetime

import httpx

from ticketdesk.db import Database, Db
from ticketdesk.jobs import repository as jobs
from ticketdesk.jobs.repository import ClaimedJob
from ticketdesk.jobs.worker import JobFailed, Kind, Outcome, Worker
from ticketdesk.mail import outbound
from ticketdesk.mail.outbound import Mail
from ticketdesk.models import utcnow
from ticketdesk.notifications.dispatch import dispatcher
from ticketdesk.settings import Settings
from ticketdesk.webhooks import delivery
from ticketdesk.webhooks import repository as webhooks
from ticketdesk.webhooks import service as webhook_service

FORGOTTEN = "(sent; its secret is not kept)"


def kinds(database: Database, settings: Settings, client: httpx.AsyncClient) -> dict[str, Kind]:
    """What the worker runs, and how (webhook calls through `client`): mail first, in its
    own lane, so no webhook receiver can keep a mail waiting."""

    async def send_mail(job: ClaimedJob) -> Outcome:
        if not settings.mail_enabled:
            raise JobFailed("mail is off: SMTP_HOST is not set", final=True)
        mail = Mail.model_validate_json(job.payload)
        try:
            # aiosmtplib's own timeout bounds each reply, not the whole exchange.
            async with asyncio.timeout(settings.smtp_timeout):
                code, leave = await outbound.send(outbound.compose(mail, settings), settings)
        except TimeoutError as exc:
            raise JobFailed(
                f"the SMTP server did not take the mail within {settings.smtp_timeout:g} s"
            ) from exc
        except outbound.SendFailed as failure:
            raise JobFailed(failure.reason, code=failure.code, final=failure.final) from failure
        if mail.secret:  # a password reset link: no use to anyone once sent
            kept = mail.model_copy(update={"context": {"link": FORGOTTEN}})
            return Outcome(code, kept.model_dump_json(), then=leave)
        return Outcome(code, then=leave)

    async def call_webhook(job: ClaimedJob) -> Outcome:
        assert job.webhook_id is not None
        async with database.session() as db:
            endpoint = await webhooks.endpoint(db, job.webhook_id)
        if endpoint is None:
            raise JobFailed("the webhook was deleted", final=True)
        if not endpoint.is_active:
            raise JobFailed("the webhook is disabled", final=True)
        try:
            code = await delivery.call(
                client,
                endpoint.url,
                secret=endpoint.secret,
                message_id=job.key.replace(":", "_"),
                body=json.loads(job.payload)["body"],
                timeout=settings.webhook_timeout,
                allow_private=settings.webhook_allow_private,
            )
        except delivery.Refused as refusal:
            raise JobFailed(refusal.reason, code=refusal.code) from refusal
        return Outcome(code)

    async def claim_mail(
        db: Db, now: datetime, lease_end: datetime, limit: int
    ) -> list[ClaimedJob]:
        return await jobs.claim(db, kind="mail", now=now, lease_end=lease_end, limit=limit)

    async def claim_calls(
        db: Db, now: datetime, lease_end: datetime, limit: int
    ) -> list[ClaimedJob]:
        return await jobs.claim_calls(
            db,
            now=now,
            lease_end=lease_end,
            limit=limit,
            per_endpoint=settings.webhook_endpoint_concurrency,
        )

    async def call_went_through(db: Db, job: ClaimedJob) -> None:
        assert job.webhook_id is not None
        await webhook_service.call_went_through(db, webhook_id=job.webhook_id)

    async def call_failed(db: Db, job: ClaimedJob, reason: str) -> None:
        assert job.webhook_id is not None
        await webhook_service.call_failed(
            db, webhook_id=job.webhook_id, reason=reason, now=utcnow(), settings=settings
        )

    async def disable_webhook(db: Db, job: ClaimedJob, reason: str) -> None:
        assert job.webhook_id is not None
        await webhook_service.given_up(
            db,
            webhook_id=job.webhook_id,
            reason=f"delivery {job.id} failed {job.attempts} times; the last time: {reason}",
        )

    return {
        "mail": Kind(
            send_mail, claim_mail, slots=settings.mail_concurrency, deadline=settings.smtp_timeout
        ),
        "webhook": Kind(
            call_webhook,
            claim_calls,
            slots=settings.webhook_concurrency,
            deadline=settings.webhook_timeout,
            succeeded=call_went_through,
            failed=call_failed,
            given_up=disable_webhook,
        ),
    }


def worker(database: Database, settings: Settings) -> Worker:
    """The worker of this process: the events' jobs, run as above."""
    client = delivery.http_client()
    return Worker(
        database,
        settings,
        kinds(database, settings, client),
        dispatcher(settings),
        closing=client.aclose,
    )


def start_worker(database: Database, settings: Settings) -> asyncio.Task[None]:
    return asyncio.get_running_loop().create_task(
        worker(database, settings).run(), name="job worker"
    )


async def stop_worker(task: asyncio.Task[None], seconds: float) -> None:
    """Stop taking jobs; the jobs in hand get `seconds` to finish (else their lease ends
    and another worker runs them again)."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
        async with asyncio.timeout(seconds):
            await task
