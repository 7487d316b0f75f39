from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from ticketdesk.auth.dependencies import CurrentUser
from ticketdesk.schemas import ObjectId
from ticketdesk.web.downloads import send_attachment
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
    return await send_attachment(request, db, user, attachment_id)
