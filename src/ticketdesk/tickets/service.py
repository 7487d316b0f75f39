"""Tickets and their messages: what a viewer may do (the rules), and what is kept."""

from __future__ import annotations

from ticketdesk.auth.principal import Viewer
from ticketdesk.db import Db
from ticketdesk.errors import Forbidden, NotFound
from ticketdesk.models import utcnow
from ticketdesk.pagination import Page, PageRequest
from ticketdesk.tickets import repository, rules
from ticketdesk.tickets.repository import MessageRow, TicketFilter, TicketRow

NO_TICKET = "no such ticket"
NO_FILTER = TicketFilter()

__all__ = ["MessageRow", "TicketFilter", "TicketRow"]


async def create_ticket(db: Db, *, author: Viewer, topic: str, text: str) -> int:
    """Open a ticket; its text is the first message. Returns the ticket's id."""
    return await repository.create_ticket(
        db, author_id=author.id, topic=topic, text=text, now=utcnow()
    )


async def list_tickets(
    db: Db,
    *,
    viewer: Viewer,
    page: PageRequest,
    filters: TicketFilter = NO_FILTER,
    sort: str = "created_at",
) -> Page[TicketRow]:
    """One page of the tickets the viewer may see (and their total, if the page asks)."""
    if not viewer.is_agent and (filters.author_email is not None or filters.author_id is not None):
        raise Forbidden("only staff filter tickets by author")
    result = await repository.ticket_page(db, viewer, page, filters, sort)
    if page.count:
        total = await repository.count_tickets(db, viewer, filters)
        return Page(result.items, result.next_cursor, total)
    return result


async def get_ticket(db: Db, *, viewer: Viewer, ticket_id: int) -> TicketRow:
    ticket = await repository.get_ticket(db, viewer, ticket_id)
    if ticket is None:
        raise NotFound(NO_TICKET)
    return ticket


async def change_status(
    db: Db, *, viewer: Viewer, ticket_id: int, status: rules.Status
) -> TicketRow:
    ticket = await repository.lock_ticket(db, viewer, ticket_id)
    if ticket is None:
        raise NotFound(NO_TICKET)
    has_response = status == "resolved" and await repository.has_response(db, ticket_id)
    if rules.check_status_change(
        ticket.status,
        status,
        is_author=ticket.author_id == viewer.id,
        is_agent=viewer.is_agent,
        has_response=has_response,
    ):
        await repository.set_status(db, ticket_id, status, utcnow())
    return await get_ticket(db, viewer=viewer, ticket_id=ticket_id)


async def list_messages(
    db: Db, *, viewer: Viewer, ticket_id: int, page: PageRequest
) -> Page[MessageRow]:
    """One page of the ticket's messages, oldest first (and their total, if the page asks)."""
    result = await repository.message_page(db, viewer, ticket_id, page)
    if result is None:
        raise NotFound(NO_TICKET)
    if page.count:
        total = await repository.count_messages(db, ticket_id)
        return Page(result.items, result.next_cursor, total)
    return result


async def post_message(db: Db, *, viewer: Viewer, ticket_id: int, text: str) -> MessageRow:
    """A request from the customer, a response from staff; a customer's reopens the ticket."""
    posted = await repository.post_message(db, viewer, ticket_id, text, utcnow())
    if posted is None:
        raise NotFound(NO_TICKET)
    if posted.message is None:
        rules.check_can_post(posted.status)
        raise AssertionError("the repository refused a message the rules allow")
    return posted.message
