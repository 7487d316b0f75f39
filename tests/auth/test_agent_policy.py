"""Who is an agent (`auth/policy.py`), in Python and in SQL, over every combination of an
account's flags. The SQL runs on both backends: SQLite keeps booleans as integers.
"""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select

from factories import claims_of, password_hash
from ticketdesk.auth import policy
from ticketdesk.auth.principal import Viewer
from ticketdesk.db import Db, Statement
from ticketdesk.models import users, utcnow
from ticketdesk.tickets import repository as tickets
from ticketdesk.users import repository
from ticketdesk.users import service as accounts

BOTH = (False, True)
FLAGS = [(staff, superuser, active) for staff in BOTH for superuser in BOTH for active in BOTH]
"""(is_staff, is_superuser, is_active): every account there can be."""

_AGENTS = Statement(select(users.c.id).where(policy.AGENT).order_by(users.c.id))
_ACTIVE_AGENTS = Statement(select(users.c.id).where(policy.ACTIVE_AGENT).order_by(users.c.id))


@pytest.mark.parametrize(
    ("is_staff", "is_superuser"), list(itertools.product([False, True], repeat=2))
)
def test_staff_and_superusers_are_agents(is_staff: bool, is_superuser: bool) -> None:
    roles = policy.Roles(is_staff=is_staff, is_superuser=is_superuser)
    assert policy.is_agent(roles) is (is_staff or is_superuser)
    viewer = Viewer(1, "a@example.com", "a", is_staff, is_superuser, claims_of(1))
    assert viewer.is_agent is policy.is_agent(roles)


def test_the_flags_are_the_accounts_columns() -> None:
    assert all(flag in users.c for flag in policy.AGENT_FLAGS)


async def every_kind_of_account(db: Db) -> dict[tuple[bool, bool, bool], int]:
    """One account for each combination of flags; their ids by (staff, superuser, active)."""
    ids = {}
    for number, (is_staff, is_superuser, is_active) in enumerate(FLAGS):
        row = await repository.insert_user(
            db,
            email=f"user{number}@example.com",
            username=f"user {number}",
            password_hash=password_hash(),
            is_staff=is_staff,
            is_superuser=is_superuser,
            now=utcnow(),
        )
        if not is_active:
            await repository.update_user(db, row.id, {"is_active": False})
        ids[is_staff, is_superuser, is_active] = row.id
    return ids


@pytest.mark.both_backends
async def test_the_sql_selects_the_agents_and_the_active_ones(db: Db) -> None:
    ids = await every_kind_of_account(db)
    agents = [ids[flags] for flags in FLAGS if policy.is_agent(policy.Roles(*flags[:2]))]
    active = [ids[flags] for flags in FLAGS if flags[2] and (flags[0] or flags[1])]
    assert [row[0] for row in await db.all(_AGENTS)] == agents
    assert [row[0] for row in await db.all(_ACTIVE_AGENTS)] == active
    assert len(active) == 3  # staff, superuser, both


@pytest.mark.both_backends
async def test_whoever_may_be_assigned_is_an_active_agent(db: Db) -> None:
    ids = await every_kind_of_account(db)
    active = [row[0] for row in await db.all(_ACTIVE_AGENTS)]
    assignable = [user_id for user_id in ids.values() if await tickets.may_be_assigned(db, user_id)]
    assert sorted(assignable) == active
    assert sorted(agent.id for agent in await accounts.active_agents(db)) == active
