"""All SQL of attachments, and who may read one (the same rule as for its message)."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, insert, select, update

from ticketdesk.auth.principal import Viewer
from ticketdesk.db import Db, Statement, constants
from ticketdesk.models import attachments, messages, tickets


class AttachmentRow(NamedTuple):
    id: int
    message_id: int
    filename: str
    content_type: str
    size: int


class StoredAttachment(NamedTuple):
    filename: str
    content_type: str
    size: int
    sha256: str


_COLUMNS = (
    attachments.c.id,
    attachments.c.message_id,
    attachments.c.filename,
    attachments.c.content_type,
    attachments.c.size,
)

_INSERT = Statement(
    insert(attachments)
    .values(
        message_id=bindparam("message_id"),
        ticket_id=bindparam("ticket_id"),
        filename=bindparam("filename"),
        content_type=bindparam("content_type"),
        size=bindparam("size"),
        sha256=bindparam("sha256"),
        created_at=bindparam("now"),
    )
    .returning(*_COLUMNS)
)
_COUNTED = Statement(
    update(messages)
    .where(messages.c.id == bindparam("message_id"))
    .values(attachment_count=bindparam("count"))
)


async def add(
    db: Db, *, ticket_id: int, message_id: int, files: list[StoredAttachment], now: datetime
) -> list[AttachmentRow]:
    """The message's attachments, in the request's transaction."""
    rows = []
    for file in files:
        row = await db.first(
            _INSERT,
            {**file._asdict(), "message_id": message_id, "ticket_id": ticket_id, "now": now},
        )
        assert row is not None
        rows.append(AttachmentRow(*row))
    await db.execute(_COUNTED, {"message_id": message_id, "count": len(files)})
    return rows


_OF_MESSAGES = Statement(
    select(*_COLUMNS)
    .where(
        attachments.c.ticket_id == bindparam("ticket_id"),
        attachments.c.message_id.between(bindparam("first"), bindparam("last")),
    )
    .order_by(attachments.c.message_id, attachments.c.id)
)


async def of_messages(db: Db, *, ticket_id: int, first: int, last: int) -> list[AttachmentRow]:
    """The attachments of the ticket's messages with ids from `first` to `last`.

    The caller has read those messages as the viewer may see them.
    """
    params = {"ticket_id": ticket_id, "first": first, "last": last}
    return [AttachmentRow(*row) for row in await db.all(_OF_MESSAGES, params)]


def _visible(viewer_is_agent: bool) -> Statement:
    query = (
        select(
            attachments.c.filename,
            attachments.c.content_type,
            attachments.c.size,
            attachments.c.sha256,
        )
        .join(messages, messages.c.id == attachments.c.message_id)
        .join(tickets, tickets.c.id == attachments.c.ticket_id)
        .where(attachments.c.id == bindparam("attachment_id"))
    )
    if not viewer_is_agent:
        query = query.where(
            tickets.c.author_id == bindparam("viewer_id"),
            messages.c.type != constants("note")[0],
        )
    return Statement(query)


_VISIBLE = {is_agent: _visible(is_agent) for is_agent in (False, True)}


async def visible(db: Db, viewer: Viewer, attachment_id: int) -> StoredAttachment | None:
    """The attachment, if the viewer may read its message: notes' for agents only."""
    params = {"attachment_id": attachment_id, "viewer_id": viewer.id}
    row = await db.first(_VISIBLE[viewer.is_agent], params)
    return StoredAttachment(*row) if row is not None else None


_KEPT = Statement(
    select(attachments.c.id).where(attachments.c.sha256 == bindparam("sha256")).limit(1)
)


async def is_kept(db: Db, sha256: str) -> bool:
    """Whether any attachment holds this content."""
    return await db.first(_KEPT, {"sha256": sha256}) is not None
