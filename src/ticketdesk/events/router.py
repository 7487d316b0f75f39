from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from ticketdesk.auth.dependencies import CurrentUser
from ticketdesk.events import service
from ticketdesk.events.schemas import EventOut
from ticketdesk.pagination import DEFAULT_LIMIT, MAX_LIMIT
from ticketdesk.schemas import MAX_ID, ObjectId
from ticketdesk.web.errors import responses
from ticketdesk.web.pagination import PageParams, add_page_headers
from ticketdesk.web.routing import DbHandle, Route

router = APIRouter(tags=["events"], route_class=Route)


@router.get("/tickets/{ticket_id}/events", responses=responses(400, 401, 404))
async def ticket_history(
    ticket_id: ObjectId,
    page: PageParams,
    user: CurrentUser,
    db: DbHandle,
    request: Request,
    response: Response,
) -> list[EventOut]:
    """The ticket's history, oldest first. Its author sees the public events only: no notes,
    no assignment, no priority. Paginated by `Link`."""
    result = await service.history(db, viewer=user, ticket_id=ticket_id, page=page)
    add_page_headers(request, response, result)
    return [EventOut.of(row) for row in result.items]


@router.get("/events", responses=responses(400, 401, 403))
async def event_feed(
    user: CurrentUser,
    db: DbHandle,
    request: Request,
    response: Response,
    after: Annotated[
        int, Query(ge=0, le=MAX_ID, description="the last event id seen; 0: from the start")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> list[EventOut]:
    """Every ticket's events after `after`, in id order (staff only).

    Ids ascend in commit order: a follower that asks again with the last id it saw never
    misses an event. A full page has a `Link` to the next one.
    """
    rows = await service.feed(db, viewer=user, after=after, limit=limit)
    if len(rows) == limit:
        url = request.url.include_query_params(after=rows[-1].id, limit=limit)
        response.headers["Link"] = f'<{url}>; rel="next"'
    return [EventOut.of(row) for row in rows]
