from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import FileResponse

from ticketdesk.attachments import service
from ticketdesk.attachments.repository import StoredAttachment
from ticketdesk.attachments.service import Upload
from ticketdesk.auth.dependencies import CurrentUser
from ticketdesk.schemas import ObjectId
from ticketdesk.settings import Settings
from ticketdesk.web.errors import responses
from ticketdesk.web.routing import DbHandle, Route

router = APIRouter(prefix="/attachments", tags=["attachments"], route_class=Route)


@router.get(
    "/{attachment_id}",
    response_class=FileResponse,
    responses={
        **responses(400, 401, 404),
        200: {"content": {"application/octet-stream": {}}, "description": "the file"},
    },
)
async def download(
    attachment_id: ObjectId, user: CurrentUser, db: DbHandle, request: Request
) -> FileResponse:
    """The file, always as a download, for those who may read its message."""
    found, path = await service.download(
        db, request.app.state.storage, viewer=user, attachment_id=attachment_id
    )
    return as_download(found, path)


def as_download(found: StoredAttachment, path: Path) -> FileResponse:
    """The file as a download, never shown in a page (nosniff: on every answer)."""
    return FileResponse(
        path,
        media_type=found.content_type,
        filename=found.filename,
        content_disposition_type="attachment",
        headers={"Cache-Control": "private, no-store"},
    )


Files = Annotated[list[UploadFile | str] | None, File()]
"""The files of a form; a part without a file name is a browser's empty file input."""


async def read_uploads(files: list[UploadFile | str] | None, settings: Settings) -> list[Upload]:
    """The files of a form, each read up to one byte past the limit (so too large shows)."""
    return [
        Upload(file.filename or "", await file.read(settings.attachment_max_bytes + 1))
        for file in files or []
        if not isinstance(file, str) and (file.filename or file.size)
    ]
