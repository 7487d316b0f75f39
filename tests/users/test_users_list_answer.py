"""The users list is encoded straight from its rows: the same bytes as the models give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import TypeAdapter

from ticketdesk.users.repository import UserListRow
from ticketdesk.users.schemas import UserListItem, encode_list

NOW = datetime(2026, 12, 7, 12, 0, 0, 5, tzinfo=UTC)


def test_the_rows_fields_are_the_answers_in_its_order() -> None:
    assert list(UserListRow._fields) == list(UserListItem.model_fields)


def test_the_list_is_what_the_models_would_give() -> None:
    rows = [
        UserListRow(1, NOW, "ann", "ann@example.com", True, 12),
        UserListRow(2, NOW - timedelta(days=3), 'bo "b"', "bo@example.com", False, 0),
    ]
    models = [UserListItem.model_validate(row, from_attributes=True) for row in rows]
    assert encode_list(rows) == TypeAdapter(list[UserListItem]).dump_json(models)
    assert encode_list([]) == b"[]"
