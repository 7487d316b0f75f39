"""An attached file sent back, for the API and the pages alike: always a download.

A file comes back as an attachment (Content-Disposition), never shown in the browser where
a page of this site could run it, under the type its content was found to have; nosniff is
on every answer (see `headers.py`). Nobody else may read it, so it is never cached.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import FileResponse

from ticketdesk.attachments import service as attachments
from ticketdesk.auth.principal import Viewer
from ticketdesk.db import Db

NOT_CACHED = "private, no-store"


async def send_attachment(
    request: Request, db: Db, viewer: Viewer, attachment_id: int
) -> FileResponse:
    """The attachment's file as a download, for a viewer who may read its message (else the
    service's NotFound: whether it exists is not for others to learn)."""
    found, path = await attachments.download(
        db, request.app.state.storage, viewer=viewer, attachment_id=attachment_id
    )
    return FileResponse(
        path,
        media_type=found.content_type,
        filename=found.filename,
        content_disposition_type="attachment",
        headers={"Cache-Control": NOT_CACHED},
    )
