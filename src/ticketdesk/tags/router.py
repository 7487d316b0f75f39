"""The API of tags, for agents: a ticket's tags, the tags in use, and (for superusers) a tag
renamed, merged or removed everywhere. Customers never see tags: every route is staff only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from ticketdesk.auth.dependencies import StaffUser
from ticketdesk.schemas import ObjectId
from ticketdesk.tags import policy, service
from ticketdesk.tags.schemas import TagCount, TagList, TagName, TagRename, TicketTags
from ticketdesk.web.errors import responses
from ticketdesk.web.ratelimits import WritesLimited
from ticketdesk.web.routing import DbHandle, Route

router = APIRouter(tags=["tags"], route_class=Route)

TagInPath = Annotated[TagName, Path(description=policy.RULE)]


@router.get("/tickets/{ticket_id}/tags", responses=responses(400, 401, 403, 404))
async def get_ticket_tags(ticket_id: ObjectId, user: StaffUser, db: DbHandle) -> TicketTags:
    """The ticket's tags, sorted. Staff only."""
    return TicketTags(tags=await service.ticket_tags(db, viewer=user, ticket_id=ticket_id))


@router.put(
    "/tickets/{ticket_id}/tags",
    responses=responses(400, 401, 403, 404, 429),
    dependencies=[WritesLimited],
)
async def set_ticket_tags(
    ticket_id: ObjectId, body: TagList, user: StaffUser, db: DbHandle
) -> TicketTags:
    """The ticket's tags become exactly these (at most 50). Staff only."""
    after = await service.change_tags(db, viewer=user, ticket_id=ticket_id, replace=body.tags)
    return TicketTags(tags=after)


@router.post(
    "/tickets/{ticket_id}/tags",
    responses=responses(400, 401, 403, 404, 429),
    dependencies=[WritesLimited],
)
async def add_ticket_tags(
    ticket_id: ObjectId, body: TagList, user: StaffUser, db: DbHandle
) -> TicketTags:
    """Add these tags to the ticket (those it holds already are kept once). Staff only."""
    after = await service.change_tags(db, viewer=user, ticket_id=ticket_id, add=body.tags)
    return TicketTags(tags=after)


@router.delete(
    "/tickets/{ticket_id}/tags/{name}",
    responses=responses(400, 401, 403, 404, 429),
    dependencies=[WritesLimited],
)
async def remove_ticket_tag(
    ticket_id: ObjectId, name: TagInPath, user: StaffUser, db: DbHandle
) -> TicketTags:
    """Take one tag off the ticket (a tag it does not hold: no change). Staff only."""
    after = await service.change_tags(db, viewer=user, ticket_id=ticket_id, remove=[name])
    return TicketTags(tags=after)


@router.get("/tags", responses=responses(400, 401, 403))
async def list_tags(
    user: StaffUser,
    db: DbHandle,
    prefix: Annotated[
        str, Query(max_length=policy.MAX_LENGTH, description="only tags beginning with it")
    ] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[TagCount]:
    """The tags some ticket holds, with how many tickets hold each: the most used first.

    `prefix` completes what an agent is typing. Staff only.
    """
    found = await service.tags_in_use(db, viewer=user, prefix=prefix.strip().lower(), limit=limit)
    return [TagCount(name=tag.name, tickets=tag.tickets) for tag in found]


@router.patch(
    "/tags/{name}",
    responses=responses(400, 401, 403, 404, 409, 429),
    dependencies=[WritesLimited],
)
async def rename_tag(name: TagInPath, body: TagRename, user: StaffUser, db: DbHandle) -> TagCount:
    """Rename the tag on every ticket; to an existing tag's name: the two are merged. Each
    ticket it changes gets a `tags` event. Superusers only."""
    renamed = await service.rename_tag(db, viewer=user, name=name, new_name=body.name)
    return TagCount(name=renamed.name, tickets=renamed.tickets)


@router.delete(
    "/tags/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(400, 401, 403, 404, 429),
    dependencies=[WritesLimited],
)
async def delete_tag(name: TagInPath, user: StaffUser, db: DbHandle) -> Response:
    """Take the tag off every ticket (each gets a `tags` event). Superusers only."""
    await service.remove_tag(db, viewer=user, name=name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
