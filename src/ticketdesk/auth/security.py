"""Password hashing (argon2id, off the event loop) and the JWTs (HS256 only, always expiring)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from typing import Any, TypeVar

import jwt
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from ticketdesk.errors import Unauthorized
from ticketdesk.schemas import MAX_ID

JWT_ALGORITHM = "HS256"
MAX_TOKEN_LENGTH = 4096
T = TypeVar("T")

# OWASP's argon2id floor: 19 MiB, two passes, one lane. (The benchmark times it too.)
PASSWORD_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)


HASHING_NICENESS = 19
HASHING_THREADS = 1


def _lower_priority() -> None:
    # Linux applies a thread id's niceness to that thread alone: hashing then takes the
    # cores that requests leave idle, and a burst of logins cannot starve other requests.
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)


@cache
def _hashing_pool() -> ThreadPoolExecutor:
    # One thread per process (`serve --workers` gives a desk more, one per core). argon2
    # releases the GIL, and each hash takes 19 MiB, which glibc keeps in the thread's arena
    # and hands to the next hash: one thread keeps one such block (a worker stays near
    # 134 MiB after a burst of sign-ins, 152 with a thread per core). Mapping each block
    # afresh instead (a low mmap threshold) cost a quarter of the logins per second in
    # page faults: 56 against 79 per second on 2 cores.
    return ThreadPoolExecutor(
        max_workers=HASHING_THREADS,
        thread_name_prefix="password-hashing",
        initializer=_lower_priority,
    )


async def _off_the_loop(function: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_hashing_pool(), function, *args)


async def hash_password(password: str) -> str:
    return await _off_the_loop(PASSWORD_HASHER.hash, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return PASSWORD_HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str, password: str) -> bool:
    return await _off_the_loop(_verify, password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    return PASSWORD_HASHER.check_needs_rehash(password_hash)


@cache
def dummy_hash() -> str:
    """A hash to verify against when the account does not exist, so both cases take as long."""
    return PASSWORD_HASHER.hash(secrets.token_urlsafe(16))


def hash_key(key: str) -> str:
    """Staff keys are long random strings: one SHA-256 is enough to store them safely."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: int
    version: int
    jti: str
    expires_at: datetime
    session_started: datetime | None = None
    """When the user signed in; a renewed token keeps it (the browser pages' maximum)."""


def create_token(
    *,
    user_id: int,
    version: int,
    key: bytes,
    lifetime_seconds: int,
    session_started: datetime | None = None,
) -> tuple[str, TokenClaims]:
    now = datetime.now(UTC)
    started = (session_started or now).replace(microsecond=0)
    claims = TokenClaims(
        user_id=user_id,
        version=version,
        jti=secrets.token_urlsafe(16),
        expires_at=(now + timedelta(seconds=lifetime_seconds)).replace(microsecond=0),
        session_started=started,
    )
    payload = {
        "sub": str(user_id),
        "ver": version,
        "jti": claims.jti,
        "iat": int(now.timestamp()),
        "exp": int(claims.expires_at.timestamp()),
        "sat": int(started.timestamp()),
    }
    return jwt.encode(payload, key, algorithm=JWT_ALGORITHM), claims


def decode_token(token: str, key: bytes) -> TokenClaims:
    """The token's claims, if its signature holds and it has not expired; else Unauthorized."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise Unauthorized("invalid or expired token")
    claims = _verified_claims(token, key)
    if claims.expires_at <= datetime.now(UTC):
        raise Unauthorized("invalid or expired token")
    return claims


# Verifying a signature costs more than the rest of a short request. A token's claims never
# change, so each verified token is remembered (expiry is still checked on every use, and
# revocation in the database); tokens that fail raise and are not remembered.
@lru_cache(maxsize=8192)
def _verified_claims(token: str, key: bytes) -> TokenClaims:
    try:
        payload = jwt.decode(
            token,
            key,
            algorithms=[JWT_ALGORITHM],
            options={"require": ["sub", "exp", "iat", "jti", "ver"]},
        )
        user_id = int(payload["sub"])
        version = payload["ver"]
        jti = payload["jti"]
        if not 0 < user_id <= MAX_ID or not isinstance(version, int) or not 0 <= version < 2**31:
            raise ValueError("malformed claims")
        if not isinstance(jti, str) or len(jti) > 64:
            raise ValueError("malformed claims")
        expires_at = datetime.fromtimestamp(payload["exp"], UTC)
        # Tokens from before sessions were kept count from their own issue time.
        started = datetime.fromtimestamp(payload.get("sat", payload["iat"]), UTC)
    except (jwt.PyJWTError, ValueError, TypeError, OverflowError, OSError) as exc:
        raise Unauthorized("invalid or expired token") from exc
    return TokenClaims(
        user_id=user_id, version=version, jti=jti, expires_at=expires_at, session_started=started
    )
