"""Events become jobs: the mails each one sends, and a call to each webhook subscribed.

Runs in the worker (`jobs/worker.py`), in one transaction per batch of events with the
dispatcher's cursor, so every event is turned into its jobs exactly once. Each job's key is
stable (the event, and the recipient or endpoint): dispatching again queues nothing twice.

Who is mailed:
- the customer: their ticket was received; an agent answered (with the answer); it was
  resolved (with a link to rate it);
- agents: a new ticket, and a customer's reply; to the ticket's assignee, or to every
  active agent while it has none, each as they chose on their account (never the one who
  wrote it). Internal notes, assignment and priority are never mailed to anyone.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ticketdesk.db import Db
from ticketdesk.events import policy as event_policy
from ticketdesk.events import repository as events
from ticketdesk.events.repository import EventRow
from ticketdesk.events.schemas import EventOut
from ticketdesk.jobs import repository as jobs
from ticketdesk.jobs.repository import NewJob
from ticketdesk.mail import addresses
from ticketdesk.mail.outbound import Mail
from ticketdesk.models import utcnow
from ticketdesk.notifications import repository
from ticketdesk.notifications.repository import Agent, EventContext
from ticketdesk.settings import Settings
from ticketdesk.tickets import policy as ticket_policy
from ticketdesk.webhooks import repository as webhooks
from ticketdesk.webhooks.schemas import call_body

BATCH = 100
CUSTOMER = "c"
AGENTS = "a"


@dataclass
class _Batch:
    """What one batch of events reads once: the subscribed endpoints, the agents."""

    subscribers: list[tuple[int, frozenset[str]]]
    agents: list[Agent] | None = None
    jobs: list[NewJob] = field(default_factory=list)


def dispatcher(settings: Settings) -> Callable[[Db], Awaitable[int]]:
    """The worker's dispatch step, under these settings."""

    async def dispatch(db: Db) -> int:
        return await dispatch_events(db, settings)

    return dispatch


async def dispatch_events(db: Db, settings: Settings) -> int:
    """Queue the jobs of the next batch of events past the cursor; how many events."""
    position = await jobs.lock_cursor(db)
    if position is None:
        return 0  # another worker is dispatching
    rows = await events.feed(db, after=position, limit=BATCH)
    if not rows:
        return 0
    batch = _Batch(subscribers=await webhooks.subscribers(db))
    for row in rows:
        for webhook_id, kinds in batch.subscribers:
            if row.kind in kinds:
                batch.jobs.append(_webhook_call(row, webhook_id))
        if settings.mail_enabled:
            await _mails(db, settings, row, batch)
    await jobs.queue(db, batch.jobs, now=utcnow())
    await jobs.move_cursor(db, rows[-1].id)
    return len(rows)


def _webhook_call(row: EventRow, webhook_id: int) -> NewJob:
    body = json.dumps(call_body(EventOut.of(row)), separators=(",", ":"))
    return NewJob(
        key=f"webhook:{webhook_id}:{row.id}",
        kind="webhook",
        payload=json.dumps({"body": body}),
        event_id=row.id,
        webhook_id=webhook_id,
    )


async def _mails(db: Db, settings: Settings, row: EventRow, batch: _Batch) -> None:
    after = json.loads(row.after) if row.after else {}
    if row.kind not in event_policy.MAILED_KINDS:
        return  # notes, assignment, priority and ratings stay in the building
    if row.kind == "status" and after.get("status") != ticket_policy.RESOLVED:
        return  # of status changes, only resolving tells the customer
    message_id = after.get("message_id") if row.kind in ("created", "message") else None
    context = await repository.event_context(db, ticket_id=row.ticket_id, message_id=message_id)
    if context is None:
        return
    mails = _Mails(settings, row, context)
    if row.kind == "created":
        # Opened by mail: the receipt answers that mail, in the customer's own thread.
        opened_by = await repository.first_mail(db, row.ticket_id)
        mails.to_customer("received", first=True, answers=opened_by)
        mails.to_agents("new_ticket", await _agents(db, batch), first=True)
    elif row.kind == "status":
        mails.to_customer("resolved")
    elif context.message_type == "request" and context.message_author_id == context.author_id:
        mails.to_agents("customer_reply", await _agents(db, batch))
    elif context.message_type in ("response", "other") and row.actor_id != context.author_id:
        mails.to_customer("agent_reply")
    batch.jobs.extend(mails.jobs)


async def _agents(db: Db, batch: _Batch) -> list[Agent]:
    if batch.agents is None:
        batch.agents = await repository.agents(db)
    return batch.agents


class _Mails:
    """The mails of one event, as jobs."""

    def __init__(self, settings: Settings, row: EventRow, context: EventContext) -> None:
        self.settings = settings
        self.row = row
        self.ticket = context
        self.domain = settings.reply_domain
        self.jobs: list[NewJob] = []

    def _link(self) -> str:
        return f"{self.settings.base_url}/app/tickets/{self.ticket.ticket_id}"

    def _queue(self, mail: Mail, recipient_id: int) -> None:
        self.jobs.append(
            NewJob(
                key=f"mail:{self.row.id}:{recipient_id}",
                kind="mail",
                payload=mail.model_dump_json(),
                event_id=self.row.id,
            )
        )

    def _context(self) -> dict[str, object]:
        ticket = self.ticket
        return {
            "ticket_id": ticket.ticket_id,
            "topic": ticket.topic,
            "text": ticket.message_text or "",
            "author": ticket.message_author_name or ticket.author_name,
            "author_email": ticket.author_email,
            "link": self._link(),
        }

    def _subject(self, first: bool) -> str:
        subject = f"[#{self.ticket.ticket_id}] {self.ticket.topic}"
        return subject if first else f"Re: {subject}"

    def to_customer(
        self, template: str, *, first: bool = False, answers: str | None = None
    ) -> None:
        ticket = self.ticket
        if not ticket.author_active:
            return
        root = addresses.thread_root(ticket.ticket_id, self.domain, audience=CUSTOMER)
        context = self._context()
        if template == "resolved":
            context["rate_link"] = f"{self._link()}#rate"
        mail = Mail(
            to=ticket.author_email,
            to_name=ticket.author_name,
            subject=self._subject(first),
            template=template,
            context=context,
            message_id=root
            if first
            else addresses.message_id(ticket.ticket_id, self.domain, f"e{self.row.id}"),
            thread=answers if first else root,
            reply_to=addresses.reply_address(
                self.settings.signing_key(),
                support_address=self.settings.support_address,
                domain=self.domain,
                ticket_id=ticket.ticket_id,
            ),
        )
        self._queue(mail, ticket.author_id)

    def to_agents(self, template: str, agents: list[Agent], *, first: bool = False) -> None:
        ticket = self.ticket
        assigned = [agent for agent in agents if agent.id == ticket.assignee_id]
        root = addresses.thread_root(ticket.ticket_id, self.domain, audience=AGENTS)
        for agent in assigned or agents:
            wants = agent.mail_new_tickets if first else agent.mail_customer_replies
            if agent.id == self.row.actor_id or not wants:
                continue
            mail = Mail(
                to=agent.email,
                to_name=agent.username,
                subject=self._subject(first),
                template=template,
                context=self._context(),
                message_id=root
                if first
                else addresses.message_id(
                    ticket.ticket_id, self.domain, f"e{self.row.id}", f"u{agent.id}"
                ),
                thread=None if first else root,
            )
            self._queue(mail, agent.id)
