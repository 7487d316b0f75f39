"""The status machine, without HTTP or a database."""

from __future__ import annotations

import pytest

from ticketdesk.errors import BadRequest, Conflict
from ticketdesk.tickets import policy


def change(
    current: str, new: str, *, author: bool = False, agent: bool = False, response: bool = True
) -> bool:
    return policy.check_status_change(
        current,  # type: ignore[arg-type]
        new,  # type: ignore[arg-type]
        is_author=author,
        is_agent=agent,
        has_response=response,
    )


def test_author_may_cancel() -> None:
    assert change("pending", "canceled", author=True) is True


@pytest.mark.parametrize("status", ["pending", "resolved", "unresolved"])
def test_author_may_not_set_staff_statuses(status: str) -> None:
    with pytest.raises(BadRequest):
        change("pending", status, author=True)


def test_staff_may_not_cancel_someone_elses_ticket() -> None:
    with pytest.raises(BadRequest):
        change("pending", "canceled", agent=True)


@pytest.mark.parametrize("status", ["pending", "resolved", "unresolved"])
def test_staff_move_between_their_statuses(status: str) -> None:
    current = "unresolved" if status != "unresolved" else "pending"
    assert change(current, status, agent=True) is True


def test_resolving_needs_a_response() -> None:
    with pytest.raises(Conflict):
        change("pending", "resolved", agent=True, response=False)


@pytest.mark.parametrize("status", ["pending", "resolved", "unresolved"])
def test_canceled_is_final(status: str) -> None:
    with pytest.raises(Conflict):
        change("canceled", status, agent=True)


@pytest.mark.parametrize(
    "fields", [["assignee_id"], ["priority"], ["status"], ["topic"], ["assignee_id", "priority"]]
)
def test_no_field_of_a_canceled_ticket_changes(fields: list[str]) -> None:
    with pytest.raises(Conflict, match="canceled"):
        policy.check_can_change("canceled", fields)


@pytest.mark.parametrize("status", ["pending", "resolved", "unresolved"])
def test_other_tickets_change(status: str) -> None:
    policy.check_can_change(status, ["assignee_id", "priority"])  # type: ignore[arg-type]


def test_changing_nothing_on_a_canceled_ticket_is_no_change() -> None:
    policy.check_can_change("canceled", [])


def test_same_status_is_a_no_op() -> None:
    assert change("canceled", "canceled", author=True) is False
    assert change("pending", "pending", agent=True) is False


def test_role_is_checked_before_the_no_op() -> None:
    with pytest.raises(BadRequest):
        change("pending", "pending", author=True)


def test_staff_author_may_do_both() -> None:
    assert policy.allowed_targets(is_author=True, is_agent=True) == {
        "pending",
        "resolved",
        "unresolved",
        "canceled",
    }


def test_nobody_else_may_set_anything() -> None:
    assert policy.allowed_targets(is_author=False, is_agent=False) == frozenset()


def test_message_types() -> None:
    assert policy.message_type(is_agent=True) == "response"
    assert policy.message_type(is_agent=False) == "request"


@pytest.mark.parametrize("status", ["resolved", "unresolved"])
def test_customer_message_reopens(status: str) -> None:
    assert policy.status_after_message(status, is_agent=False) == "pending"  # type: ignore[arg-type]
    assert policy.status_after_message(status, is_agent=True) == status  # type: ignore[arg-type]


def test_no_messages_on_canceled_tickets() -> None:
    with pytest.raises(Conflict):
        policy.check_can_post("canceled")
    policy.check_can_post("resolved")
