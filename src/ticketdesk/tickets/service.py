"""Tickets: what a viewer may see and change of them (by the rules of `policy.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ticketdesk import sla
from ticketdesk.auth.principal import Viewer
from ticketdesk.db import Db
from ticketdesk.errors import NO_TICKET, BadRequest, Conflict, Forbidden, NotFound
from ticketdesk.events import kinds
from ticketdesk.events.kinds import Change
from ticketdesk.events.repository import record as record_events
from ticketdesk.models import utcnow
from ticketdesk.pagination import Page, PageRequest
from ticketdesk.schemas import MAX_ID
from ticketdesk.tickets import policy, repository, search, writes
from ticketdesk.tickets.filters import AGENT_SORTS, TicketFilter
from ticketdesk.tickets.repository import LockedTicket, TicketRow

NO_FILTER = TicketFilter()
STAFF_ONLY_LIST = (
    "only staff filter or sort tickets by author, assignee, priority, due time or tags"
)

__all__ = ["TicketFilter", "TicketRow"]


async def create_ticket(
    db: Db, *, author: Viewer, topic: str, text: str, sla_policy: sla.Policy
) -> int:
    """Open a ticket; its text is the first message. Returns the ticket's id."""
    now = utcnow()
    return await writes.create_ticket(
        db,
        author_id=author.id,
        topic=topic,
        text=text,
        now=now,
        due=sla_policy.due(now, policy.DEFAULT_PRIORITY),
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
    if not viewer.is_agent and (filters.for_agents_only or sort in AGENT_SORTS):
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


async def waiting_on(db: Db, found: list[TicketRow]) -> dict[int, policy.Waiting | None]:
    """Who each of these tickets (read as the viewer may see them) waits on: us, the customer,
    or nobody (closed); what the pages show beside the status."""
    open_ids = [ticket.id for ticket in found if ticket.status in policy.OPEN_STATUSES]
    last = await repository.last_public_types(db, open_ids) if open_ids else {}
    return {ticket.id: policy.waiting_on(ticket.status, last.get(ticket.id)) for ticket in found}


UNCHANGED: Any = object()
"""A field a change leaves as it is (None would mean: set it to nothing)."""


@dataclass(frozen=True)
class TicketChanges:
    status: policy.Status | None = None
    assignee_id: int | None = UNCHANGED
    priority: policy.Priority | None = None


async def change_ticket(
    db: Db, *, viewer: Viewer, ticket_id: int, changes: TicketChanges, sla_policy: sla.Policy
) -> TicketRow:
    """Change status, assignee and priority together: all of them, or nothing.

    The author may cancel; staff set pending, resolved (after a response) or unresolved,
    assign the ticket to an active agent (or to nobody) and set its priority, which moves
    its due times. A canceled ticket changes no more (`policy.check_can_change`). Each change
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
        has_response = policy.needs_response(new) and await repository.has_response(db, ticket_id)
        if policy.check_status_change(
            ticket.status,
            new,
            is_author=ticket.author_id == viewer.id,
            is_agent=viewer.is_agent,
            has_response=has_response,
        ):
            values.update(status=new, updated_at=now)
            if new == policy.RESOLVED:
                values["resolved_at"] = now
            log.append(kinds.STATUS.change(before={"status": ticket.status}, status=new))
    assignee = changes.assignee_id if assigns else ticket.assignee_id
    rank = ticket.priority if changes.priority is None else policy.priority_rank(changes.priority)
    policy.check_can_change(ticket.status, _differing(ticket, assignee_id=assignee, priority=rank))
    if assignee != ticket.assignee_id:
        if assignee is not None and not (
            0 < assignee <= MAX_ID and await repository.may_be_assigned(db, assignee)
        ):
            raise BadRequest(policy.NOT_ASSIGNABLE)
        values["assignee_id"] = assignee
        assigned = {"assignee_id": ticket.assignee_id}
        log.append(kinds.ASSIGNEE.change(before=assigned, assignee_id=assignee))
    if rank != ticket.priority:
        values.update(priority=rank, **sla_policy.due(ticket.created_at, rank)._asdict())
        before = {"priority": policy.priority_name(ticket.priority)}
        log.append(kinds.PRIORITY.change(before=before, priority=policy.priority_name(rank)))
    if values:
        await repository.update_ticket(db, ticket_id, values)
        await record_events(db, ticket_id=ticket_id, actor_id=viewer.id, now=now, changes=log)
    return await get_ticket(db, viewer=viewer, ticket_id=ticket_id)


def _differing(ticket: LockedTicket, **wanted: object) -> list[str]:
    """The fields whose wanted value is not the one the ticket has."""
    return [name for name, value in wanted.items() if value != getattr(ticket, name)]


async def change_status(
    db: Db, *, viewer: Viewer, ticket_id: int, status: policy.Status, sla_policy: sla.Policy
) -> TicketRow:
    return await change_ticket(
        db,
        viewer=viewer,
        ticket_id=ticket_id,
        changes=TicketChanges(status=status),
        sla_policy=sla_policy,
    )


async def rate_ticket(
    db: Db, *, viewer: Viewer, ticket_id: int, score: int, comment: str | None
) -> datetime:
    """The author rates their resolved ticket, once. Returns when."""
    ticket = await repository.lock_for_rating(db, author_id=viewer.id, ticket_id=ticket_id)
    if ticket is None:
        raise NotFound(NO_TICKET)
    if ticket.rating_score is not None:
        raise Conflict("this ticket is rated already")
    policy.check_can_rate(ticket.status)
    now = utcnow()
    await repository.rate(db, ticket_id=ticket_id, score=score, comment=comment, now=now)
    await record_events(
        db,
        ticket_id=ticket_id,
        actor_id=viewer.id,
        now=now,
        changes=[kinds.RATING.change(score=score, comment=comment)],
    )
    return now


async def agent_left(db: Db, *, agent_id: int, actor: Viewer | None) -> None:
    """An agent was blocked or lost staff rights: their open tickets go back to the team.

    `actor`: who did it; None for an operator at the command line."""
    actor_id = actor.id if actor is not None else None
    await writes.unassign_agent(db, agent_id=agent_id, actor_id=actor_id, now=utcnow())
