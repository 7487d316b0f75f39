from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from ticketdesk.attachments import service
from ticketdesk.auth.dependencies import CurrentUser
from ticketdesk.schemas import ObjectId
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
    return FileResponse(
        path,
        media_type=found.content_type,
        filename=found.filename,
        content_disposition_type="attachment",
        headers={"Cache-Control": "private, no-store"},  # nosniff: on every answer
    )
