"""What the API answers of an attachment: the shape a message shows its files in."""

from __future__ import annotations

from ticketdesk.messages.schemas import AttachmentOut

__all__ = ["AttachmentOut"]
