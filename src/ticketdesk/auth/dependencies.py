"""Who is calling: the JWT from cookie `token` or `Authorization: Bearer`, and whether it holds."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from ticketdesk.auth.principal import Viewer
from ticketdesk.auth.security import TokenClaims, decode_token
from ticketdesk.auth.tokens import TokenChecks
from ticketdesk.db.request import request_db
from ticketdesk.errors import Forbidden, Unauthorized
from ticketdesk.logs import record_user

TOKEN_COOKIE = "token"  # noqa: S105 - a cookie name

bearer_scheme = HTTPBearer(auto_error=False, description="The JWT from POST /login")
cookie_scheme = APIKeyCookie(
    name=TOKEN_COOKIE, auto_error=False, description="The cookie POST /login sets"
)


def bearer_token(authorization: str | None) -> str | None:
    """The token of `Authorization: Bearer <token>`; the scheme must be exactly that."""
    scheme, token = get_authorization_scheme_param(authorization)
    return token if scheme.lower() == "bearer" and token else None


def token_claims(request: Request) -> TokenClaims:
    """The claims of the request's token, from the Authorization header or the cookie."""
    token = bearer_token(request.headers.get("authorization")) or request.cookies.get(TOKEN_COOKIE)
    if not token:
        raise Unauthorized()
    return decode_token(token, request.app.state.signing_key)


async def current_user(request: Request) -> Viewer:
    """The token's user, if they still exist, are active, and the token was not revoked.

    One dependency that reads the request itself, rather than FastAPI's security classes
    and a connection dependency: this runs on every request, and each dependency has a
    price. `web/openapi.py` documents both token schemes for every operation using it.
    """
    claims = token_claims(request)
    checks: TokenChecks = request.app.state.token_checks
    account = checks.cached(claims) or await checks.load(request_db(request), claims)
    if account is None:
        raise Unauthorized("invalid or expired token")
    record_user(request.scope, account.id)
    return Viewer.of(account, claims)


CurrentUser = Annotated[Viewer, Depends(current_user)]


async def _agent(user: CurrentUser) -> Viewer:
    if not user.is_agent:
        raise Forbidden("staff only")
    return user


async def _superuser(user: CurrentUser) -> Viewer:
    if not user.is_superuser:
        raise Forbidden("superusers only")
    return user


StaffUser = Annotated[Viewer, Depends(_agent)]
SuperUser = Annotated[Viewer, Depends(_superuser)]
