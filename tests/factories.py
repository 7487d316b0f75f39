"""Accounts, tickets and messages written straight through the services and repositories.

For the service tests, which call the services on a `Db` handle (the `db` fixture) with no
app and no HTTP in between. Accounts are inserted with one password hash shared by the
whole process (argon2 takes tens of milliseconds a hash), so every account made here signs
in with PASSWORD; the principals handed back are `Viewer`s, as the services take them.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, NamedTuple

from conftest import PASSWORD
from ticketdesk import sla
from ticketdesk.auth.principal import Viewer
from ticketdesk.auth.security import PASSWORD_HASHER, TokenClaims
from ticketdesk.db import Db
from ticketdesk.events import service as events
from ticketdesk.messages import service as messages
from ticketdesk.messages.service import MessageRow
from ticketdesk.models import utcnow
from ticketdesk.pagination import PageRequest
from ticketdesk.schemas import normalize_email
from ticketdesk.tickets import service as tickets
from ticketdesk.tickets.policy import Priority, Status
from ticketdesk.tickets.service import UNCHANGED, TicketChanges, TicketRow
from ticketdesk.users import repository as users

SLA = sla.Policy.default()
"""The service levels every factory-made ticket is due by (the settings' defaults)."""

_numbers = itertools.count(1)


class Event(NamedTuple):
    """A ticket event as a test compares it: its JSON fields parsed."""

    kind: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    actor_id: int | None


@cache
def password_hash() -> str:
    """One real argon2id hash of PASSWORD, made on first use and shared by every account."""
    return PASSWORD_HASHER.hash(PASSWORD)


def claims_of(user_id: int) -> TokenClaims:
    """A token's claims as a sign-in would give them (nothing checks a signature here)."""
    now = datetime.now(UTC).replace(microsecond=0)
    return TokenClaims(
        user_id=user_id,
        version=0,
        jti=f"factory-{user_id}",
        expires_at=now + timedelta(hours=1),
        session_started=now,
    )


async def an_account(
    db: Db,
    *,
    staff: bool = False,
    superuser: bool = False,
    email: str | None = None,
    username: str | None = None,
    active: bool = True,
) -> Viewer:
    """Any account, inserted by the users repository with the shared hash (its email stored
    as registration stores it)."""
    number = next(_numbers)
    kind = "superuser" if superuser else "agent" if staff else "customer"
    row = await users.insert_user(
        db,
        email=normalize_email(email or f"{kind}{number}@example.com"),
        username=username or f"{kind} {number}",
        password_hash=password_hash(),
        is_staff=staff or superuser,
        is_superuser=superuser,
        now=utcnow(),
    )
    if not active:
        await users.update_user(db, row.id, {"is_active": False})
    return Viewer(row.id, row.email, row.username, row.is_staff, superuser, claims_of(row.id))


async def a_customer(
    db: Db, *, email: str | None = None, username: str | None = None, active: bool = True
) -> Viewer:
    return await an_account(db, email=email, username=username, active=active)


async def an_agent(
    db: Db,
    *,
    superuser: bool = False,
    email: str | None = None,
    username: str | None = None,
    active: bool = True,
) -> Viewer:
    """Staff (or a superuser, who is an agent too)."""
    return await an_account(
        db, staff=True, superuser=superuser, email=email, username=username, active=active
    )


async def a_ticket(db: Db, author: Viewer, *, topic: str = "printer", text: str = "it jams") -> int:
    """A new ticket of `author` (pending, its text the first request); its id."""
    return await tickets.create_ticket(db, author=author, topic=topic, text=text, sla_policy=SLA)


async def a_reply(db: Db, viewer: Viewer, ticket_id: int, text: str = "any news?") -> MessageRow:
    """A customer's request, or an agent's response, as the viewer is one or the other."""
    return await messages.post_message(db, viewer=viewer, ticket_id=ticket_id, text=text)


async def a_note(db: Db, agent: Viewer, ticket_id: int, text: str = "between us") -> MessageRow:
    """An agent's internal note, which no customer reads."""
    return await messages.post_message(
        db, viewer=agent, ticket_id=ticket_id, text=text, internal=True
    )


async def a_change(
    db: Db,
    viewer: Viewer,
    ticket_id: int,
    *,
    status: Status | None = None,
    assignee_id: int | None = UNCHANGED,
    priority: Priority | None = None,
) -> TicketRow:
    """`change_ticket` with the factories' service levels (a field left out stays as it is)."""
    return await tickets.change_ticket(
        db,
        viewer=viewer,
        ticket_id=ticket_id,
        changes=TicketChanges(status=status, assignee_id=assignee_id, priority=priority),
        sla_policy=SLA,
    )


async def a_resolved_ticket(db: Db, author: Viewer, agent: Viewer) -> int:
    """A ticket of `author` that `agent` answered and resolved; its id."""
    ticket_id = await a_ticket(db, author)
    await a_reply(db, agent, ticket_id, "try turning it off and on")
    await a_change(db, agent, ticket_id, status="resolved")
    return ticket_id


ALL = PageRequest(limit=1000, cursor=None, count=False)
"""One page large enough for everything a test makes."""


async def events_of(db: Db, viewer: Viewer, ticket_id: int) -> list[Event]:
    """The ticket's history as the viewer reads it, oldest first, its JSON parsed."""
    page = await events.history(db, viewer=viewer, ticket_id=ticket_id, page=ALL)
    return [
        Event(
            row.kind,
            None if row.before is None else json.loads(row.before),
            None if row.after is None else json.loads(row.after),
            row.actor_id,
        )
        for row in page.items
    ]
