from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from ticketdesk.auth import service
from ticketdesk.auth.dependencies import TOKEN_COOKIE, CurrentUser, SigningKey
from ticketdesk.auth.schemas import LoginIn, TokenOut
from ticketdesk.auth.security import TokenClaims
from ticketdesk.db import DbConn, Engine, Reads
from ticketdesk.errors import responses
from ticketdesk.ratelimits import Limiter, add_quota_headers, client_address
from ticketdesk.settings import AppSettings, Settings

router = APIRouter(tags=["auth"])


def set_token_cookie(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(
        TOKEN_COOKIE,
        token,
        max_age=settings.token_lifetime_seconds,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
    )


def token_out(response: Response, token: str, claims: TokenClaims, settings: Settings) -> TokenOut:
    set_token_cookie(response, token, settings)
    return TokenOut(token=token, expires_at=claims.expires_at)


@router.post("/login", responses=responses(400, 404, 429))
async def login(
    body: LoginIn,
    request: Request,
    response: Response,
    reader: Reads,
    engine: Engine,
    limiter: Limiter,
    key: SigningKey,
    settings: AppSettings,
) -> TokenOut:
    """Exchange email and password for a JWT, returned and set as the cookie `token`."""
    token, claims, quota = await service.login(
        reader,
        engine,
        limiter,
        email=body.email,
        password=body.password,
        address=client_address(request),
        key=key,
        lifetime_seconds=settings.token_lifetime_seconds,
    )
    add_quota_headers(response, quota)
    return token_out(response, token, claims, settings)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=responses(401))
async def logout(
    user: CurrentUser, conn: DbConn, response: Response, settings: AppSettings
) -> None:
    """Revoke the token of this request and clear the cookie."""
    await service.revoke_token(conn, user_id=user.id, claims=user.token)
    response.delete_cookie(
        TOKEN_COOKIE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
    )
