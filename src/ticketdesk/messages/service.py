"""A ticket's messages: what a viewer may read of them and what they may write.

A customer writes requests on their own tickets; an agent writes responses, or internal
notes no customer ever reads. What a message does to its ticket (a customer's reply
reopens it) and who may write what are the ticket rules (`tickets/policy.py`).
"""

from __future__ import annotations

from ticketdesk.auth.principal import Viewer
from ticketdesk.db import Db
from ticketdesk.errors import NO_TICKET, NotFound
from ticketdesk.messages import repository
from ticketdesk.messages.repository import MessageRow
from ticketdesk.models import utcnow
from ticketdesk.pagination import Page, PageRequest
from ticketdesk.tickets import policy
from ticketdesk.tickets.service import TicketRow

__all__ = ["MessageRow"]

PAGE_MAX_BYTES = 4 * 1024 * 1024
"""A page of messages ends once it holds this much text (one message, at most MAX_BODY_BYTES,
may pass it): a page of a thousand long messages must not take a worker's memory."""


async def list_messages(
    db: Db, *, viewer: Viewer, ticket_id: int, page: PageRequest
) -> Page[MessageRow]:
    """One page of the ticket's messages, oldest first (and their total, if the page asks)."""
    result = await repository.message_page(db, viewer, ticket_id, page, max_bytes=PAGE_MAX_BYTES)
    if result is None:
        raise NotFound(NO_TICKET)
    if page.count:
        total = await repository.count_messages(db, viewer, ticket_id)
        return Page(result.items, result.next_cursor, total)
    return result


async def post_message(
    db: Db, *, viewer: Viewer, ticket_id: int, text: str, internal: bool = False
) -> MessageRow:
    """A request from the customer, a response or an internal note from staff.

    A customer's request reopens a resolved ticket; a note changes nothing a customer sees.
    """
    policy.message_type(is_agent=viewer.is_agent, internal=internal)  # may a note be written?
    posted = await repository.post_message(db, viewer, ticket_id, text, utcnow(), internal=internal)
    if posted is None:
        raise NotFound(NO_TICKET)
    if posted.message is None:
        policy.check_can_post(posted.status)
        raise AssertionError("the repository refused a message the rules allow")
    return posted.message


async def author_names(db: Db, *, ticket: TicketRow) -> dict[int, str]:
    """Who wrote on the ticket (which the viewer may see), by id: their usernames."""
    return await repository.author_names(db, ticket.id)
