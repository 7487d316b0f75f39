"""The collision notice: which other agents have this ticket open, and who is replying."""

from __future__ import annotations

from datetime import timedelta

from ticketdesk.auth.principal import Viewer
from ticketdesk.db import Db
from ticketdesk.errors import BadRequest, Forbidden
from ticketdesk.models import utcnow
from ticketdesk.presence import repository
from ticketdesk.presence.repository import Present
from ticketdesk.tickets import service as tickets

STATES = ("viewing", "typing")
FRESH = timedelta(seconds=20)
"""A page says it is open every five seconds; one not heard of for this long has gone."""

__all__ = ["Present"]


async def seen(db: Db, *, viewer: Viewer, ticket_id: int, state: str) -> list[Present]:
    """Record that the agent has the ticket open (or is writing); the others who do too."""
    if not viewer.is_agent:
        raise Forbidden("staff only")
    if state not in STATES:
        raise BadRequest("state is viewing or typing")
    await tickets.get_ticket(db, viewer=viewer, ticket_id=ticket_id)
    now = utcnow()
    found = await repository.others(db, ticket_id=ticket_id, user_id=viewer.id, since=now - FRESH)
    await repository.seen(db, ticket_id=ticket_id, user_id=viewer.id, state=state, now=now)
    return found
