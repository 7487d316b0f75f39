"""The ticket status machine and message rules: pure functions over plain values."""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

from ticketdesk.errors import BadRequest, Conflict, Forbidden

Status = Literal["pending", "resolved", "unresolved", "canceled"]
MessageType = Literal["request", "response", "other", "note"]
Priority = Literal["low", "normal", "high", "urgent"]
Waiting = Literal["us", "customer"]

PRIORITIES: tuple[Priority, ...] = ("low", "normal", "high", "urgent")
"""In rank order: a ticket keeps its priority's rank (0 to 3), so urgent sorts first."""
DEFAULT_PRIORITY = PRIORITIES.index("normal")
POSTED_TYPES: tuple[MessageType, ...] = ("request", "response", "note")
"""What a customer (request) or an agent (response, or an internal note) posts."""

AUTHOR_TARGETS: frozenset[Status] = frozenset({"canceled"})
AGENT_TARGETS: frozenset[Status] = frozenset({"pending", "resolved", "unresolved"})
REOPENED_BY_CUSTOMER: frozenset[Status] = frozenset({"resolved", "unresolved"})
INITIAL_STATUS: Status = "pending"
"""The status of a new ticket, and of one its customer writes on again."""
FINAL_STATUSES: frozenset[Status] = frozenset({"canceled"})
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
        return "note"
    return "response" if is_agent else "request"


def priority_name(rank: int) -> Priority:
    return PRIORITIES[rank]


def priority_rank(name: Priority) -> int:
    return PRIORITIES.index(name)


def check_can_post(current: Status) -> None:
    if current in CLOSED_TO_MESSAGES:
        raise Conflict("the ticket is canceled: no more messages")


def status_after_message(current: Status, *, is_agent: bool) -> Status:
    """A customer writing on a resolved or unresolved ticket reopens it, as help desks do."""
    if not is_agent and current in REOPENED_BY_CUSTOMER:
        return INITIAL_STATUS
    return current
