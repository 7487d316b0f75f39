"""Registration, the user list, and changes to accounts."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from ticketdesk.auth import service as auth
from ticketdesk.auth.policy import Roles
from ticketdesk.auth.principal import Viewer
from ticketdesk.auth.security import hash_password
from ticketdesk.db import Db
from ticketdesk.errors import BadRequest, Forbidden, NotFound
from ticketdesk.models import utcnow
from ticketdesk.pagination import Page, PageRequest
from ticketdesk.schemas import email_address, normalize_email
from ticketdesk.staff_keys import service as staff_keys
from ticketdesk.tickets import service as tickets
from ticketdesk.users import policy, repository
from ticketdesk.users.repository import UserDetailRow, UserListRow, UserRow
from ticketdesk.users.schemas import MeUpdate, UserCreate, UserUpdate

__all__ = ["UserDetailRow", "UserListRow", "UserRow"]


@dataclass(frozen=True)
class NewAccount:
    email: str
    username: str
    password: str
    is_staff: bool = False
    is_superuser: bool = False


async def register(
    db: Db,
    data: UserCreate,
    *,
    credential: str | None,
    registration: policy.Registration,
    registrar: Viewer | None = None,
) -> UserRow:
    """Create a user, if `registration` lets this caller (`policy.Registration.check`): staff
    with the STAFF_TOKEN or an unspent staff key as `credential`, the key then spent."""
    registration.check(is_staff=data.is_staff, credential=credential, registrar=registrar)
    account = NewAccount(
        email=data.email, username=data.username, password=data.password, is_staff=data.is_staff
    )
    uses_staff_token = registration.is_staff_token(credential)
    staff_key = None if uses_staff_token or not data.is_staff else credential
    return await create_account(
        db, account, trial_domains=registration.trial_domains, staff_key=staff_key
    )


def acceptable_email(email: str, *, trial_domains: Collection[str]) -> str:
    """The address as stored, if this desk makes accounts with it (TRIAL_DOMAINS names the
    reserved top-level names it takes, for trials); BadRequest, saying why, otherwise."""
    try:
        return email_address(email, trial_domains=trial_domains)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


async def create_account(
    db: Db, account: NewAccount, *, trial_domains: Collection[str], staff_key: str | None = None
) -> UserRow:
    """Insert the account; its password is hashed before any connection is taken."""
    email = acceptable_email(account.email, trial_domains=trial_domains)
    password_hash = await hash_password(account.password)
    key_id = await staff_keys.spend_key(db, staff_key) if staff_key is not None else None
    user = await repository.insert_user(
        db,
        email=email,
        username=account.username,
        password_hash=password_hash,
        is_staff=account.is_staff,
        is_superuser=account.is_superuser,
        now=utcnow(),
    )
    if key_id is not None:
        await staff_keys.record_use(db, key_id=key_id, user_id=user.id)
    return user


async def list_users(db: Db, *, page: PageRequest) -> Page[UserListRow]:
    """One page of users, most tickets first, then by id."""
    return await repository.user_page(db, page)


async def get_user(db: Db, user_id: int) -> UserDetailRow:
    row = await repository.user_detail(db, user_id)
    if row is None:
        raise NotFound("no such user")
    return row


async def get_me(db: Db, user_id: int) -> UserRow:
    row = await repository.user(db, user_id)
    assert row is not None  # the caller was just authenticated as this user
    return row


async def update_user(db: Db, *, actor: Viewer, user_id: int, changes: UserUpdate) -> None:
    """Staff change common users; only superusers change staff, or make someone staff."""
    if "is_superuser" in changes.model_fields_set:
        raise Forbidden("is_superuser cannot be changed through the API")
    target = await repository.lock_roles(db, user_id)
    if target is None:
        raise NotFound("no such user")
    blocks = changes.is_active is False
    policy.check_may_change(
        actor, target, makes_staff=changes.is_staff, user_id=user_id, blocks=blocks
    )
    values = changes.model_dump(exclude_none=True, include={"username", "is_active", "is_staff"})
    if values:
        await repository.update_user(db, user_id, values)
        await auth.account_changed(db, user_id=user_id)
    if blocks:
        # Unblocking later must not bring the old tokens back.
        await auth.revoke_all_tokens(db, user_id=user_id)
    is_staff = target.is_staff if changes.is_staff is None else changes.is_staff
    after = Roles(is_staff=is_staff, is_superuser=target.is_superuser)
    if policy.leaves_the_team(target, after, blocked=blocks):
        await tickets.agent_left(db, agent_id=user_id, actor=actor)


async def update_me(db: Db, *, user: Viewer, changes: MeUpdate) -> int | None:
    """Change own username or password; returns the new token version when the password changed."""
    values: dict[str, object] = {}
    if changes.username is not None:
        values["username"] = changes.username
    if changes.password is not None:
        await auth.check_password(db, user, changes.current_password)
        values["password_hash"] = await hash_password(changes.password)
    if values:
        await repository.update_user(db, user.id, values)
        await auth.account_changed(db, user_id=user.id)
    if changes.password is not None:
        return await auth.revoke_all_tokens(db, user_id=user.id)
    return None


async def active_agents(db: Db, limit: int = 200) -> list[repository.AgentRow]:
    return await repository.active_agents(db, limit)


async def mail_choices(db: Db, *, user: Viewer) -> repository.MailChoices:
    """Which mail an agent gets (customers always get theirs: they have no choice here)."""
    if not user.is_agent:
        raise Forbidden("these choices are for staff: customers get mail of their own tickets")
    return await repository.mail_choices(db, user.id)


async def choose_mail(
    db: Db, *, user: Viewer, new_tickets: bool | None, customer_replies: bool | None
) -> repository.MailChoices:
    """Turn the mail of new tickets, or of customers' replies, on or off."""
    await mail_choices(db, user=user)
    values: dict[str, object] = {}
    if new_tickets is not None:
        values["mail_new_tickets"] = new_tickets
    if customer_replies is not None:
        values["mail_customer_replies"] = customer_replies
    if values:
        await repository.update_user(db, user.id, values)
    return await repository.mail_choices(db, user.id)


