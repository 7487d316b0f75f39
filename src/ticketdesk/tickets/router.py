from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from ticketdesk.auth.dependencies import CurrentUser
from ticketdesk.auth.principal import Viewer
from ticketdesk.models import utcnow
from ticketdesk.schemas import ObjectId
from ticketdesk.settings import AppSettings
from ticketdesk.tickets import policy, service
from ticketdesk.tickets.repository import TicketRow
from ticketdesk.tickets.schemas import (
    Rating,
    RatingIn,
    StatusChange,
    TicketChange,
    TicketCreate,
    TicketCreated,
    TicketOut,
    TicketQuery,
    encode_list,
)
from ticketdesk.web.errors import responses
from ticketdesk.web.idempotency import IdempotencyKey
from ticketdesk.web.pagination import PageParams, add_page_headers
from ticketdesk.web.ratelimits import WritesLimited
from ticketdesk.web.routing import DbHandle, Route

JSON = "application/json"
router = APIRouter(prefix="/tickets", tags=["tickets"], route_class=Route)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TicketCreated,
    responses=responses(400, 401, 422, 429),
    dependencies=[WritesLimited],
)
async def create_ticket(
    body: TicketCreate,
    user: CurrentUser,
    db: DbHandle,
    idempotency: IdempotencyKey,
    settings: AppSettings,
) -> TicketCreated | Response:
    """Open a ticket; its text becomes the first message. Safe to retry with Idempotency-Key."""

    async def open_ticket() -> TicketCreated:
        ticket_id = await service.create_ticket(
            db, author=user, topic=body.topic, text=body.text, sla_policy=settings.sla_policy
        )
        return TicketCreated(id=ticket_id)

    return await idempotency.run(db, user_id=user.id, body=body, status_code=201, work=open_ticket)


def _answer(row: TicketRow, viewer: Viewer) -> TicketOut:
    return TicketOut.of(row, agent=viewer.is_agent, now=utcnow())


def _assignee(value: str | None, viewer: Viewer) -> tuple[int | None, bool]:
    """`me`, `none` or an id, as the filter's assignee id and whether unassigned is asked."""
    if value is None:
        return None, False
    if value == "none":
        return None, True
    return (viewer.id if value == "me" else int(value)), False


@router.get("", response_model=list[TicketOut], responses=responses(400, 401, 403))
async def list_tickets(
    filters: Annotated[TicketQuery, Query()],
    page: PageParams,
    user: CurrentUser,
    db: DbHandle,
    request: Request,
) -> Response:
    """A customer's own tickets; for staff, every ticket with its author. Paginated by `Link`."""
    assignee_id, unassigned = _assignee(filters.assignee, user)
    criteria = service.TicketFilter(
        statuses=tuple(filters.status),
        author_email=filters.author,
        created_after=filters.created_after,
        created_before=filters.created_before,
        updated_after=filters.updated_after,
        assignee_id=assignee_id,
        unassigned=unassigned,
        priorities=tuple(policy.priority_rank(name) for name in filters.priority),
        breached=filters.breached,
        search=filters.q,
        tags=tuple(filters.tag),
        not_tags=tuple(filters.not_tag),
    )
    result = await service.list_tickets(
        db, viewer=user, page=page, filters=criteria, sort=filters.sort
    )
    listed = Response(encode_list(result.items, agent=user.is_agent, now=utcnow()), media_type=JSON)
    add_page_headers(request, listed, result)
    return listed


@router.get("/{ticket_id}", response_model_exclude_unset=True, responses=responses(400, 401, 404))
async def get_ticket(ticket_id: ObjectId, user: CurrentUser, db: DbHandle) -> TicketOut:
    """One ticket; its author, assignee, priority and due times are shown to staff."""
    return _answer(await service.get_ticket(db, viewer=user, ticket_id=ticket_id), user)


@router.put(
    "/{ticket_id}",
    response_model_exclude_unset=True,
    responses=responses(400, 401, 404, 409, 429),
    summary="Change Status",
    dependencies=[WritesLimited],
)
async def change_status(
    ticket_id: ObjectId, body: StatusChange, user: CurrentUser, db: DbHandle, settings: AppSettings
) -> TicketOut:
    """The author may cancel; staff set pending, resolved (after a response) or unresolved."""
    row = await service.change_status(
        db, viewer=user, ticket_id=ticket_id, status=body.status, sla_policy=settings.sla_policy
    )
    return _answer(row, user)


@router.patch(
    "/{ticket_id}",
    response_model_exclude_unset=True,
    responses=responses(400, 401, 403, 404, 409, 429),
    summary="Change Ticket",
    dependencies=[WritesLimited],
)
async def change_ticket(
    ticket_id: ObjectId, body: TicketChange, user: CurrentUser, db: DbHandle, settings: AppSettings
) -> TicketOut:
    """Change the status, the assignee and the priority together, or nothing if one is refused.

    The author may cancel; staff set pending, resolved (after a response) or unresolved,
    assign the ticket to an active staff member (`null`: nobody) and set its priority.
    """
    given = body.model_fields_set
    changes = service.TicketChanges(
        status=body.status,
        assignee_id=body.assignee_id if "assignee_id" in given else service.UNCHANGED,
        priority=body.priority,
    )
    row = await service.change_ticket(
        db, viewer=user, ticket_id=ticket_id, changes=changes, sla_policy=settings.sla_policy
    )
    return _answer(row, user)


@router.post(
    "/{ticket_id}/rating",
    status_code=status.HTTP_201_CREATED,
    responses=responses(400, 401, 404, 409, 429),
    dependencies=[WritesLimited],
)
async def rate_ticket(
    ticket_id: ObjectId, body: RatingIn, user: CurrentUser, db: DbHandle
) -> Rating:
    """The author rates their resolved ticket, once: 1 (poor) to 5 (excellent)."""
    at = await service.rate_ticket(
        db, viewer=user, ticket_id=ticket_id, score=body.score, comment=body.comment
    )
    return Rating(score=body.score, comment=body.comment, rated_at=at)
