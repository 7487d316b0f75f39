"""Who is calling: the JWT from cookie `token` or `Authorization: Bearer`, checked in the DB."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import exists, select

from ticketdesk.auth.security import TokenClaims, decode_token
from ticketdesk.db import DbConn
from ticketdesk.errors import Forbidden, Unauthorized
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


def _signing_key(request: Request) -> bytes:
    key: bytes = request.app.state.signing_key
    return key


SigningKey = Annotated[bytes, Depends(_signing_key)]


def token_claims(
    key: SigningKey,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    cookie: Annotated[str | None, Depends(cookie_scheme)],
) -> TokenClaims:
    token = bearer.credentials if bearer else cookie
    if not token:
        raise Unauthorized()
    return decode_token(token, key)


async def current_user(
    claims: Annotated[TokenClaims, Depends(token_claims)], conn: DbConn
) -> AuthUser:
    """The token's user, if they still exist, are active, and the token was not revoked."""
    revoked = exists().where(revoked_tokens.c.jti == claims.jti)
    query = select(
        users.c.id,
        users.c.email,
        users.c.username,
        users.c.is_staff,
        users.c.is_superuser,
    ).where(
        users.c.id == claims.user_id,
        users.c.is_active,
        users.c.token_version == claims.version,
        ~revoked,
    )
    row = (await conn.execute(query)).one_or_none()
    if row is None:
        raise Unauthorized("invalid or expired token")
    return AuthUser(
        id=row.id,
        email=row.email,
        username=row.username,
        is_staff=row.is_staff,
        is_superuser=row.is_superuser,
        token=claims,
    )


CurrentUser = Annotated[AuthUser, Depends(current_user)]


def _agent(user: CurrentUser) -> AuthUser:
    if not user.is_agent:
        raise Forbidden("staff only")
    return user


def _superuser(user: CurrentUser) -> AuthUser:
    if not user.is_superuser:
        raise Forbidden("superusers only")
    return user


StaffUser = Annotated[AuthUser, Depends(_agent)]
SuperUser = Annotated[AuthUser, Depends(_superuser)]
