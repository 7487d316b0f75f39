"""The API of a ticket's messages: read them a page at a time, add one (with files)."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response, status

from ticketdesk.attachments import service as attachments
from ticketdesk.attachments.repository import AttachmentRow
from ticketdesk.attachments.service import Limits
from ticketdesk.auth.dependencies import CurrentUser
from ticketdesk.messages import service
from ticketdesk.messages.schemas import (
    MULTIPART_MESSAGE,
    MessageCreate,
    MessageOut,
    MessageText,
    MessageUpload,
    encode_list,
)
from ticketdesk.schemas import ObjectId
from ticketdesk.settings import AppSettings
from ticketdesk.web.errors import responses
from ticketdesk.web.idempotency import IdempotencyKey
from ticketdesk.web.pagination import PageParams, add_page_headers
from ticketdesk.web.ratelimits import WritesLimited
from ticketdesk.web.routing import DbHandle, MultipartRoute, Route
from ticketdesk.web.uploads import Files, uploads_of

router = APIRouter(prefix="/tickets", tags=["tickets"], route_class=Route)


@router.get(
    "/{ticket_id}/messages", response_model=list[MessageOut], responses=responses(400, 401, 404)
)
async def list_messages(
    ticket_id: ObjectId,
    page: PageParams,
    user: CurrentUser,
    db: DbHandle,
    request: Request,
) -> Response:
    """The ticket's messages, oldest first, with their attachments. Paginated by `Link`."""
    result = await service.list_messages(db, viewer=user, ticket_id=ticket_id, page=page)
    files: dict[int, list[AttachmentRow]] = {}
    for row in await attachments.of_messages(db, ticket_id=ticket_id, page=list(result.items)):
        files.setdefault(row.message_id, []).append(row)
    listed = Response(encode_list(result.items, files), media_type="application/json")
    add_page_headers(request, listed, result)
    return listed


_MESSAGE_DOC: dict[str, Any] = {
    "status_code": status.HTTP_201_CREATED,
    "response_model": MessageOut,
    "responses": responses(400, 401, 403, 404, 409, 413, 422, 429),
    "dependencies": [WritesLimited],
}


async def post_message_with_files(
    ticket_id: ObjectId,
    text: Annotated[MessageText, Form()],
    user: CurrentUser,
    db: DbHandle,
    idempotency: IdempotencyKey,
    request: Request,
    settings: AppSettings,
    internal: Annotated[bool, Form()] = False,
    files: Files = None,
) -> MessageOut | Response:
    uploads = await uploads_of(files, settings)
    body = MessageUpload(
        text=text,
        internal=internal,
        files=[(u.filename, hashlib.sha256(u.data).hexdigest()) for u in uploads],
    )
    limits = Limits.of(settings)

    async def add_message() -> MessageOut:
        row, attached = await attachments.post_message(
            db,
            request.app.state.storage,
            viewer=user,
            ticket_id=ticket_id,
            text=text,
            internal=internal,
            uploads=uploads,
            limits=limits,
        )
        return MessageOut.of(row, attached)

    return await idempotency.run(db, user_id=user.id, body=body, status_code=201, work=add_message)


# Before the JSON route: it takes only the multipart bodies, and passes the rest on.
router.add_api_route(
    "/{ticket_id}/messages",
    post_message_with_files,
    methods=["POST"],
    route_class_override=MultipartRoute,
    include_in_schema=False,  # documented on the JSON operation below
    **_MESSAGE_DOC,
)


@router.post(
    "/{ticket_id}/messages",
    openapi_extra={"requestBody": {"content": {"multipart/form-data": MULTIPART_MESSAGE}}},
    **_MESSAGE_DOC,
)
async def post_message(
    ticket_id: ObjectId,
    body: MessageCreate,
    user: CurrentUser,
    db: DbHandle,
    idempotency: IdempotencyKey,
) -> MessageOut | Response:
    """Add a message: a request from the customer, a response or an internal note from staff.

    As `multipart/form-data`, with files (`files`, repeated) attached to it. Safe to retry
    with Idempotency-Key.
    """

    async def add_message() -> MessageOut:
        row = await service.post_message(
            db, viewer=user, ticket_id=ticket_id, text=body.text, internal=body.internal
        )
        return MessageOut.of(row)

    return await idempotency.run(db, user_id=user.id, body=body, status_code=201, work=add_message)
