"""Who may have an account and who may change one, called directly: the registration rules
(`users.policy.Registration`) and `users.service` (register, update_user, set_role).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest
from pydantic import SecretStr

from factories import a_change, a_customer, a_ticket, an_agent, claims_of, events_of
from ticketdesk.auth import repository as auth
from ticketdesk.auth.principal import Viewer
from ticketdesk.db import Db
from ticketdesk.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from ticketdesk.settings import Settings
from ticketdesk.staff_keys import service as staff_keys
from ticketdesk.tickets import service as tickets
from ticketdesk.users import service
from ticketdesk.users.policy import Registration
from ticketdesk.users.schemas import UserCreate, UserUpdate

TOKEN = "the staff token"
AGENT = Viewer(1, "a@example.com", "a", True, False, claims_of(1))
CUSTOMER = Viewer(2, "c@example.com", "c", False, False, claims_of(2))


@dataclass(frozen=True)
class Desk:
    """The settings registration reads, and nothing else."""

    registration: Literal["open", "closed"]
    staff_token: SecretStr | None = field(default_factory=lambda: SecretStr(TOKEN))
    trial_domain_names: frozenset[str] = frozenset({"test"})


def rules(
    registration: Literal["open", "closed"], *, takes_staff_token: bool = True
) -> Registration:
    return Registration.of(Desk(registration), takes_staff_token=takes_staff_token)


def test_registration_of_the_settings() -> None:
    assert rules("closed") == Registration(True, SecretStr(TOKEN), frozenset({"test"}))
    assert rules("open", takes_staff_token=False).staff_token is None
    assert not rules("open").closed


@pytest.mark.parametrize("registration", ["open", "closed"])
def test_staff_always_need_a_credential(registration: Literal["open", "closed"]) -> None:
    with pytest.raises(Unauthorized):
        rules(registration).check(is_staff=True, credential=None, registrar=AGENT)
    # Any credential passes here: a staff key is checked as it is spent.
    rules(registration).check(is_staff=True, credential="tdsk_anything", registrar=None)


def test_an_open_desk_takes_anyone() -> None:
    rules("open").check(is_staff=False, credential=None, registrar=None)


@pytest.mark.parametrize(
    ("credential", "registrar"), [(None, None), ("wrong", None), (None, CUSTOMER)]
)
def test_a_closed_desk_refuses_strangers(credential: str | None, registrar: Viewer | None) -> None:
    with pytest.raises(Forbidden, match="closed"):
        rules("closed").check(is_staff=False, credential=credential, registrar=registrar)


@pytest.mark.parametrize(("credential", "registrar"), [(TOKEN, None), (None, AGENT)])
def test_a_closed_desk_takes_the_staff_token_or_an_agent(
    credential: str | None, registrar: Viewer | None
) -> None:
    rules("closed").check(is_staff=False, credential=credential, registrar=registrar)


def test_where_the_staff_token_is_not_taken_it_opens_nothing() -> None:
    closed = rules("closed", takes_staff_token=False)
    assert not closed.is_staff_token(TOKEN)
    with pytest.raises(Forbidden):
        closed.check(is_staff=False, credential=TOKEN, registrar=None)


def new(email: str, *, staff: bool = False) -> UserCreate:
    body = {"email": email, "password": "long enough", "username": "New", "isStaff": staff}
    return UserCreate.model_validate(body)


async def test_register_a_customer_on_an_open_desk(db: Db, settings: Settings) -> None:
    row = await service.register(
        db, new("New@Example.Test"), credential=None, registration=Registration.of(settings)
    )
    assert (row.email, row.username, row.is_staff) == ("new@example.test", "New", False)
    assert (await service.get_user(db, row.id)).is_active


async def test_register_staff_with_the_staff_token(db: Db, settings: Settings) -> None:
    registration = Registration.of(settings)
    assert settings.staff_token is not None
    token = settings.staff_token.get_secret_value()
    row = await service.register(
        db, new("staff@example.test", staff=True), credential=token, registration=registration
    )
    assert row.is_staff
    assert await staff_keys.list_keys(db) == []


async def test_a_staff_key_registers_one_member_of_staff(db: Db, settings: Settings) -> None:
    boss = await an_agent(db, superuser=True)
    key, _ = await staff_keys.create_key(db, created_by=boss.id, expires_at=None)
    registration = Registration.of(settings)
    row = await service.register(
        db, new("staff@example.test", staff=True), credential=key, registration=registration
    )
    assert row.is_staff
    [spent] = await staff_keys.list_keys(db)
    assert spent.used_by == row.id and spent.used_at is not None
    with pytest.raises(Unauthorized):
        await service.register(
            db, new("again@example.test", staff=True), credential=key, registration=registration
        )
    with pytest.raises(Unauthorized):
        await service.register(
            db,
            new("guess@example.test", staff=True),
            credential="tdsk_x",
            registration=registration,
        )
    assert [user.email for user in await service.all_users(db)] == [boss.email, row.email]


async def test_a_closed_desk_registers_through_an_agent(db: Db) -> None:
    closed = rules("closed")
    with pytest.raises(Forbidden):
        await service.register(db, new("a@example.test"), credential=None, registration=closed)
    assert await service.all_users(db) == []
    agent = await an_agent(db)
    row = await service.register(
        db, new("a@example.test"), credential=None, registration=closed, registrar=agent
    )
    assert not row.is_staff


async def test_an_address_outside_the_trial_domains_is_refused(db: Db) -> None:
    with pytest.raises(BadRequest):
        await service.register(
            db, new("someone@example.example"), credential=None, registration=rules("open")
        )


async def test_staff_change_customers_but_not_staff(db: Db) -> None:
    agent = await an_agent(db)
    customer = await a_customer(db)
    await service.update_user(
        db, actor=agent, user_id=customer.id, changes=UserUpdate(username="Renamed")
    )
    assert (await service.get_user(db, customer.id)).username == "Renamed"
    other = await an_agent(db, username="Other")
    with pytest.raises(Forbidden, match="superuser"):
        await service.update_user(
            db, actor=agent, user_id=other.id, changes=UserUpdate(username="X")
        )
    with pytest.raises(Forbidden, match="superuser"):
        await service.update_user(
            db, actor=agent, user_id=customer.id, changes=UserUpdate(is_staff=True)
        )
    assert (await service.get_user(db, other.id)).username == "Other"
    assert not (await service.get_user(db, customer.id)).is_staff


async def test_a_superuser_changes_staff_but_no_one_makes_a_superuser(db: Db) -> None:
    boss = await an_agent(db, superuser=True)
    agent = await an_agent(db)
    await service.update_user(db, actor=boss, user_id=agent.id, changes=UserUpdate(is_staff=False))
    assert not (await service.get_user(db, agent.id)).is_staff
    with pytest.raises(Forbidden):
        await service.update_user(
            db, actor=boss, user_id=agent.id, changes=UserUpdate(is_superuser=True)
        )
    assert not (await service.get_user(db, agent.id)).is_superuser
    with pytest.raises(NotFound):
        await service.update_user(
            db, actor=boss, user_id=agent.id + 1000, changes=UserUpdate(username="X")
        )


async def test_no_one_blocks_themselves(db: Db) -> None:
    boss = await an_agent(db, superuser=True)
    with pytest.raises(Conflict, match="yourself"):
        await service.update_user(
            db, actor=boss, user_id=boss.id, changes=UserUpdate(is_active=False)
        )
    assert (await service.get_user(db, boss.id)).is_active


@pytest.mark.parametrize("change", [UserUpdate(is_active=False), UserUpdate(is_staff=False)])
async def test_an_agent_blocked_or_demoted_gives_back_their_open_tickets(
    db: Db, change: UserUpdate
) -> None:
    boss = await an_agent(db, superuser=True)
    agent = await an_agent(db)
    ticket_id = await a_ticket(db, await a_customer(db))
    await a_change(db, boss, ticket_id, assignee_id=agent.id)
    await service.update_user(db, actor=boss, user_id=agent.id, changes=change)
    assert (await tickets.get_ticket(db, viewer=boss, ticket_id=ticket_id)).assignee_id is None
    last = (await events_of(db, boss, ticket_id))[-1]
    assert (last.kind, last.before, last.actor_id) == (
        "assignee",
        {"assignee_id": agent.id},
        boss.id,
    )
    if change.is_active is False:  # unblocking later must not bring the old tokens back
        credentials = await auth.credentials(db, agent.email)
        assert credentials is not None and credentials.token_version == 1


async def test_renaming_an_agent_keeps_their_tickets(db: Db) -> None:
    boss = await an_agent(db, superuser=True)
    agent = await an_agent(db)
    ticket_id = await a_ticket(db, await a_customer(db))
    await a_change(db, boss, ticket_id, assignee_id=agent.id)
    await service.update_user(db, actor=boss, user_id=agent.id, changes=UserUpdate(username="Z"))
    assert (await tickets.get_ticket(db, viewer=boss, ticket_id=ticket_id)).assignee_id == agent.id


async def test_set_role_makes_staff_a_superuser_and_a_customer_again(db: Db) -> None:
    customer = await a_customer(db, email="Who@Example.com")
    staff = await service.set_role(db, email="who@example.com", role="staff")
    assert (staff.id, staff.is_staff, staff.is_superuser) == (customer.id, True, False)
    boss = await service.set_role(db, email=" WHO@example.com ", role="superuser")
    assert (boss.is_staff, boss.is_superuser) == (True, True)
    ticket_id = await a_ticket(db, await a_customer(db))
    await a_change(db, await an_agent(db), ticket_id, assignee_id=customer.id)
    back = await service.set_role(db, email="who@example.com", role="customer")
    assert (back.is_staff, back.is_superuser) == (False, False)
    agent = await an_agent(db)
    assert (await tickets.get_ticket(db, viewer=agent, ticket_id=ticket_id)).assignee_id is None
    assert (await events_of(db, agent, ticket_id))[-1].actor_id is None  # the command line
    assert await auth.token_account(db, user_id=customer.id, version=0, jti="any") is None


async def test_set_role_of_no_account_is_not_found(db: Db) -> None:
    with pytest.raises(NotFound, match=r"nobody@example\.com"):
        await service.set_role(db, email="nobody@example.com", role="staff")
