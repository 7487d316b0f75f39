"""The session cookie `token`: set at login and password change, cleared at logout."""

from __future__ import annotations

from fastapi import Response

from ticketdesk.auth.dependencies import TOKEN_COOKIE
from ticketdesk.auth.schemas import TokenOut
from ticketdesk.auth.security import TokenClaims
from ticketdesk.settings import Settings


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


def clear_token_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        TOKEN_COOKIE, path="/", httponly=True, samesite="lax", secure=settings.cookie_secure
    )


def token_out(response: Response, token: str, claims: TokenClaims, settings: Settings) -> TokenOut:
    set_token_cookie(response, token, settings)
    return TokenOut(token=token, expires_at=claims.expires_at)