NO_PASSWORD = "!"  # noqa: S105 - matches no password: the account is signed into after a reset
"""The password hash of an account made for someone who wrote in by mail."""


async def create_mail_account(
    db: Db, *, email: str, username: str, trial_domains: Collection[str]
) -> UserRow:
    """A customer account for a new sender of mail, without a password: they can set one
    with a password reset. BadRequest for an address the desk makes no account with."""
    return await repository.insert_user(
        db,
        email=acceptable_email(email, trial_domains=trial_domains),
        username=username,
        password_hash=NO_PASSWORD,
        is_staff=False,
        is_superuser=False,
        now=utcnow(),
    )


# The operator's commands (`ticketdesk set-password | promote | demote | users`).


async def _id_of(db: Db, email: str) -> int:
    user_id = await repository.id_by_email(db, normalize_email(email))
    if user_id is None:
        raise NotFound(f"no account has the email {email.strip()}")
    return user_id


async def set_password(db: Db, *, email: str, password: str) -> int:
    """A new password for the account, and every token issued before it revoked."""
    password_hash = await hash_password(password)
    user_id = await _id_of(db, email)
    await repository.update_user(db, user_id, {"password_hash": password_hash})
    await auth.revoke_all_tokens(db, user_id=user_id)
    return user_id


async def set_role(db: Db, *, email: str, role: str) -> UserDetailRow:
    """Make the account a superuser, staff, or a customer again. An agent made a customer
    gives their open tickets back to the team, and their sessions end."""
    after = policy.roles_of(role)
    user_id = await _id_of(db, email)
    before = await repository.lock_roles(db, user_id)
    assert before is not None
    values = {"is_superuser": after.is_superuser, "is_staff": after.is_staff}
    await repository.update_user(db, user_id, values)
    await auth.account_changed(db, user_id=user_id)
    if policy.leaves_the_team(before, after, blocked=False):
        await tickets.agent_left(db, agent_id=user_id, actor=None)
        await auth.revoke_all_tokens(db, user_id=user_id)
    detail = await repository.user_detail(db, user_id)
    assert detail is not None
    return detail


async def all_users(db: Db) -> list[UserDetailRow]:
    return await repository.all_users(db)
