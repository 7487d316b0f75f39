"""A page of messages is encoded straight from the rows: byte for byte what FastAPI makes of
the models, with and without attachments, for every kind of message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from pydantic import TypeAdapter

from ticketdesk.attachments.repository import AttachmentRow
from ticketdesk.messages.repository import MessageRow
from ticketdesk.messages.schemas import MessageOut, encode_list

NOW = datetime(2026, 12, 7, 12, 0, 0, 123456, tzinfo=UTC)
ROWS = [
    MessageRow(1, NOW - timedelta(days=1), "request", "it jams", 0, 3),
    MessageRow(2, NOW, "response", 'quotes " and ü\nand a new line', 2, 4),
    MessageRow(3, datetime(2026, 1, 1, 9, 30, tzinfo=timezone(timedelta(hours=2))), "note", "", 0),
    MessageRow(4, NOW, "request", "the file went missing", 1, 3),  # its row is not there
]
FILES = {
    2: [
        AttachmentRow(10, 2, "log.txt", "text/plain", 12),
        AttachmentRow(11, 2, "shot é.png", "image/png", 2048),
    ],
    1: [AttachmentRow(12, 1, "ignored.txt", "text/plain", 1)],  # counted 0: not shown
}
AS_FASTAPI_DOES = TypeAdapter(list[MessageOut])


def test_the_page_is_what_the_models_would_give() -> None:
    models = [MessageOut.of(row, FILES.get(row.id, ())) for row in ROWS]
    expected = AS_FASTAPI_DOES.dump_json(models)
    assert encode_list(ROWS, FILES) == expected
    assert b'"filename":"log.txt"' in expected and b"ignored.txt" not in expected


def test_an_empty_page() -> None:
    assert encode_list([], {}) == b"[]"
