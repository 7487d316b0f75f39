from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from ticketdesk.auth.dependencies import CurrentUser
from ticketdesk.schemas import ObjectId
from ticketdesk.tickets import service
from ticketdesk.tickets.schemas import (
    MessageCreate,
    MessageOut,
    StatusChange,
    TicketCreate,
    TicketCreated,
    TicketOut,
    TicketQuery,
)
from ticketdesk.web.errors import responses
from ticketdesk.web.idempotency import IdempotencyKey
from ticketdesk.web.pagination import PageParams, add_page_headers
from ticketdesk.web.ratelimits import WritesLimited
from ticketdesk.web.routing import DbHandle, Route

router = APIRouter(prefix="/tickets", tags=["tickets"], route_class=Route)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TicketCreated,
    responses=responses(400, 401, 422, 429),
    dependencies=[WritesLimited],
)
async def create_ticket(
    body: TicketCreate, user: CurrentUser, db: DbHandle, idempotency: IdempotencyKey
) -> TicketCreated | Response:
    """Open a ticket; its text becomes the first message. Safe to retry with Idempotency-Key."""

    async def open_ticket() -> TicketCreated:
        ticket_id = await service.create_ticket(db, author=user, topic=body.topic, text=body.text)
        return TicketCreated(id=ticket_id)

    return await idempotency.run(db, user_id=user.id, body=body, status_code=201, work=open_ticket)


@router.get("", response_model_exclude_none=True, responses=responses(400, 401, 403))
async def list_tickets(
    filters: Annotated[TicketQuery, Query()],
    page: PageParams,
    user: CurrentUser,
    db: DbHandle,
    request: Request,
    response: Response,
) -> list[TicketOut]:
    """A customer's own tickets; for staff, every ticket with its author. Paginated by `Link`."""
    criteria = service.TicketFilter(
        statuses=tuple(filters.status),
        author_email=filters.author,
        created_after=filters.created_after,
        created_before=filters.created_before,
        updated_after=filters.updated_after,
    )
    result = await service.list_tickets(
        db, viewer=user, page=page, filters=criteria, sort=filters.sort
    )
    add_page_headers(request, response, result)
    return [TicketOut.of(row) for row in result.items]


@router.get("/{ticket_id}", response_model_exclude_none=True, responses=responses(400, 401, 404))
async def get_ticket(ticket_id: ObjectId, user: CurrentUser, db: DbHandle) -> TicketOut:
    """One ticket; its author is shown to staff."""
    return TicketOut.of(await service.get_ticket(db, viewer=user, ticket_id=ticket_id))


_STATUS_DOC = {
    "response_model_exclude_none": True,
    "responses": responses(400, 401, 404, 409, 429),
    "summary": "Change Status",
    "dependencies": [WritesLimited],
}


@router.put("/{ticket_id}", **_STATUS_DOC)  # type: ignore[arg-type]
@router.patch("/{ticket_id}", **_STATUS_DOC)  # type: ignore[arg-type]
async def change_status(
    ticket_id: ObjectId, body: StatusChange, user: CurrentUser, db: DbHandle
) -> TicketOut:
    """The author may cancel; staff set pending, resolved (after a response) or unresolved."""
    row = await service.change_status(db, viewer=user, ticket_id=ticket_id, status=body.status)
    return TicketOut.of(row)


@router.get("/{ticket_id}/messages", responses=responses(400, 401, 404))
async def list_messages(
    ticket_id: ObjectId,
    page: PageParams,
    user: CurrentUser,
    db: DbHandle,
    request: Request,
    response: Response,
) -> list[MessageOut]:
    """The ticket's messages, oldest first. Paginated by `Link`."""
    result = await service.list_messages(db, viewer=user, ticket_id=ticket_id, page=page)
    add_page_headers(request, response, result)
    return [MessageOut.of(row) for row in result.items]


@router.post(
    "/{ticket_id}/messages",
    status_code=status.HTTP_201_CREATED,
    response_model=MessageOut,
    responses=responses(400, 401, 404, 409, 422, 429),
    dependencies=[WritesLimited],
)
async def post_message(
    ticket_id: ObjectId,
    body: MessageCreate,
    user: CurrentUser,
    db: DbHandle,
    idempotency: IdempotencyKey,
) -> MessageOut | Response:
    """Add a message: a request from the customer, a response from staff.

    Safe to retry with Idempotency-Key.
    """

    async def add_message() -> MessageOut:
        row = await service.post_message(db, viewer=user, ticket_id=ticket_id, text=body.text)
        return MessageOut.of(row)

    return await idempotency.run(db, user_id=user.id, body=body, status_code=201, work=add_message)
