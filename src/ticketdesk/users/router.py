from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials

from ticketdesk.auth import service as auth
from ticketdesk.auth.dependencies import CurrentUser, StaffUser, bearer_scheme, current_user
from ticketdesk.auth.principal import Viewer
from ticketdesk.db import Db
from ticketdesk.errors import TicketdeskError
from ticketdesk.models import utcnow
from ticketdesk.pagination import DEFAULT_LIMIT, Page, PageRequest
from ticketdesk.schemas import ObjectId
from ticketdesk.settings import AppSettings
from ticketdesk.tickets.schemas import TicketOut
from ticketdesk.tickets.service import TicketFilter, TicketRow, list_tickets
from ticketdesk.users import policy, service
from ticketdesk.users.schemas import (
    MailChoicesOut,
    MailChoicesUpdate,
    MeUpdate,
    UserCreate,
    UserDetail,
    UserListItem,
    UserOut,
    UserUpdate,
    encode_list,
)
from ticketdesk.web.cookies import token_out
from ticketdesk.web.errors import responses
from ticketdesk.web.pagination import PageParams, add_link_headers, add_page_headers
from ticketdesk.web.ratelimits import (
    Limiter,
    WritesLimited,
    add_quota_headers,
    client_address,
)
from ticketdesk.web.routing import DbHandle, Route

router = APIRouter(prefix="/users", tags=["users"], route_class=Route)

StaffCredential = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


@router.post("", status_code=status.HTTP_201_CREATED, responses=responses(400, 401, 403, 429))
async def register(
    body: UserCreate,
    credential: StaffCredential,
    db: DbHandle,
    settings: AppSettings,
    limiter: Limiter,
    request: Request,
    response: Response,
) -> UserOut:
    """Register a user; `isStaff: true` needs the STAFF_TOKEN or a staff key as Bearer token.
    With REGISTRATION=closed, a customer is registered only by an agent (their token) or
    with the STAFF_TOKEN: 403 otherwise."""
    quota = await limiter.hit(limiter.register_per_ip, client_address(request))
    add_quota_headers(response, quota)
    registration = policy.Registration.of(settings)
    needs_registrar = registration.needs_registrar(is_staff=body.is_staff)
    row = await service.register(
        db,
        body,
        credential=credential.credentials if credential else None,
        registration=registration,
        registrar=await _signed_in(request) if needs_registrar else None,
    )
    return UserOut.model_validate(row, from_attributes=True)


async def _signed_in(request: Request) -> Viewer | None:
    """The caller, if the request carries a valid token (an agent registering a customer)."""
    try:
        return await current_user(request)
    except TicketdeskError:
        return None


@router.get("", response_model=list[UserListItem], responses=responses(400, 401, 403))
async def list_users(page: PageParams, user: StaffUser, db: DbHandle, request: Request) -> Response:
    """Users, most tickets first (staff only). Paginated by `Link`."""
    result = await service.list_users(db, page=page)
    listed = Response(encode_list(result.items), media_type="application/json")
    add_page_headers(request, listed, result)
    return listed


@router.get("/me", responses=responses(401))
async def get_me(user: CurrentUser, db: DbHandle) -> UserOut:
    """The caller's own account."""
    return UserOut.model_validate(await service.get_me(db, user.id), from_attributes=True)


_UPDATE_ME_DOC = {
    "responses": responses(400, 401, 429),
    "summary": "Update Me",
    "dependencies": [WritesLimited],
}


@router.put("/me", **_UPDATE_ME_DOC)  # type: ignore[arg-type]
@router.patch("/me", **_UPDATE_ME_DOC)  # type: ignore[arg-type]
async def update_me(
    body: MeUpdate,
    user: CurrentUser,
    db: DbHandle,
    response: Response,
    settings: AppSettings,
    limiter: Limiter,
) -> UserOut:
    """Change own username, or password (needs the current one; revokes older tokens)."""
    version = await auth.password_check_within_limits(
        limiter, email=user.email, check=lambda: service.update_me(db, user=user, changes=body)
    )
    if version is not None:
        token, claims = auth.issue_token(settings, user_id=user.id, version=version)
        token_out(response, token, claims, settings)
    return UserOut.model_validate(await service.get_me(db, user.id), from_attributes=True)


@router.get("/me/notifications", responses=responses(401, 403))
async def get_mail_choices(user: CurrentUser, db: DbHandle) -> MailChoicesOut:
    """Which mail you get as an agent (staff only)."""
    return MailChoicesOut(**(await service.mail_choices(db, user=user))._asdict())


@router.patch(
    "/me/notifications", responses=responses(400, 401, 403, 429), dependencies=[WritesLimited]
)
async def choose_mail(body: MailChoicesUpdate, user: CurrentUser, db: DbHandle) -> MailChoicesOut:
    """Turn the mail of new tickets or of customers' replies off, or on again (staff only)."""
    choices = await service.choose_mail(
        db, user=user, new_tickets=body.new_tickets, customer_replies=body.customer_replies
    )
    return MailChoicesOut(**choices._asdict())


async def _detail(
    db: Db, viewer: Viewer, user_id: int, page: PageRequest
) -> tuple[UserDetail, Page[TicketRow]]:
    row = await service.get_user(db, user_id)
    tickets = await list_tickets(
        db, viewer=viewer, page=page, filters=TicketFilter(author_id=user_id)
    )
    detail = UserDetail(
        **row._asdict(), tickets=[TicketOut.of(t, agent=True, now=utcnow()) for t in tickets.items]
    )
    return detail, tickets


@router.get("/{user_id}", responses=responses(400, 401, 403, 404))
async def get_user(
    user_id: ObjectId,
    page: PageParams,
    user: StaffUser,
    db: DbHandle,
    request: Request,
    response: Response,
) -> UserDetail:
    """A user and a page of their tickets, oldest first (staff only). Paginated by `Link`."""
    # The total is the user's own ticket count, already in the row: no count query.
    uncounted = PageRequest(limit=page.limit, cursor=page.cursor, count=False)
    detail, tickets = await _detail(db, user, user_id, uncounted)
    total = detail.tickets_count if page.count else None
    add_link_headers(request, response, tickets.next_cursor, total)
    return detail


_UPDATE_DOC = {
    "responses": responses(400, 401, 403, 404, 409, 429),
    "summary": "Update User",
    "dependencies": [WritesLimited],
}


@router.put("/{user_id}", **_UPDATE_DOC)  # type: ignore[arg-type]
@router.patch("/{user_id}", **_UPDATE_DOC)  # type: ignore[arg-type]
async def update_user(
    user_id: ObjectId,
    body: UserUpdate,
    user: StaffUser,
    db: DbHandle,
    request: Request,
    response: Response,
) -> UserDetail:
    """Rename or block a user (staff); grant or withdraw staff status (superusers)."""
    await service.update_user(db, actor=user, user_id=user_id, changes=body)
    page = PageRequest(limit=DEFAULT_LIMIT, cursor=None, count=False)
    detail, tickets = await _detail(db, user, user_id, page)
    add_link_headers(request, response, tickets.next_cursor)
    return detail
