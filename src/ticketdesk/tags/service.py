"""Tags: agents add and remove them on tickets, and superusers rename, merge or remove one
everywhere. Each change to a ticket's tags is one `tags` event (a staff event)."""

from __future__ import annotations

from collections.abc import Iterable

from ticketdesk.auth.principal import Viewer
from ticketdesk.db import Db
from ticketdesk.errors import NO_TICKET, BadRequest, Forbidden, NotFound
from ticketdesk.events import kinds
from ticketdesk.events.repository import record as record_events
from ticketdesk.models import utcnow
from ticketdesk.tags import policy, repository
from ticketdesk.tags.repository import TagCount

NO_TAG = "no such tag"
STAFF_ONLY = "staff only"

__all__ = ["TagCount"]


def _check_agent(viewer: Viewer) -> None:
    if not viewer.is_agent:
        raise Forbidden(STAFF_ONLY)


async def ticket_tags(db: Db, *, viewer: Viewer, ticket_id: int) -> list[str]:
    _check_agent(viewer)
    if not await repository.ticket_exists(db, ticket_id, lock=False):
        raise NotFound(NO_TICKET)
    return await repository.of_ticket(db, ticket_id)


async def change_tags(
    db: Db,
    *,
    viewer: Viewer,
    ticket_id: int,
    add: Iterable[str] = (),
    remove: Iterable[str] = (),
    replace: Iterable[str] | None = None,
) -> list[str]:
    """The ticket's tags after adding `add` and removing `remove` (or becoming `replace`):
    sorted, at most `policy.MAX_PER_TICKET`. Names are normalized already (the schemas).
    Nothing changes, and no event is written, when the tags stay the same."""
    _check_agent(viewer)
    if not await repository.ticket_exists(db, ticket_id, lock=True):
        raise NotFound(NO_TICKET)
    before = await repository.of_ticket(db, ticket_id)
    wanted = set(before if replace is None else replace)
    after = sorted((wanted | set(add)) - set(remove))
    if after == before:
        return before
    if len(after) > policy.MAX_PER_TICKET:
        raise BadRequest(f"tags: a ticket holds at most {policy.MAX_PER_TICKET} tags")
    await repository.replace(db, ticket_id, after)
    await record_events(
        db,
        ticket_id=ticket_id,
        actor_id=viewer.id,
        now=utcnow(),
        changes=[kinds.TAGS.change(before={"tags": before}, tags=after)],
    )
    return after


async def tags_in_use(db: Db, *, viewer: Viewer, prefix: str, limit: int) -> list[TagCount]:
    _check_agent(viewer)
    return await repository.in_use(db, prefix=prefix, limit=limit)


async def tag_names(db: Db, *, viewer: Viewer, limit: int) -> list[str]:
    """The names of the tags in use, in order (what the console offers as an agent types)."""
    _check_agent(viewer)
    return await repository.names(db, limit=limit)


async def rename_tag(db: Db, *, viewer: Viewer, name: str, new_name: str) -> TagCount:
    """Rename the tag on every ticket; into an existing tag's name: the two are merged."""
    if not viewer.is_superuser:
        raise Forbidden("superusers only")
    old_id = await repository.lock(db, name)
    if old_id is None:
        raise NotFound(NO_TAG)
    if new_name != name:
        await repository.rename(db, old_id=old_id, new=new_name, actor_id=viewer.id, now=utcnow())
    return TagCount(new_name, await repository.count(db, new_name))


async def remove_tag(db: Db, *, viewer: Viewer, name: str) -> None:
    """Take the tag off every ticket, and forget it."""
    if not viewer.is_superuser:
        raise Forbidden("superusers only")
    old_id = await repository.lock(db, name)
    if old_id is None:
        raise NotFound(NO_TAG)
    await repository.rename(db, old_id=old_id, new=None, actor_id=viewer.id, now=utcnow())
