"""Who may have an account and who may change one: registration, roles, blocking.

What an agent is lives one layer down, in `auth/policy.py` (every layer asks it); who may be
assigned a ticket is a ticket rule (`tickets/policy.py`). This module answers:
- may this caller register this account (open or closed registration, staff credentials)?
- may this actor change that account, and does the change take an agent off the team?
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import SecretStr

from ticketdesk.auth import policy as roles
from ticketdesk.auth.principal import Viewer
from ticketdesk.errors import Conflict, Forbidden, Unauthorized

REGISTRATION_CLOSED = (
    "registration is closed: ask the support team for an account, or mail your request to "
    "the support address"
)
ROLES = ("superuser", "staff", "customer")
"""What `ticketdesk promote`/`demote` make of an account."""


class RegistrationSettings(Protocol):
    @property
    def registration(self) -> Literal["open", "closed"]: ...

    @property
    def staff_token(self) -> SecretStr | None: ...

    @property
    def trial_domain_names(self) -> frozenset[str]: ...


@dataclass(frozen=True, slots=True)
class Registration:
    """The desk's registration rules, as the settings set them.

    `closed` (REGISTRATION=closed): a customer is registered only by an agent or with the
    STAFF_TOKEN; staff always need the STAFF_TOKEN or an unspent staff key. `staff_token` is
    None where it is not taken (the browser's sign-up page takes staff keys only)."""

    closed: bool
    staff_token: SecretStr | None
    trial_domains: Collection[str]

    @classmethod
    def of(cls, settings: RegistrationSettings, *, takes_staff_token: bool = True) -> Registration:
        return cls(
            closed=settings.registration == "closed",
            staff_token=settings.staff_token if takes_staff_token else None,
            trial_domains=settings.trial_domain_names,
        )

    def is_staff_token(self, credential: str | None) -> bool:
        return (
            credential is not None
            and self.staff_token is not None
            and secrets.compare_digest(
                credential.encode(), self.staff_token.get_secret_value().encode()
            )
        )

    def needs_registrar(self, *, is_staff: bool) -> bool:
        """Whether the caller's own account decides (a customer, while registration is closed)."""
        return self.closed and not is_staff

    def check(self, *, is_staff: bool, credential: str | None, registrar: Viewer | None) -> None:
        """Unauthorized: staff without a credential; Forbidden: a closed desk's stranger."""
        if is_staff and credential is None:
            raise Unauthorized("staff registration needs `Authorization: Bearer <staff key>`")
        if (
            self.needs_registrar(is_staff=is_staff)
            and not self.is_staff_token(credential)
            and not (registrar is not None and registrar.is_agent)
        ):
            raise Forbidden(REGISTRATION_CLOSED)


def check_may_change(
    actor: Viewer, target: roles.HasRoles, *, makes_staff: bool | None, user_id: int, blocks: bool
) -> None:
    """Agents change customers; only a superuser changes staff or makes someone staff; no one
    blocks themselves."""
    if not actor.is_superuser and (roles.is_agent(target) or makes_staff is not None):
        raise Forbidden("only a superuser may change staff accounts")
    if blocks and user_id == actor.id:
        raise Conflict("you cannot block yourself")


def leaves_the_team(before: roles.HasRoles, after: roles.HasRoles, *, blocked: bool) -> bool:
    """An agent blocked or made a customer gives their open tickets back to the team."""
    return roles.is_agent(before) and (blocked or not roles.is_agent(after))


def roles_of(role: str) -> roles.Roles:
    assert role in ROLES
    return roles.Roles(is_staff=role in ("superuser", "staff"), is_superuser=role == "superuser")
