"""The SQL of authentication: token checks, credentials, revocation, and their notifications.

Every change that can invalidate a token (a logout, a new password, a block, a change of
role or name) notifies AUTH_CHANNEL in the same transaction, so that every process drops
what it remembered of that user's tokens the moment the change commits (`tokens.py`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, delete, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ticketdesk.auth.principal import Account
from ticketdesk.db import Db, Statement
from ticketdesk.models import revoked_tokens, users, utcnow

AUTH_CHANNEL = "ticketdesk_auth"
"""The PostgreSQL notification channel of token invalidations."""


def user_changed(user_id: int) -> str:
    return f"u:{user_id}"


def token_revoked(jti: str) -> str:
    return f"t:{jti}"


_TOKEN_ACCOUNT = Statement(
    select(
        users.c.id, users.c.email, users.c.username, users.c.is_staff, users.c.is_superuser
    ).where(
        users.c.id == bindparam("user_id"),
        users.c.is_active,
        users.c.token_version == bindparam("version"),
        ~exists().where(revoked_tokens.c.jti == bindparam("jti")),
    )
)


async def token_account(db: Db, *, user_id: int, version: int, jti: str) -> Account | None:
    """The token's user, if they exist, are active, and the token is neither old nor revoked."""
    row = await db.first(_TOKEN_ACCOUNT, {"user_id": user_id, "version": version, "jti": jti})
    return Account(*row) if row is not None else None


class Credentials(NamedTuple):
    id: int
    password_hash: str
    is_active: bool
    token_version: int


_CREDENTIALS = Statement(
    select(users.c.id, users.c.password_hash, users.c.is_active, users.c.token_version).where(
        users.c.email == bindparam("email", type_=users.c.email.type)
    )
)


async def credentials(db: Db, email: str) -> Credentials | None:
    row = await db.first(_CREDENTIALS, {"email": email})
    return Credentials(*row) if row is not None else None


_SET_HASH = Statement(
    update(users)
    .where(users.c.id == bindparam("user_id"))
    .values(password_hash=bindparam("new_hash"))
)


async def set_password_hash(db: Db, *, user_id: int, password_hash: str) -> None:
    """A new hash of the same password (stronger parameters): no token is invalidated."""
    await db.execute(_SET_HASH, {"user_id": user_id, "new_hash": password_hash})


_PASSWORD_HASH = Statement(select(users.c.password_hash).where(users.c.id == bindparam("user_id")))


async def password_hash(db: Db, user_id: int) -> str:
    value: str = await db.scalar(_PASSWORD_HASH, {"user_id": user_id})
    return value


_NOTIFY = Statement(select(func.pg_notify(AUTH_CHANNEL, bindparam("payload"))), writes=True)


async def notify(db: Db, payload: str) -> None:
    """Tell every process, this one at once, when the transaction commits."""
    if db.dialect == "postgresql":
        await db.execute(_NOTIFY, {"payload": payload})
    db.notify(AUTH_CHANNEL, payload)


_EXPIRED = delete(revoked_tokens).where(revoked_tokens.c.expires_at < bindparam("now"))
_REVOKED: dict[str, Any] = {
    "jti": bindparam("jti"),
    "user_id": bindparam("user_id"),
    "expires_at": bindparam("exp"),
}
_FORGET_EXPIRED = Statement(_EXPIRED)
# A logout retried, or sent twice at once, finds its token revoked already: not an error.
_REVOKE_SQLITE = Statement(
    sqlite.insert(revoked_tokens).values(_REVOKED).on_conflict_do_nothing(index_elements=["jti"])
)
_REVOKED_NOW = (
    postgresql.insert(revoked_tokens)
    .values(_REVOKED)
    .on_conflict_do_nothing(index_elements=["jti"])
    .returning(revoked_tokens.c.jti)
    .cte("revoked")
)
_REVOKE_POSTGRES = Statement(  # forget, revoke and notify in one statement
    None,
    postgres=select(
        select(func.count()).select_from(_REVOKED_NOW).scalar_subquery(),
        func.pg_notify(AUTH_CHANNEL, bindparam("payload")),
    ).add_cte(_EXPIRED.cte("expired")),
    atomic=True,
)


async def revoke_token(db: Db, *, user_id: int, jti: str, expires_at: datetime) -> bool:
    """Deny this one token until it expires; forget denials that expired on their own.

    False when it was denied already (a logout sent twice at once: the second one waits for
    the first's row and finds it)."""
    params = {"jti": jti, "user_id": user_id, "exp": expires_at, "now": utcnow()}
    payload = token_revoked(jti)
    if db.dialect == "postgresql":
        row = await db.first(_REVOKE_POSTGRES, {**params, "payload": payload})  # NOTIFY too
        revoked = row is not None and int(row[0]) == 1
    else:
        await db.execute(_FORGET_EXPIRED, params)
        revoked = await db.execute(_REVOKE_SQLITE, params) == 1
    db.notify(AUTH_CHANNEL, payload)
    return revoked


_NEXT_VERSION = Statement(
    update(users)
    .where(users.c.id == bindparam("user_id"))
    .values(token_version=users.c.token_version + 1)
    .returning(users.c.token_version)
)


async def revoke_all_tokens(db: Db, *, user_id: int) -> int:
    """Invalidate every token issued to the user so far; returns the new token version."""
    version: int = await db.scalar(_NEXT_VERSION, {"user_id": user_id})
    await notify(db, user_changed(user_id))
    return version
