"""All SQL of presence: who has a ticket open in the agent console, and who is writing."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite

from ticketdesk.db import Db, Statement
from ticketdesk.models import ticket_presence, users


class Present(NamedTuple):
    user_id: int
    username: str
    state: str


def _upsert(dialect: Any) -> Any:
    """INSERT ... ON CONFLICT DO UPDATE, in either dialect's construct."""
    values: dict[str, Any] = {
        "ticket_id": bindparam("ticket_id"),
        "user_id": bindparam("user_id"),
        "state": bindparam("state"),
        "seen_at": bindparam("now"),
    }
    statement = dialect(ticket_presence).values(values)
    return statement.on_conflict_do_update(
        index_elements=[ticket_presence.c.ticket_id, ticket_presence.c.user_id],
        set_={"state": statement.excluded.state, "seen_at": statement.excluded.seen_at},
    )


_SEEN = Statement(
    _upsert(sqlite.Insert),
    postgres=_upsert(postgresql.Insert),
    atomic=True,
)


async def seen(db: Db, *, ticket_id: int, user_id: int, state: str, now: datetime) -> None:
    params = {"ticket_id": ticket_id, "user_id": user_id, "state": state, "now": now}
    await db.execute(_SEEN, params)


_OTHERS = Statement(
    select(ticket_presence.c.user_id, users.c.username, ticket_presence.c.state)
    .join(users, users.c.id == ticket_presence.c.user_id)
    .where(
        ticket_presence.c.ticket_id == bindparam("ticket_id"),
        ticket_presence.c.user_id != bindparam("user_id"),
        ticket_presence.c.seen_at > bindparam("since"),
    )
    .order_by(users.c.username)
)


async def others(db: Db, *, ticket_id: int, user_id: int, since: datetime) -> list[Present]:
    """The other agents seen on the ticket since then."""
    params = {"ticket_id": ticket_id, "user_id": user_id, "since": since}
    return [Present(*row) for row in await db.all(_OTHERS, params)]
