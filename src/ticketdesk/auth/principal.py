"""Who is asking: the principal every service takes, a plain value with no HTTP in it."""

from __future__ import annotations

from dataclasses import dataclass

from ticketdesk.auth import policy
from ticketdesk.auth.security import TokenClaims


@dataclass(frozen=True, slots=True)
class Account:
    """What a token check learns of its user from the database (or the token cache)."""

    id: int
    email: str
    username: str
    is_staff: bool
    is_superuser: bool


@dataclass(frozen=True, slots=True)
class Viewer:
    """An authenticated user and the token they came with."""

    id: int
    email: str
    username: str
    is_staff: bool
    is_superuser: bool
    token: TokenClaims

    @property
    def is_agent(self) -> bool:
        """Staff and superusers answer tickets and see all of them (`policy.is_agent`)."""
        return policy.is_agent(self)

    @classmethod
    def of(cls, account: Account, token: TokenClaims) -> Viewer:
        return cls(
            account.id,
            account.email,
            account.username,
            account.is_staff,
            account.is_superuser,
            token,
        )
