from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials

from ticketdesk.auth.dependencies import (
    CurrentUser,
    SigningKey,
    StaffUser,
    bearer_scheme,
)
from ticketdesk.auth.router import token_out
from ticketdesk.auth.security import create_token
from ticketdesk.db import Db, DbConn, Engine, Reads
from ticketdesk.errors import responses
from ticketdesk.pagination import DEFAULT_LIMIT, PageParams, PageRequest, add_page_headers
from ticketdesk.ratelimits import Limiter, WritesLimited, add_quota_headers, client_address
from ticketdesk.schemas import ObjectId
from ticketdesk.settings import AppSettings
from ticketdesk.tickets.schemas import TicketOut
from ticketdesk.tickets.service import TicketFilter, list_tickets
from ticketdesk.users import service
from ticketdesk.users.schemas import (
    MeUpdate,
    UserCreate,
    UserDetail,
    UserListItem,
    UserOut,
    UserUpdate,
)

router = APIRouter(prefix="/users", tags=["users"])

StaffCredential = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


@router.post("", status_code=status.HTTP_201_CREATED, responses=responses(400, 401, 429))
async def register(
    body: UserCreate,
    credential: StaffCredential,
    engine: Engine,
    settings: AppSettings,
    limiter: Limiter,
    request: Request,
    response: Response,
) -> UserOut:
    """Register a user; `isStaff: true` needs the STAFF_TOKEN or a staff key as Bearer token."""
    quota = await limiter.hit(limiter.register_per_ip, client_address(request))
    add_quota_headers(response, quota)
    row = await service.register(
        engine,
        body,
        credential=credential.credentials if credential else None,
        staff_token=settings.staff_token,
    )
    return UserOut(**row)


@router.get("", responses=responses(400, 401, 403))
async def list_users(
    page: PageParams, user: StaffUser, db: Reads, request: Request, response: Response
) -> list[UserListItem]:
    """Users, most tickets first (staff only). Paginated by `Link`."""
    rows, cursor = await service.list_users(db, page=page)
    total = await service.count_users(db) if page.count else None
    add_page_headers(request, response, cursor, total)
    return [UserListItem(**row) for row in rows]


@router.get("/me", responses=responses(401))
async def get_me(user: CurrentUser, db: Reads) -> UserOut:
    """The caller's own account."""
    return UserOut(**await service.get_me(db, user.id))


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
    conn: DbConn,
    response: Response,
    key: SigningKey,
    settings: AppSettings,
) -> UserOut:
    """Change own username, or password (needs the current one; revokes older tokens)."""
    version = await service.update_me(conn, user=user, changes=body)
    if version is not None:
        token, claims = create_token(
            user_id=user.id,
            version=version,
            key=key,
            lifetime_seconds=settings.token_lifetime_seconds,
        )
        token_out(response, token, claims, settings)
    return UserOut(**await service.get_me(conn, user.id))


async def _detail(
    db: Db, viewer: StaffUser, user_id: int, page: PageRequest
) -> tuple[UserDetail, str | None]:
    row = await service.get_user(db, user_id)
    tickets, cursor = await list_tickets(
        db, viewer=viewer, page=page, filters=TicketFilter(author_id=user_id)
    )
    detail = UserDetail(**row, tickets=[TicketOut(**t) for t in tickets])
    return detail, cursor


@router.get("/{user_id}", responses=responses(400, 401, 403, 404))
async def get_user(
    user_id: ObjectId,
    page: PageParams,
    user: StaffUser,
    db: Reads,
    request: Request,
    response: Response,
) -> UserDetail:
    """A user and a page of their tickets, oldest first (staff only). Paginated by `Link`."""
    detail, cursor = await _detail(db, user, user_id, page)
    add_page_headers(request, response, cursor, detail.tickets_count if page.count else None)
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
    conn: DbConn,
    request: Request,
    response: Response,
) -> UserDetail:
    """Rename or block a user (staff); grant or withdraw staff status (superusers)."""
    await service.update_user(conn, actor=user, user_id=user_id, changes=body)
    page = PageRequest(limit=DEFAULT_LIMIT, cursor=None, count=False)
    detail, cursor = await _detail(conn, user, user_id, page)
    add_page_headers(request, response, cursor)
    return detail
