"""Who is calling: the JWT from cookie `token` or `Authorization: Bearer`, checked in the DB."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy import bindparam, exists, select

from ticketdesk.auth.security import TokenClaims, decode_token
from ticketdesk.db import Prepared, request_reader
from ticketdesk.errors import Forbidden, Unauthorized
from ticketdesk.logs import record_user
from ticketdesk.models import revoked_tokens, users

TOKEN_COOKIE = "token"  # noqa: S105 - a cookie name

bearer_scheme = HTTPBearer(auto_error=False, description="The JWT from POST /login")
cookie_scheme = APIKeyCookie(
    name=TOKEN_COOKIE, auto_error=False, description="The cookie POST /login sets"
)


@dataclass(frozen=True, slots=True)
class AuthUser:
    id: int
    email: str
    username: str
    is_staff: bool
    is_superuser: bool
    token: TokenClaims

    @property
    def is_agent(self) -> bool:
        """Staff and superusers answer tickets and see all of them."""
        return self.is_staff or self.is_superuser


async def _signing_key(request: Request) -> bytes:
    key: bytes = request.app.state.signing_key
    return key


SigningKey = Annotated[bytes, Depends(_signing_key)]


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


# Built once: constructing a statement costs more than running it (see db.py).
_TOKEN_USER = Prepared(
    select(
        users.c.id, users.c.email, users.c.username, users.c.is_staff, users.c.is_superuser
    ).where(
        users.c.id == bindparam("user_id"),
        users.c.is_active,
        users.c.token_version == bindparam("version"),
        ~exists().where(revoked_tokens.c.jti == bindparam("jti")),
    )
)


async def current_user(request: Request) -> AuthUser:
    """The token's user, if they still exist, are active, and the token was not revoked.

    One dependency that reads the request itself, rather than FastAPI's security classes
    and a connection dependency: this runs on every request, and each dependency has a
    price. `app.py` documents both token schemes for every operation that depends on it.
    """
    claims = token_claims(request)
    params = {"user_id": claims.user_id, "version": claims.version, "jti": claims.jti}
    row = await _TOKEN_USER.one_or_none(request_reader(request), params)
    if row is None:
        raise Unauthorized("invalid or expired token")
    record_user(request.scope, row["id"])
    return AuthUser(
        id=row["id"],
        email=row["email"],
        username=row["username"],
        is_staff=row["is_staff"],
        is_superuser=row["is_superuser"],
        token=claims,
    )


CurrentUser = Annotated[AuthUser, Depends(current_user)]


async def _agent(user: CurrentUser) -> AuthUser:
    if not user.is_agent:
        raise Forbidden("staff only")
    return user


async def _superuser(user: CurrentUser) -> AuthUser:
    if not user.is_superuser:
        raise Forbidden("superusers only")
    return user


StaffUser = Annotated[AuthUser, Depends(_agent)]
SuperUser = Annotated[AuthUser, Depends(_superuser)]
