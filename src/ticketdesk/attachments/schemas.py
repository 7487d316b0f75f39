from __future__ import annotations

from pydantic import BaseModel, Field

from ticketdesk.attachments.repository import AttachmentRow


class AttachmentOut(BaseModel):
    id: int = Field(description="download it from GET /attachments/{id}")
    filename: str
    content_type: str = Field(description="from the content, not from the client")
    size: int

    @classmethod
    def of(cls, row: AttachmentRow) -> AttachmentOut:
        return cls.model_validate(row, from_attributes=True)
