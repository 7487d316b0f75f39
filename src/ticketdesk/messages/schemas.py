"""What the API takes and answers of a ticket's messages and their files."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from pydantic_core import to_json

from ticketdesk.messages.repository import MessageRow
from ticketdesk.schemas import MessageText, RequestBody
from ticketdesk.tickets.policy import MessageType

__all__ = ["MessageText"]


class AttachmentOut(BaseModel):
    """A file of a message (`attachments/`), as the message shows it."""

    id: int = Field(description="download it from GET /attachments/{id}")
    filename: str
    content_type: str = Field(description="from the content, not from the client")
    size: int

    @classmethod
    def of(cls, row: Any) -> AttachmentOut:
        return cls.model_validate(row, from_attributes=True)


class MessageCreate(RequestBody):
    text: MessageText
    internal: bool = Field(
        default=False, description="true: an internal note, never shown to the customer; staff only"
    )


class MessageUpload(BaseModel):
    """What makes two multipart posts the same, for Idempotency-Key: the files by content."""

    text: str
    internal: bool
    files: list[tuple[str, str]]


MULTIPART_MESSAGE: dict[str, Any] = {
    "schema": {
        "type": "object",
        "required": ["text"],
        "properties": {
            "text": {"type": "string", "minLength": 1},
            "internal": {"type": "boolean", "default": False},
            "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
        },
    },
    "encoding": {"files": {"contentType": "application/octet-stream"}},
}


class MessageOut(BaseModel):
    id: int
    created_at: datetime
    type: MessageType
    text: str
    attachments: list[AttachmentOut] = Field(default_factory=list)

    @classmethod
    def of(cls, row: MessageRow, files: Iterable[Any] = ()) -> MessageOut:
        answer = cls.model_validate(row, from_attributes=True)
        if row.attachment_count:
            answer.attachments = [AttachmentOut.of(file) for file in files]
        return answer


def encode_list(rows: Iterable[MessageRow], files: Mapping[int, Iterable[Any]]) -> bytes:
    """A list answer's JSON: what FastAPI would make of `[MessageOut.of(row, files) ...]`,
    without building and checking a model for each message (the rows are our database's).
    `files`: each message's attachments, by the message's id."""
    return to_json(
        [
            {
                "id": row.id,
                "created_at": row.created_at,
                "type": row.type,
                "text": row.text,
                "attachments": [
                    {
                        "id": file.id,
                        "filename": file.filename,
                        "content_type": file.content_type,
                        "size": file.size,
                    }
                    for file in files.get(row.id, ())
                ]
                if row.attachment_count
                else [],
            }
            for row in rows
        ]
    )
