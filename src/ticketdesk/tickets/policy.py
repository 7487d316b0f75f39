"""The ticket rules, once: the status machine, what a message does, who may be assigned,
what a customer reads of a ticket.

Who may change a ticket's status: its author may cancel it; an agent moves it between
pending, resolved and unresolved (`allowed_targets`, `check_status_change`); a canceled
ticket never changes again (`FINAL_STATUSES`). A customer's reply reopens a resolved or
unresolved ticket; an agent's response is its first response; a note changes nothing a
customer sees (`status_after_message`, `reopen_sql`). Customers never read notes
(`customer_reads`, `CUSTOMER_READS`); what they see of the history is `events/policy.py`.

Each rule is a Python function over plain values and, where a statement needs it, an SQL
expression built from the same constants; repositories, services and pages import them.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

from sqlalchemy import ColumnElement

from ticketdesk.auth import policy as roles
from ticketdesk.db import constants
from ticketdesk.errors import BadRequest, Conflict, Forbidden
from ticketdesk.models import TICKET_STATUSES, messages
from ticketdesk.sla import PRIORITIES as PRIORITIES
from ticketdesk.sla import Priority as Priority

Status = Literal["pending", "resolved", "unresolved", "canceled"]
STATUSES: tuple[Status, ...] = TICKET_STATUSES  # type: ignore[assignment]  # the table's check
MessageType = Literal["request", "response", "other", "note"]
NOTE: MessageType = "note"
Waiting = Literal["us", "customer"]

DEFAULT_PRIORITY = PRIORITIES.index("normal")
POSTED_TYPES: tuple[MessageType, ...] = ("request", "response", "note")
"""What a customer (request) or an agent (response, or an internal note) posts."""

AUTHOR_TARGETS: frozenset[Status] = frozenset({"canceled"})
"""What a ticket's author may set: cancel it."""
AGENT_TARGETS: frozenset[Status] = frozenset({"pending", "resolved", "unresolved"})
REOPENED_BY_CUSTOMER: frozenset[Status] = frozenset({"resolved", "unresolved"})
RESOLVED: Status = "resolved"
CANCELED: Status = "canceled"
INITIAL_STATUS: Status = "pending"
"""The status of a new ticket, and of one its customer writes on again."""
FINAL_STATUSES: frozenset[Status] = frozenset({CANCELED})
"""A ticket in one of these never changes again: no field of it, and no new message."""
CLOSED_TO_MESSAGES: frozenset[Status] = FINAL_STATUSES
OPEN_STATUSES: frozenset[Status] = frozenset({"pending", "unresolved"})
"""Tickets still being worked on: an agent who leaves is taken off these."""
WAITING_ON_CUSTOMER_STATUSES: frozenset[Status] = frozenset({"unresolved"})
"""Open statuses that say, whoever wrote last, that the customer is to answer."""


def waiting_on(status: Status, last_public_type: MessageType | None) -> Waiting | None:
    """Who an open ticket waits on: the customer once staff answered (or set it so), else us.
    The status values stay the API's; this is what the pages show. None: not open."""
    if status not in OPEN_STATUSES:
        return None
    if status in WAITING_ON_CUSTOMER_STATUSES or last_public_type == "response":
        return "customer"
    return "us"


def allowed_targets(*, is_author: bool, is_agent: bool) -> frozenset[Status]:
    """The author may cancel; staff move a ticket between pending, resolved and unresolved."""
    targets: frozenset[Status] = frozenset()
    if is_author:
        targets |= AUTHOR_TARGETS
    if is_agent:
        targets |= AGENT_TARGETS
    return targets


def check_status_change(
    current: Status, new: Status, *, is_author: bool, is_agent: bool, has_response: bool
) -> bool:
    """Whether the change is to be made (False: already in that status); raises if not allowed.

    A status the caller's role may not set is a BadRequest; a ticket whose state
    forbids the change (canceled for good, resolving without a response) is a Conflict.
    """
    if new not in allowed_targets(is_author=is_author, is_agent=is_agent):
        raise BadRequest(f"you may not set the status {new!r}")
    if new == current:
        return False
    check_can_change(current, ("status",))
    if new == "resolved" and not has_response:
        raise Conflict("a ticket can be resolved only after staff have responded")
    return True


def check_can_change(current: Status, fields: Collection[str]) -> None:
    """Refuse (Conflict) to change `fields` of a ticket in a final status: whoever asks, and
    whatever the field, since a final status is the ticket's last word. A request that
    changes nothing (no fields) is let through as the no-op it is."""
    if fields and current in FINAL_STATUSES:
        changed = ", ".join(sorted(fields))
        raise Conflict(f"the ticket is {current} and cannot change any more (refused: {changed})")


def message_type(*, is_agent: bool, internal: bool = False) -> MessageType:
    """A customer writes requests; an agent responses, or internal notes no customer sees."""
    if internal:
        if not is_agent:
            raise Forbidden("only staff write internal notes")
        return NOTE
    return "response" if is_agent else "request"


def priority_name(rank: int) -> Priority:
    return PRIORITIES[rank]


def priority_rank(name: Priority) -> int:
    return PRIORITIES.index(name)


def accepts_messages(current: Status) -> bool:
    return current not in CLOSED_TO_MESSAGES


def check_can_post(current: Status) -> None:
    if not accepts_messages(current):
        raise Conflict("the ticket is canceled: no more messages")


def status_after_message(current: Status, *, is_agent: bool) -> Status:
    """A customer writing on a resolved or unresolved ticket reopens it, as help desks do."""
    if not is_agent and current in REOPENED_BY_CUSTOMER:
        return INITIAL_STATUS
    return current


def needs_response(new: Status) -> bool:
    """Resolving needs a staff response on the ticket first."""
    return new == RESOLVED


def check_can_rate(current: Status) -> None:
    """Its author rates a ticket once it is resolved."""
    if current != RESOLVED:
        raise Conflict("a ticket can be rated once it is resolved")


def _in_list(values: Collection[str]) -> str:
    return ", ".join(f"'{value}'" for value in sorted(values))  # our own constants, never input


def reopen_sql(status: str) -> str:
    """`status_after_message` of a customer's request, as SQL over the column `status`."""
    return (
        f"CASE WHEN {status} IN ({_in_list(REOPENED_BY_CUSTOMER)}) "
        f"THEN '{INITIAL_STATUS}' ELSE {status} END"
    )


def reopens_sql(status: str) -> str:
    """Whether a customer's request changes the status `status` (SQL)."""
    return f"{status} IN ({_in_list(REOPENED_BY_CUSTOMER)})"


def accepts_messages_sql(status: str) -> str:
    """`check_can_post` as SQL: the ticket takes messages in this status."""
    return f"{status} NOT IN ({_in_list(CLOSED_TO_MESSAGES)})"


def open_sql(status: str) -> str:
    """The status is one of `OPEN_STATUSES` (SQL)."""
    return f"{status} IN ({_in_list(OPEN_STATUSES)})"


def customer_reads(message_type: MessageType) -> bool:
    """A ticket's customer reads its requests and responses, never a note."""
    return message_type != NOTE


CUSTOMER_READS: ColumnElement[bool] = messages.c.type != constants(NOTE)[0]
"""`customer_reads` of a row of `messages`, in SQL."""

NOT_ASSIGNABLE = "assignee_id must be the id of an active staff member"
ASSIGNABLE = roles.ACTIVE_AGENT
"""Who may be assigned a ticket: an active agent (a row of `users`, in SQL)."""
