"""A ticket's history, and the feed of every ticket's events for integrations and live screens."""

from __future__ import annotations

from ticketdesk.auth.principal import Viewer
from ticketdesk.db import Db
from ticketdesk.errors import Forbidden, NotFound
from ticketdesk.events import repository
from ticketdesk.events.repository import EventRow
from ticketdesk.pagination import Page, PageRequest

__all__ = ["EventRow"]


async def history(db: Db, *, viewer: Viewer, ticket_id: int, page: PageRequest) -> Page[EventRow]:
    """Agents read all of a ticket's events; its author those about public things only.

    With the total the viewer may see, if the page asks (`count=true`)."""
    result = await repository.history(db, viewer, ticket_id, page)
    if result is None:
        raise NotFound("no such ticket")
    if page.count:
        total = await repository.count_history(db, viewer, ticket_id)
        return Page(result.items, result.next_cursor, total)
    return result


async def feed(db: Db, *, viewer: Viewer, after: int, limit: int) -> list[EventRow]:
    """Every ticket's events after the position `after`, oldest first (agents only)."""
    if not viewer.is_agent:
        raise Forbidden("the event feed is for staff only")
    return await repository.feed(db, after=after, limit=limit)


async def position(db: Db, *, viewer: Viewer) -> int:
    """Where a live page's stream starts: after every event its content already shows."""
    if not viewer.is_agent:
        raise Forbidden("the event feed is for staff only")
    return await repository.position(db)
