"""What an agent's ticket page shows beside the thread: the ticket's history, the
customer's other tickets, and the agents it may be assigned to."""

from __future__ import annotations

from typing import Any

from ticketdesk.auth.principal import Viewer
from ticketdesk.db import Db
from ticketdesk.events import service as events
from ticketdesk.models import utcnow
from ticketdesk.pages.common import rows
from ticketdesk.tags import service as tag_service
from ticketdesk.tickets import service as tickets
from ticketdesk.tickets.filters import TicketFilter
from ticketdesk.tickets.repository import TicketRow
from ticketdesk.users import service as users

AGENT_CHOICES = 100
"""Agents offered in an assignee list (by name)."""
HISTORY_SIZE = 500
TAG_CHOICES = 500
"""Tags in use offered as an agent types one (by name)."""
OTHER_TICKETS = 10
"""The customer's other tickets beside a ticket (the latest; one of them may be this one)."""


async def around_the_thread(db: Db, viewer: Viewer, ticket: TicketRow) -> dict[str, Any]:
    history = await events.history(
        db,
        viewer=viewer,
        ticket_id=ticket.id,
        page=rows(HISTORY_SIZE),
    )
    others = await tickets.list_tickets(
        db,
        viewer=viewer,
        page=rows(OTHER_TICKETS),
        filters=TicketFilter(author_email=ticket.author),
        sort="-updated_at",
    )
    agents = await users.active_agents(db, AGENT_CHOICES)
    return {
        "tag_choices": await tag_service.tag_names(db, viewer=viewer, limit=TAG_CHOICES),
        "history": history.items,
        "others": [other for other in others.items if other.id != ticket.id],
        "agents": agents,
        "agent_names": {agent.id: agent.username for agent in agents},
        "now": utcnow(),
    }
