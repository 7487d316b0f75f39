"""Who is an agent: the one rule every layer asks, in Python and in SQL.

An agent (staff or a superuser) answers tickets, sees every ticket with its staff-only
fields, notes and history, and may be assigned tickets while active. A customer is anyone
else. Every check of a role, in a service, a repository's SQL, the event stream or a page,
comes from here; `models.py` keeps the same predicate for its partial index of agents, and a
test holds the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import ColumnElement, and_, or_

from ticketdesk.models import users

AGENT_FLAGS = ("is_staff", "is_superuser")
"""The account flags that make an agent: either one."""


class HasRoles(Protocol):
    @property
    def is_staff(self) -> bool: ...

    @property
    def is_superuser(self) -> bool: ...


def is_agent(account: HasRoles) -> bool:
    """Staff and superusers answer tickets and see all of them."""
    return any(getattr(account, flag) for flag in AGENT_FLAGS)


@dataclass(frozen=True, slots=True)
class Roles:
    """Flags not stored yet: what an account would be after a change being decided."""

    is_staff: bool
    is_superuser: bool


AGENT: ColumnElement[bool] = or_(*(users.c[flag] for flag in AGENT_FLAGS))
"""`is_agent` of a row of `users`, in SQL."""

ACTIVE_AGENT: ColumnElement[bool] = and_(users.c.is_active, AGENT)
"""An agent who is not blocked: who may be assigned tickets and is mailed as staff."""
