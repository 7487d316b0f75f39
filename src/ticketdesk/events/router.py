from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from ticketdesk.auth import policy as roles
from ticketdesk.auth.dependencies import CurrentUser
from ticketdesk.auth.tokens import TokenChecks
from ticketdesk.db import Db
from ticketdesk.errors import (
    BadRequest,
    DatabaseUnavailable,
    Forbidden,
    ServiceBusy,
    StatementTimeout,
)
from ticketdesk.events import service, stream
from ticketdesk.events.schemas import EventOut
from ticketdesk.pagination import DEFAULT_LIMIT, MAX_LIMIT
from ticketdesk.schemas import MAX_ID, ObjectId
from ticketdesk.web.errors import responses
from ticketdesk.web.pagination import PageParams, add_page_headers, next_link
from ticketdesk.web.routing import DbHandle, Route

log = logging.getLogger("ticketdesk")

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
        response.headers["Link"] = next_link(request, after=rows[-1].id, limit=limit)
    return [EventOut.of(row) for row in rows]


_STREAM_DOC = """Server-Sent Events: each committed event as `id:`, `event:` (its kind) and
`data:` (the event as JSON), in id order, starting after `Last-Event-ID` (or `after`).
A comment line comes every 15 quiet seconds. Staff only: the viewer is re-checked at least
once a second, however busy the stream, and the stream ends within 1 s of a logout, a
password change, a block, a demotion or the token's expiry, and at server shutdown. A
client reconnects with the last id it saw. `HEAD` answers the status and headers alone."""


@router.get(
    "/events/stream",
    response_class=StreamingResponse,
    responses={
        **responses(400, 401, 403),
        200: {"content": {"text/event-stream": {}}, "description": _STREAM_DOC},
    },
)
async def event_stream(
    user: CurrentUser,
    request: Request,
    after: Annotated[int, Query(ge=0, le=MAX_ID, description="as Last-Event-ID")] = 0,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> StreamingResponse:
    """Every event as it commits, from any server process (staff only)."""
    if not user.is_agent:
        raise Forbidden("the event feed is for staff only")
    if last_event_id is not None:
        if not last_event_id.isdigit() or int(last_event_id) > MAX_ID:
            raise BadRequest("Last-Event-ID must be an event id")
        after = int(last_event_id)
    database = request.app.state.database
    checks: TokenChecks = request.app.state.token_checks
    claims = user.token

    async def still_allowed(db: Db) -> bool:
        """The token unexpired and unrevoked, its user still active staff: from the token
        checks' memory, or `db` (a handle the stream reads the feed with next)."""
        if claims.expires_at <= datetime.now(UTC):
            return False
        account = checks.cached(claims) or await checks.load(db, claims)
        return account is not None and roles.is_agent(account)

    async def lines() -> AsyncIterator[str]:
        yield "retry: 2000\n\n"
        events = stream.follow(
            database, request.app.state.new_events, after=after, still_allowed=still_allowed
        )
        try:
            async for item in events:
                if isinstance(item, stream.Heartbeat):
                    yield ": still here\n\n"
                else:
                    data = EventOut.of(item).model_dump_json()
                    yield f"id: {item.id}\nevent: {item.kind}\ndata: {data}\n\n"
        except (DatabaseUnavailable, StatementTimeout, ServiceBusy) as exc:
            # The answer has begun: no 503 can be sent any more. The stream ends, and its
            # client reconnects with the last id it saw (a 503 until the database is back).
            log.warning("an event stream ended: %s", exc.detail)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(lines(), media_type="text/event-stream", headers=headers)
