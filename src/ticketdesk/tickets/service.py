"""Tickets and their messages: what a viewer may do (the rules), and what is kept."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ticketdesk.auth.principal import Viewer
from ticketdesk.db import Db
from ticketdesk.errors import BadRequest, Conflict, Forbidden, NotFound
from ticketdesk.events.repository import Change
from ticketdesk.events.repository import record as record_events
from ticketdesk.models import utcnow
from ticketdesk.pagination import Page, PageRequest
from ticketdesk.schemas import MAX_ID
from ticketdesk.tickets import repository, rules, search, sla
from ticketdesk.tickets.repository import LockedTicket, MessageRow, TicketFilter, TicketRow

NO_TICKET = "no such ticket"
PAGE_MAX_BYTES = 4 * 1024 * 1024
"""A page of messages ends once it holds this much text (one message, at most MAX_BODY_BYTES,
may pass it): a page of a thousand long messages must not take a worker's memory."""
NO_FILTER = TicketFilter()
STAFF_ONLY_LIST = "only staff filter or sort tickets by author, assignee, priority or due time"

__all__ = ["MessageRow", "TicketFilter", "TicketRow"]


async def create_ticket(
    db: Db, *, author: Viewer, topic: str, text: str, policy: sla.Policy
) -> int:
    """Open a ticket; its text is the first message. Returns the ticket's id."""
    now = utcnow()
    return await repository.create_ticket(
        db,
        author_id=author.id,
        topic=topic,
        text=text,
        now=now,
        due=policy.due(now, rules.DEFAULT_PRIORITY),
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
    if not viewer.is_agent and (filters.for_agents_only or sort in repository.AGENT_SORTS):
        raise Forbidden(STAFF_ONLY_LIST)
    if filters.search is not None and not search.terms(filters.search):
        raise BadRequest("q has no word to search for")
    now = utcnow()
    result = await repository.ticket_page(db, viewer, page, filters, sort, now)
    if page.count:
        total = await repository.count_tickets(db, viewer, filters, now)
        return Page(result.items, result.next_cursor, total)
    return result


async def count_tickets_up_to(db: Db, *, viewer: Viewer, filters: TicketFilter, cap: int) -> int:
    """How many tickets the viewer may see match, up to `cap` (cheap on a large queue)."""
    if not viewer.is_agent and filters.for_agents_only:
        raise Forbidden(STAFF_ONLY_LIST)
    return await repository.count_tickets_up_to(db, viewer, filters, utcnow(), cap)


async def get_ticket(db: Db, *, viewer: Viewer, ticket_id: int) -> TicketRow:
    ticket = await repository.get_ticket(db, viewer, ticket_id)
    if ticket is None:
        raise NotFound(NO_TICKET)
    return ticket


async def waiting_on(db: Db, found: list[TicketRow]) -> dict[int, rules.Waiting | None]:
    """Who each of these tickets (read as the viewer may see them) waits on: us, the customer,
    or nobody (closed); what the pages show beside the status."""
    open_ids = [ticket.id for ticket in found if ticket.status in rules.OPEN_STATUSES]
    last = await repository.last_public_types(db, open_ids) if open_ids else {}
    return {ticket.id: rules.waiting_on(ticket.status, last.get(ticket.id)) for ticket in found}


async def author_names(db: Db, *, ticket: TicketRow) -> dict[int, str]:
    """Who wrote on the ticket (which the viewer may see), by id: their usernames."""
    return await repository.author_names(db, ticket.id)


UNCHANGED: Any = object()
"""A field a change leaves as it is (None would mean: set it to nothing)."""


@dataclass(frozen=True)
class TicketChanges:
    status: rules.Status | None = None
    assignee_id: int | None = UNCHANGED
    priority: rules.Priority | None = None


async def change_ticket(
    db: Db, *, viewer: Viewer, ticket_id: int, changes: TicketChanges, policy: sla.Policy
) -> TicketRow:
    """Change status, assignee and priority together: all of them, or nothing.

    The author may cancel; staff set pending, resolved (after a response) or unresolved,
    assign the ticket to an active agent (or to nobody) and set its priority, which moves
    its due times. A canceled ticket changes no more (`rules.check_can_change`). Each change
    is an event.
    """
    assigns = changes.assignee_id is not UNCHANGED
    if not viewer.is_agent and (assigns or changes.priority is not None):
        raise Forbidden("only staff assign tickets and set their priority")
    ticket = await repository.lock_ticket(db, viewer, ticket_id)
    if ticket is None:
        raise NotFound(NO_TICKET)
    now = utcnow()
    values: dict[str, Any] = {}
    log: list[Change] = []
    if changes.status is not None:
        new = changes.status
        has_response = new == "resolved" and await repository.has_response(db, ticket_id)
        if rules.check_status_change(
            ticket.status,
            new,
            is_author=ticket.author_id == viewer.id,
            is_agent=viewer.is_agent,
            has_response=has_response,
        ):
            values.update(status=new, updated_at=now)
            if new == "resolved":
                values["resolved_at"] = now
            log.append(Change("status", {"status": ticket.status}, {"status": new}))
    assignee = changes.assignee_id if assigns else ticket.assignee_id
    rank = ticket.priority if changes.priority is None else rules.priority_rank(changes.priority)
    rules.check_can_change(ticket.status, _differing(ticket, assignee_id=assignee, priority=rank))
    if assignee != ticket.assignee_id:
        if assignee is not None and not (
            0 < assignee <= MAX_ID and await repository.is_active_agent(db, assignee)
        ):
            raise BadRequest("assignee_id must be the id of an active staff member")
        values["assignee_id"] = assignee
        log.append(
            Change("assignee", {"assignee_id": ticket.assignee_id}, {"assignee_id": assignee})
        )
    if rank != ticket.priority:
        values.update(priority=rank, **policy.due(ticket.created_at, rank)._asdict())
        before = {"priority": rules.priority_name(ticket.priority)}
        log.append(Change("priority", before, {"priority": rules.priority_name(rank)}))
    if values:
        await repository.update_ticket(db, ticket_id, values)
        await record_events(db, ticket_id=ticket_id, actor_id=viewer.id, now=now, changes=log)
    return await get_ticket(db, viewer=viewer, ticket_id=ticket_id)


def _differing(ticket: LockedTicket, **wanted: object) -> list[str]:
    """The fields whose wanted value is not the one the ticket has."""
    return [name for name, value in wanted.items() if value != getattr(ticket, name)]


async def change_status(
    db: Db, *, viewer: Viewer, ticket_id: int, status: rules.Status, policy: sla.Policy
) -> TicketRow:
    return await change_ticket(
        db, viewer=viewer, ticket_id=ticket_id, changes=TicketChanges(status=status), policy=policy
    )


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
    rules.message_type(is_agent=viewer.is_agent, internal=internal)  # may a note be written?
    posted = await repository.post_message(db, viewer, ticket_id, text, utcnow(), internal=internal)
    if posted is None:
        raise NotFound(NO_TICKET)
    if posted.message is None:
        rules.check_can_post(posted.status)
        raise AssertionError("the repository refused a message the rules allow")
    return posted.message


async def rate_ticket(
    db: Db, *, viewer: Viewer, ticket_id: int, score: int, comment: str | None
) -> datetime:
    """The author rates their resolved ticket, once. Returns when."""
    ticket = await repository.lock_for_rating(db, author_id=viewer.id, ticket_id=ticket_id)
    if ticket is None:
        raise NotFound(NO_TICKET)
    if ticket.rating_score is not None:
        raise Conflict("this ticket is rated already")
    if ticket.status != "resolved":
        raise Conflict("a ticket can be rated once it is resolved")
    now = utcnow()
    await repository.rate(db, ticket_id=ticket_id, score=score, comment=comment, now=now)
    await record_events(
        db,
        ticket_id=ticket_id,
        actor_id=viewer.id,
        now=now,
        changes=[Change("rating", None, {"score": score, "comment": comment})],
    )
    return now


async def agent_left(db: Db, *, agent_id: int, actor: Viewer | None) -> None:
    """An agent was blocked or lost staff rights: their open tickets go back to the team.

    `actor`: who did it; None for an operator at the command line."""
    actor_id = actor.id if actor is not None else None
    await repository.unassign_agent(db, agent_id=agent_id, actor_id=actor_id, now=utcnow())
