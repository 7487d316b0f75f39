"""A list of tickets is encoded straight from the rows: byte for byte what FastAPI makes of
the models, for agents and for customers, with and without a rating or due times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import TypeAdapter

from ticketdesk.tickets.repository import TicketRow
from ticketdesk.tickets.schemas import TicketOut, encode_list

NOW = datetime(2026, 12, 7, 12, 0, 0, 123456, tzinfo=UTC)
ROWS = [
    TicketRow(1, NOW - timedelta(days=2), NOW, "printer", "pending"),
    TicketRow(
        2,
        NOW - timedelta(days=1),
        NOW,
        'quotes " and ü',
        "resolved",
        rating_score=4,
        rating_comment=None,
        rated_at=NOW,
        author="a@example.com",
        assignee_id=7,
        priority=3,
        first_response_due_at=NOW - timedelta(hours=1),
        resolution_due_at=NOW + timedelta(hours=5),
        first_response_at=NOW - timedelta(hours=2),
        resolved_at=NOW,
    ),
    TicketRow(
        3,
        datetime(2026, 1, 1, 9, 30, tzinfo=timezone(timedelta(hours=2))),
        NOW,
        "late",
        "unresolved",
        rating_score=1,
        rating_comment="slow",
        rated_at=NOW,
        author="b@example.com",
        first_response_due_at=NOW - timedelta(hours=3),
    ),
]
AS_FASTAPI_DOES = TypeAdapter(list[TicketOut])


@pytest.mark.parametrize("agent", [True, False], ids=["agent", "customer"])
def test_the_list_is_what_the_models_would_give(agent: bool) -> None:
    models = [TicketOut.of(row, agent=agent, now=NOW) for row in ROWS]
    expected = AS_FASTAPI_DOES.dump_json(models, exclude_unset=True)
    assert encode_list(ROWS, agent=agent, now=NOW) == expected
    if not agent:
        assert b"author" not in expected and b"breached" not in expected
    else:
        assert b'"breached":true' in expected


def test_an_empty_list() -> None:
    assert encode_list([], agent=True, now=NOW) == b"[]"
