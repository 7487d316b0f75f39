"""Tickets and their messages. Every query is scoped to what the viewer may see."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketdesk.auth.dependencies import AuthUser
from ticketdesk.db import Record
from ticketdesk.errors import NotFound
from ticketdesk.models import messages, tickets, users, utcnow
from ticketdesk.tickets import rules

_TICKET_COLUMNS = (
    tickets.c.id,
    tickets.c.created_at,
    tickets.c.updated_at,
    tickets.c.topic,
    tickets.c.status,
)
_MESSAGE_COLUMNS = (
    messages.c.id,
    messages.c.created_at,
    messages.c.type,
    messages.c.text,
)
_NO_TICKET = "no such ticket"


def _tickets_for(viewer: AuthUser) -> Select[*tuple[Any, ...]]:
    """Staff see every ticket with its author's email; a customer sees only their own."""
    if viewer.is_agent:
        return select(*_TICKET_COLUMNS, users.c.email.label("author")).join(
            users, users.c.id == tickets.c.author_id
        )
    return select(*_TICKET_COLUMNS).where(tickets.c.author_id == viewer.id)


def _oldest_first(query: Select[*tuple[Any, ...]]) -> Select[*tuple[Any, ...]]:
    return query.order_by(tickets.c.created_at, tickets.c.id)


async def create_ticket(conn: AsyncConnection, *, author: AuthUser, topic: str, text: str) -> int:
    """The ticket, its first message (a request) and the author's ticket count, in one go."""
    now = utcnow()
    ticket_id: int = (
        await conn.execute(
            insert(tickets)
            .values(
                author_id=author.id,
                topic=topic,
                status="pending",
                created_at=now,
                updated_at=now,
            )
            .returning(tickets.c.id)
        )
    ).scalar_one()
    await conn.execute(
        insert(messages).values(
            ticket_id=ticket_id,
            author_id=author.id,
            type="request",
            text=text,
            created_at=now,
        )
    )
    await conn.execute(
        update(users).where(users.c.id == author.id).values(tickets_count=users.c.tickets_count + 1)
    )
    return ticket_id


async def list_tickets(conn: AsyncConnection, *, viewer: AuthUser) -> Sequence[Record]:
    return (await conn.execute(_oldest_first(_tickets_for(viewer)))).all()


async def list_tickets_by(
    conn: AsyncConnection, *, viewer: AuthUser, author_id: int
) -> Sequence[Record]:
    query = _oldest_first(_tickets_for(viewer).where(tickets.c.author_id == author_id))
    return (await conn.execute(query)).all()


async def get_ticket(conn: AsyncConnection, *, viewer: AuthUser, ticket_id: int) -> Record:
    query = _tickets_for(viewer).where(tickets.c.id == ticket_id)
    row = (await conn.execute(query)).one_or_none()
    if row is None:
        raise NotFound(_NO_TICKET)
    return row


async def _lock_ticket(conn: AsyncConnection, *, viewer: AuthUser, ticket_id: int) -> Record:
    """The ticket's author and status, row-locked until the transaction ends."""
    query = select(tickets.c.author_id, tickets.c.status).where(tickets.c.id == ticket_id)
    if not viewer.is_agent:
        query = query.where(tickets.c.author_id == viewer.id)
    row = (await conn.execute(query.with_for_update())).one_or_none()
    if row is None:
        raise NotFound(_NO_TICKET)
    return row


async def change_status(
    conn: AsyncConnection, *, viewer: AuthUser, ticket_id: int, status: rules.Status
) -> Record:
    ticket = await _lock_ticket(conn, viewer=viewer, ticket_id=ticket_id)
    has_response = (
        status == "resolved"
        and (
            await conn.execute(
                select(
                    exists().where(messages.c.ticket_id == ticket_id, messages.c.type == "response")
                )
            )
        ).scalar_one()
    )
    if rules.check_status_change(
        ticket.status,
        status,
        is_author=ticket.author_id == viewer.id,
        is_agent=viewer.is_agent,
        has_response=has_response,
    ):
        await conn.execute(
            update(tickets)
            .where(tickets.c.id == ticket_id)
            .values(status=status, updated_at=utcnow())
        )
    return await get_ticket(conn, viewer=viewer, ticket_id=ticket_id)


async def list_messages(
    conn: AsyncConnection, *, viewer: AuthUser, ticket_id: int
) -> Sequence[Record]:
    await get_ticket(conn, viewer=viewer, ticket_id=ticket_id)
    query = (
        select(*_MESSAGE_COLUMNS).where(messages.c.ticket_id == ticket_id).order_by(messages.c.id)
    )
    return (await conn.execute(query)).all()


async def post_message(
    conn: AsyncConnection, *, viewer: AuthUser, ticket_id: int, text: str
) -> Record:
    ticket = await _lock_ticket(conn, viewer=viewer, ticket_id=ticket_id)
    rules.check_can_post(ticket.status)
    now = utcnow()
    message = (
        await conn.execute(
            insert(messages)
            .values(
                ticket_id=ticket_id,
                author_id=viewer.id,
                type=rules.message_type(is_agent=viewer.is_agent),
                text=text,
                created_at=now,
            )
            .returning(*_MESSAGE_COLUMNS)
        )
    ).one()
    await conn.execute(
        update(tickets)
        .where(tickets.c.id == ticket_id)
        .values(
            updated_at=now,
            status=rules.status_after_message(ticket.status, is_agent=viewer.is_agent),
        )
    )
    return message
