from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from ticketdesk.auth import service
from ticketdesk.auth.dependencies import CurrentUser
from ticketdesk.auth.schemas import LoginIn, TokenOut
from ticketdesk.settings import AppSettings
from ticketdesk.web.cookies import clear_token_cookie, token_out
from ticketdesk.web.errors import responses
from ticketdesk.web.ratelimits import (
    Limiter,
    add_quota_headers,
    client_address,
)
from ticketdesk.web.routing import DbHandle, Route

router = APIRouter(tags=["auth"], route_class=Route)


@router.post("/login", responses=responses(400, 404, 429))
async def login(
    body: LoginIn,
    request: Request,
    response: Response,
    db: DbHandle,
    limiter: Limiter,
    settings: AppSettings,
) -> TokenOut:
    """Exchange email and password for a JWT, returned and set as the cookie `token`."""
    token, claims, quota = await service.login_within_limits(
        limiter,
        db,
        settings,
        address=client_address(request),
        email=body.email,
        password=body.password,
    )
    add_quota_headers(response, quota)
    return token_out(response, token, claims, settings)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=responses(401))
async def logout(
    user: CurrentUser, db: DbHandle, response: Response, settings: AppSettings
) -> None:
    """Revoke the token of this request and clear the cookie."""
    await service.logout(db, user)
    clear_token_cookie(response, settings)
