"""Registration, the user list, and changes to accounts."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import SecretStr
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ticketdesk.auth.dependencies import AuthUser
from ticketdesk.auth.security import hash_password, verify_password
from ticketdesk.auth.service import revoke_all_tokens
from ticketdesk.db import Db, Prepared, Record
from ticketdesk.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from ticketdesk.models import users
from ticketdesk.pagination import (
    PageRequest,
    Sort,
    int_from_json,
    next_cursor,
    page_parameters,
    paginate,
)
from ticketdesk.schemas import normalize_email
from ticketdesk.staff_keys.service import record_use, spend_key
from ticketdesk.users.schemas import MeUpdate, UserCreate, UserUpdate

PUBLIC_COLUMNS = (
    users.c.id,
    users.c.created_at,
    users.c.username,
    users.c.email,
    users.c.is_staff,
)
LIST_COLUMNS = (*PUBLIC_COLUMNS, users.c.tickets_count)
DETAIL_COLUMNS = (*LIST_COLUMNS, users.c.is_active, users.c.is_superuser)


@dataclass(frozen=True)
class NewAccount:
    email: str
    username: str
    password: str
    is_staff: bool = False
    is_superuser: bool = False


async def register(
    engine: AsyncEngine,
    data: UserCreate,
    *,
    credential: str | None,
    staff_token: SecretStr | None,
) -> Record:
    """Create a user; staff only with the STAFF_TOKEN or an unspent staff key as `credential`."""
    uses_staff_token = False
    if data.is_staff:
        if credential is None:
            raise Unauthorized("staff registration needs `Authorization: Bearer <staff key>`")
        uses_staff_token = staff_token is not None and secrets.compare_digest(
            credential.encode(), staff_token.get_secret_value().encode()
        )
    account = NewAccount(
        email=data.email,
        username=data.username,
        password=data.password,
        is_staff=data.is_staff,
    )
    return await create_account(
        engine,
        account,
        staff_key=None if uses_staff_token or not data.is_staff else credential,
    )


async def create_account(
    engine: AsyncEngine, account: NewAccount, *, staff_key: str | None = None
) -> Record:
    """Insert the account; its password is hashed before any connection is taken."""
    password_hash = await hash_password(account.password)
    try:
        async with engine.begin() as conn:
            key_id = await spend_key(conn, staff_key) if staff_key is not None else None
            query = (
                insert(users)
                .values(
                    email=normalize_email(account.email),
                    username=account.username,
                    password_hash=password_hash,
                    is_staff=account.is_staff,
                    is_superuser=account.is_superuser,
                )
                .returning(*PUBLIC_COLUMNS)
            )
            user = (await conn.execute(query)).mappings().one()
            if key_id is not None:
                await record_use(conn, key_id=key_id, user_id=user["id"])
            return user
    except IntegrityError:
        raise BadRequest("a user with this email already exists") from None


MOST_TICKETS_FIRST = Sort(
    name="tickets_count",
    id=users.c.id,
    key=-users.c.tickets_count,  # one ascending key, as the index has it
    field="tickets_count",
    start=(-(2**31), 0),  # before any -tickets_count
    from_json=lambda value: -int_from_json(value),
)


_USER_PAGE = Prepared(paginate(select(*LIST_COLUMNS), MOST_TICKETS_FIRST))
_USER = Prepared(select(*DETAIL_COLUMNS).where(users.c.id == bindparam("user_id")))
_ME = Prepared(select(*PUBLIC_COLUMNS).where(users.c.id == bindparam("user_id")))
_COUNT_USERS = Prepared(select(func.count()).select_from(users))


async def list_users(db: Db, *, page: PageRequest) -> tuple[Sequence[Record], str | None]:
    """One page of users, most tickets first, then by id; and the cursor of the next page."""
    rows = await _USER_PAGE.all(db, page_parameters(MOST_TICKETS_FIRST, page))
    return rows[: page.limit], next_cursor(rows, MOST_TICKETS_FIRST, page)


async def count_users(db: Db) -> int:
    return int(await _COUNT_USERS.scalar(db, {}))


async def get_user(db: Db, user_id: int) -> Record:
    row = await _USER.one_or_none(db, {"user_id": user_id})
    if row is None:
        raise NotFound("no such user")
    return row


async def get_me(db: Db, user_id: int) -> Record:
    row = await _ME.one_or_none(db, {"user_id": user_id})
    assert row is not None  # the caller was just authenticated as this user
    return row


async def update_user(
    conn: AsyncConnection, *, actor: AuthUser, user_id: int, changes: UserUpdate
) -> None:
    """Staff change common users; only superusers change staff, or make someone staff."""
    if "is_superuser" in changes.model_fields_set:
        raise Forbidden("is_superuser cannot be changed through the API")
    target = (
        await conn.execute(
            select(users.c.is_staff, users.c.is_superuser)
            .where(users.c.id == user_id)
            .with_for_update()
        )
    ).one_or_none()
    if target is None:
        raise NotFound("no such user")
    if not actor.is_superuser and (
        target.is_staff or target.is_superuser or changes.is_staff is not None
    ):
        raise Forbidden("only a superuser may change staff accounts")
    if changes.is_active is False and user_id == actor.id:
        raise Conflict("you cannot block yourself")
    values = changes.model_dump(exclude_none=True, include={"username", "is_active", "is_staff"})
    if values:
        await conn.execute(update(users).where(users.c.id == user_id).values(**values))
    if changes.is_active is False:
        # Unblocking later must not bring the old tokens back.
        await revoke_all_tokens(conn, user_id=user_id)


async def update_me(conn: AsyncConnection, *, user: AuthUser, changes: MeUpdate) -> int | None:
    """Change own username or password; returns the new token version when the password changed."""
    values: dict[str, object] = {}
    if changes.username is not None:
        values["username"] = changes.username
    if changes.password is not None:
        if changes.current_password is None:
            raise BadRequest("changing the password needs current_password")
        current_hash = (
            await conn.execute(select(users.c.password_hash).where(users.c.id == user.id))
        ).scalar_one()
        if not await verify_password(current_hash, changes.current_password):
            raise BadRequest("current_password is wrong")
        values["password_hash"] = await hash_password(changes.password)
    if values:
        await conn.execute(update(users).where(users.c.id == user.id).values(**values))
    if changes.password is not None:
        return await revoke_all_tokens(conn, user_id=user.id)
    return None
