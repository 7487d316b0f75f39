"""What a ticket's customer sees of its history, and what leaves the building by mail.

Agents see every event of every ticket, and the event feed (`GET /events`, its stream,
webhooks) is for agents only. A ticket's customer sees its public history: that it was
created, its status changes, the messages they can read, and its rating, never a note,
an assignment or a priority (`CUSTOMER_KINDS`, `customer_sees`, `CUSTOMER_SEES`). Mail to
anyone (`MAILED_KINDS`) goes out only for public events.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement

from ticketdesk.db import constants
from ticketdesk.events import kinds
from ticketdesk.models import EVENT_KINDS, ticket_events

CUSTOMER_KINDS: tuple[str, ...] = tuple(
    kind.name for kind in (kinds.CREATED, kinds.STATUS, kinds.MESSAGE, kinds.RATING)
)
"""The kinds of event a ticket's customer sees in its history, each with all its fields:
none of them carries a staff-only field (`kinds.py` says which fields each holds)."""
STAFF_KINDS: tuple[str, ...] = tuple(kind for kind in EVENT_KINDS if kind not in CUSTOMER_KINDS)
MAILED_KINDS: frozenset[str] = frozenset(
    {kinds.CREATED.name, kinds.MESSAGE.name, kinds.STATUS.name}
)
"""Events that may mail someone (the customer, or agents); notes, assignment, priority and
ratings stay in the building."""
assert set(CUSTOMER_KINDS) >= MAILED_KINDS


def customer_sees(kind: str) -> bool:
    return kind in CUSTOMER_KINDS


CUSTOMER_SEES: ColumnElement[bool] = ticket_events.c.kind.in_(constants(*CUSTOMER_KINDS))
"""`customer_sees` of a row of `ticket_events`, in SQL."""
