"""The SQL the dispatcher reads: an event's ticket, people and message, and the agents."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import bindparam, select

from ticketdesk.auth import policy as roles
from ticketdesk.db import Db, Statement
from ticketdesk.mail.keys import message_id_of
from ticketdesk.models import inbound_mails, messages, tickets, users


class EventContext(NamedTuple):
    ticket_id: int
    topic: str
    author_id: int
    assignee_id: int | None
    author_email: str
    author_name: str
    author_active: bool
    message_text: str | None
    message_type: str | None
    message_author_id: int | None
    message_author_name: str | None


class Agent(NamedTuple):
    id: int
    email: str
    username: str
    mail_new_tickets: bool
    mail_customer_replies: bool


_author = users.alias("author")
_writer = users.alias("writer")
_CONTEXT = Statement(
    select(
        tickets.c.id,
        tickets.c.topic,
        tickets.c.author_id,
        tickets.c.assignee_id,
        _author.c.email,
        _author.c.username,
        _author.c.is_active,
        messages.c.text,
        messages.c.type,
        messages.c.author_id,
        _writer.c.username,
    )
    .select_from(
        tickets.join(_author, _author.c.id == tickets.c.author_id)
        .outerjoin(
            messages,
            (messages.c.id == bindparam("message_id", type_=messages.c.id.type))
            & (messages.c.ticket_id == tickets.c.id),
        )
        .outerjoin(_writer, _writer.c.id == messages.c.author_id)
    )
    .where(tickets.c.id == bindparam("ticket_id"))
)


async def event_context(db: Db, *, ticket_id: int, message_id: int | None) -> EventContext | None:
    """The ticket an event is about (None once deleted), with the event's message if any."""
    row = await db.first(_CONTEXT, {"ticket_id": ticket_id, "message_id": message_id})
    return EventContext(*row) if row is not None else None


_FIRST_MAIL = Statement(
    select(inbound_mails.c.message_id)
    .where(inbound_mails.c.ticket_id == bindparam("ticket_id"))
    .order_by(inbound_mails.c.received_at)
    .limit(1)
)


async def first_mail(db: Db, ticket_id: int) -> str | None:
    """The Message-ID of the mail that opened the ticket, if one did."""
    row = await db.first(_FIRST_MAIL, {"ticket_id": ticket_id})
    return message_id_of(str(row[0])) if row is not None else None


_AGENTS = Statement(
    select(
        users.c.id,
        users.c.email,
        users.c.username,
        users.c.mail_new_tickets,
        users.c.mail_customer_replies,
    )
    .where(roles.ACTIVE_AGENT)
    .order_by(users.c.id)
)


async def agents(db: Db) -> list[Agent]:
    return [Agent(*row) for row in await db.all(_AGENTS)]
