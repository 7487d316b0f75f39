"""The files of a multipart form, as the routes and pages that take them declare them."""

from __future__ import annotations

from typing import Annotated

from fastapi import File, UploadFile

from ticketdesk.attachments.service import Upload, read_uploads
from ticketdesk.settings import Settings

Files = Annotated[list[UploadFile | str] | None, File()]
"""The files of a form; a part without a file name is a browser's empty file input."""


async def uploads_of(files: list[UploadFile | str] | None, settings: Settings) -> list[Upload]:
    """The form's files (its empty file inputs left out), read by the attachments service."""
    chosen = [
        file for file in files or [] if not isinstance(file, str) and (file.filename or file.size)
    ]
    return await read_uploads(chosen, max_bytes=settings.attachment_max_bytes)
