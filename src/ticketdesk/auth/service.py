"""Logging in (within the rate limits) and out, changing passwords, and minting tokens:
the one place tokens are made."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from ticketdesk.auth import repository
from ticketdesk.auth.principal import Viewer
from ticketdesk.auth.security import (
    TokenClaims,
    create_token,
    dummy_hash,
    hash_password,
    needs_rehash,
    verify_password,
)
from ticketdesk.db import Db
from ticketdesk.errors import BadRequest, NotFound, Unauthorized
from ticketdesk.ratelimits import Quota, RateLimiter, limit_login
from ticketdesk.schemas import normalize_email
from ticketdesk.settings import Settings

T = TypeVar("T")

WRONG_CREDENTIALS = "wrong email or password"


def issue_token(
    settings: Settings, *, user_id: int, version: int, session_started: datetime | None = None
) -> tuple[str, TokenClaims]:
    """A signed token for the user at their current token version.

    `session_started`: a renewal's, from the token it replaces; None: a new session.
    """
    return create_token(
        user_id=user_id,
        version=version,
        key=settings.signing_key(),
        lifetime_seconds=settings.token_lifetime_seconds,
        session_started=session_started,
    )


def renewed(settings: Settings, viewer: Viewer, now: datetime) -> tuple[str, TokenClaims] | None:
    """A fresh token for an active browser session past half its lifetime; None when the
    token is young enough, or the session has reached SESSION_MAX_HOURS since sign-in."""
    claims = viewer.token
    started = claims.session_started or now
    if (claims.expires_at - now).total_seconds() > settings.token_lifetime_seconds / 2:
        return None
    if now - started >= timedelta(hours=settings.session_max_hours):
        return None
    return issue_token(settings, user_id=viewer.id, version=claims.version, session_started=started)


async def login(
    db: Db, settings: Settings, *, email: str, password: str
) -> tuple[str, TokenClaims]:
    """A token for the account, or the same NotFound for an unknown email and a wrong password.

    `email` is normalized already (`normalize_email`): the caller keys its limits on it too.

    The hash is checked with no connection held: a burst of logins must not hold database
    connections while argon2 works.
    """
    account = await repository.credentials(db, email)
    await db.finish(commit=False)
    # An unknown email costs one verification too, so timing does not tell them apart.
    stored_hash = account.password_hash if account else dummy_hash()
    matches = await verify_password(stored_hash, password)
    if account is None or not matches or not account.is_active:
        raise NotFound(WRONG_CREDENTIALS)
    if needs_rehash(stored_hash):
        new_hash = await hash_password(password)
        await repository.set_password_hash(db, user_id=account.id, password_hash=new_hash)
    return issue_token(settings, user_id=account.id, version=account.token_version)


async def logout(db: Db, viewer: Viewer) -> None:
    """Revoke the token of this request, on every process. Unauthorized when another request
    revoked it first: one logout succeeds, the rest find the token gone."""
    revoked = await repository.revoke_token(
        db, user_id=viewer.id, jti=viewer.token.jti, expires_at=viewer.token.expires_at
    )
    if not revoked:
        raise Unauthorized("this token is revoked already")


class WrongPassword(BadRequest):
    """A password check that failed: it counts against the account's login failures."""


async def check_password(db: Db, viewer: Viewer, password: str | None) -> None:
    """BadRequest unless `password` is the viewer's current password."""
    if password is None:
        raise BadRequest("changing the password needs current_password")
    current_hash = await repository.password_hash(db, viewer.id)
    if not await verify_password(current_hash, password):
        raise WrongPassword("current_password is wrong")


async def revoke_all_tokens(db: Db, *, user_id: int) -> int:
    """Invalidate every token of the user on every process; the new token version."""
    return await repository.revoke_all_tokens(db, user_id=user_id)


async def account_changed(db: Db, *, user_id: int) -> None:
    """Every process forgets what it knew of the user's tokens once the change commits."""
    await repository.notify(db, repository.user_changed(user_id))


async def login_within_limits(
    limiter: RateLimiter, db: Db, settings: Settings, *, address: str, email: str, password: str
) -> tuple[str, TokenClaims, Quota | None]:
    """A login as the API and the sign-in page do it: the email normalized, the attempt
    counted against the limits first, a failure recorded against the account."""
    email = normalize_email(email)
    quota = await limit_login(limiter, address=address, email=email)
    try:
        token, claims = await login(db, settings, email=email, password=password)
    except NotFound:
        await limiter.record(limiter.login_failures, email)
        raise
    return token, claims, quota


async def password_check_within_limits(
    limiter: RateLimiter, *, email: str, check: Callable[[], Awaitable[T]]
) -> T:
    """A change that needs the current password (PATCH /users/me, the account page) under
    the login limits: refused while the account's failures are spent, and a wrong password
    is one more failure, so a session cannot guess faster than a login could."""
    await limiter.check(limiter.login_failures, email)
    try:
        return await check()
    except WrongPassword:
        await limiter.record(limiter.login_failures, email)
        raise
