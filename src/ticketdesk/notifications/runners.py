"""Running the jobs: a mail to the SMTP server, a call to a webhook endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import json

import httpx

from ticketdesk.db import Database, Db
from ticketdesk.jobs.repository import ClaimedJob
from ticketdesk.jobs.worker import JobFailed, Kind, Outcome, Worker
from ticketdesk.mail import outbound
from ticketdesk.mail.outbound import Mail
from ticketdesk.notifications.dispatch import dispatcher
from ticketdesk.settings import Settings
from ticketdesk.webhooks import delivery
from ticketdesk.webhooks import repository as webhooks
from ticketdesk.webhooks import service as webhook_service

FORGOTTEN = "(sent; its secret is not kept)"


def kinds(database: Database, settings: Settings, client: httpx.AsyncClient) -> dict[str, Kind]:
    """What the worker runs, and how (webhook calls through `client`)."""

    async def send_mail(job: ClaimedJob) -> Outcome:
        if not settings.mail_enabled:
            raise JobFailed("mail is off: SMTP_HOST is not set", final=True)
        mail = Mail.model_validate_json(job.payload)
        try:
            code = await outbound.send(outbound.compose(mail, settings), settings)
        except outbound.SendFailed as failure:
            raise JobFailed(failure.reason, code=failure.code, final=failure.final) from failure
        if mail.secret:  # a password reset link: no use to anyone once sent
            kept = mail.model_copy(update={"context": {"link": FORGOTTEN}})
            return Outcome(code, kept.model_dump_json())
        return Outcome(code)

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

    async def disable_webhook(db: Db, job: ClaimedJob, reason: str) -> None:
        assert job.webhook_id is not None
        await webhook_service.given_up(
            db,
            webhook_id=job.webhook_id,
            reason=f"delivery {job.id} failed {job.attempts} times; the last time: {reason}",
        )

    return {
        "mail": Kind(send_mail),
        "webhook": Kind(call_webhook, given_up=disable_webhook),
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
