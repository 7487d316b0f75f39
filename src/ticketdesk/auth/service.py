"""Logging in and out, and revoking tokens."""

from __future__ import annotations

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ticketdesk.auth.security import (
    TokenClaims,
    create_token,
    dummy_hash,
    hash_password,
    needs_rehash,
    verify_password,
)
from ticketdesk.db import Prepared, Reader
from ticketdesk.errors import NotFound
from ticketdesk.models import revoked_tokens, users, utcnow
from ticketdesk.ratelimits import Quota, RateLimiter, tightest
from ticketdesk.schemas import normalize_email

_ACCOUNT = Prepared(
    select(users.c.id, users.c.password_hash, users.c.is_active, users.c.token_version).where(
        users.c.email == bindparam("email", type_=users.c.email.type)
    )
)


async def login(
    reader: Reader,
    engine: AsyncEngine,
    limiter: RateLimiter,
    *,
    email: str,
    password: str,
    address: str,
    key: bytes,
    lifetime_seconds: int,
) -> tuple[str, TokenClaims, Quota | None]:
    """A token for the account, or the same NotFound for an unknown email and a wrong password.

    Rate-limited per address and per account before any hashing, and an account takes
    only so many failures an hour. Unknown emails are counted alike, so limits do not
    tell which accounts exist. The hash is checked outside any transaction: a burst of
    logins must not hold database connections while argon2 works.
    """
    email = normalize_email(email)
    quota = tightest(
        await limiter.hit(limiter.login_per_ip, address),
        await limiter.hit(limiter.login_per_account, email),
    )
    await limiter.check(limiter.login_failures, email)
    account = await _ACCOUNT.one_or_none(reader, {"email": email})
    # An unknown email costs one verification too, so timing does not tell them apart.
    stored_hash = account["password_hash"] if account else dummy_hash()
    matches = await verify_password(stored_hash, password)
    if account is None or not matches or not account["is_active"]:
        await limiter.record(limiter.login_failures, email)
        raise NotFound("wrong email or password")
    if needs_rehash(stored_hash):
        new_hash = await hash_password(password)
        async with engine.begin() as conn:
            await conn.execute(
                update(users).where(users.c.id == account["id"]).values(password_hash=new_hash)
            )
    token, claims = create_token(
        user_id=account["id"],
        version=account["token_version"],
        key=key,
        lifetime_seconds=lifetime_seconds,
    )
    return token, claims, quota


async def revoke_token(conn: AsyncConnection, *, user_id: int, claims: TokenClaims) -> None:
    """Deny this one token until it expires; forget denials that expired on their own."""
    await conn.execute(delete(revoked_tokens).where(revoked_tokens.c.expires_at < utcnow()))
    await conn.execute(
        insert(revoked_tokens).values(jti=claims.jti, user_id=user_id, expires_at=claims.expires_at)
    )


async def revoke_all_tokens(conn: AsyncConnection, *, user_id: int) -> int:
    """Invalidate every token issued to the user so far; returns the new token version."""
    query = (
        update(users)
        .where(users.c.id == user_id)
        .values(token_version=users.c.token_version + 1)
        .returning(users.c.token_version)
    )
    version: int = (await conn.execute(query)).scalar_one()
    return version
