"""Files attached to messages: limits, safe names and types, keeping and serving them.

A message's files are stored before its row is written (content-addressed, so storing
twice keeps one copy), and their rows commit with the message's. Contents no row refers
to, such as those of a request that failed after storing them, are swept away once they
are older than `ORPHAN_GRACE_S`: an upload still on its way is never taken.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import anyio
import puremagic

from ticketdesk.attachments import repository
from ticketdesk.attachments.repository import AttachmentRow, StoredAttachment
from ticketdesk.attachments.storage import Storage
from ticketdesk.auth.principal import Viewer
from ticketdesk.db import Database, Db
from ticketdesk.errors import BadRequest, NotFound, PayloadTooLarge
from ticketdesk.messages import service as messages
from ticketdesk.messages.repository import MessageRow
from ticketdesk.pagination import PageRequest
from ticketdesk.settings import Settings
from ticketdesk.sla import Policy
from ticketdesk.tickets import service as tickets

__all__ = ["AttachmentRow"]

log = logging.getLogger("ticketdesk")

ORPHAN_GRACE_S = 3600.0
SERVED_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"})
"""Types served as what they are; anything else is text/plain (if it is UTF-8 text) or
application/octet-stream. Never HTML, SVG or script: a download must not run in a page."""
TEXT = "text/plain; charset=utf-8"
BINARY = "application/octet-stream"
MAX_FILENAME = 255


@dataclass(frozen=True)
class Limits:
    per_file: int
    per_message: int
    files: int

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            per_file=settings.attachment_max_bytes,
            per_message=settings.message_attachments_max_bytes,
            files=settings.message_attachments_max_files,
        )


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes


class UploadedFile(Protocol):
    """A file as a form brought it (a web framework's upload)."""

    @property
    def filename(self) -> str | None: ...

    async def read(self, size: int = -1) -> bytes: ...


async def read_uploads(files: Sequence[UploadedFile], *, max_bytes: int) -> list[Upload]:
    """The files read, each up to one byte past `max_bytes` (so a file too large shows)."""
    return [Upload(file.filename or "", await file.read(max_bytes + 1)) for file in files]


def sniff(data: bytes) -> str:
    """The type of the content, by its bytes, never by its name or the client's word."""
    try:
        found = puremagic.from_string(data, mime=True)
    except (puremagic.PureError, ValueError):
        found = ""
    if found in SERVED_TYPES:
        return found
    if not found and b"\x00" not in data:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return BINARY
        return TEXT
    return BINARY


def clean_filename(name: str) -> str:
    """The file's own name, without folders or control characters, at most 255 characters.

    Browsers send a double quote, CR and LF in a file name as %22, %0D and %0A.
    """
    name = name.replace("%22", '"').replace("%0D", "").replace("%0A", "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip().strip(".")
    return name[:MAX_FILENAME] or "attachment"


def check(uploads: list[Upload], limits: Limits) -> None:
    if len(uploads) > limits.files:
        raise BadRequest(f"at most {limits.files} files per message")
    for upload in uploads:
        if len(upload.data) > limits.per_file:
            raise PayloadTooLarge(f"a file may have at most {limits.per_file} bytes")
    if sum(len(upload.data) for upload in uploads) > limits.per_message:
        raise PayloadTooLarge(f"a message's files may have at most {limits.per_message} bytes")


async def post_message(
    db: Db,
    storage: Storage,
    *,
    viewer: Viewer,
    ticket_id: int,
    text: str,
    internal: bool,
    uploads: list[Upload],
    limits: Limits,
) -> tuple[MessageRow, list[AttachmentRow]]:
    """The message with its files: the files kept first, then everything in one transaction."""
    check(uploads, limits)
    await tickets.get_ticket(db, viewer=viewer, ticket_id=ticket_id)  # no files for a 404
    stored = [await _store(storage, upload) for upload in uploads]
    await db.begin()
    message = await messages.post_message(
        db, viewer=viewer, ticket_id=ticket_id, text=text, internal=internal
    )
    rows = await repository.add(
        db, ticket_id=ticket_id, message_id=message.id, files=stored, now=message.created_at
    )
    return message._replace(attachment_count=len(rows)), rows


async def of_messages(db: Db, *, ticket_id: int, page: list[MessageRow]) -> list[AttachmentRow]:
    """The attachments of a page of the ticket's messages (read as the viewer may see them)."""
    if not any(message.attachment_count for message in page):
        return []
    return await repository.of_messages(db, ticket_id=ticket_id, first=page[0].id, last=page[-1].id)


async def download(
    db: Db, storage: Storage, *, viewer: Viewer, attachment_id: int
) -> tuple[StoredAttachment, Path]:
    found = await repository.visible(db, viewer, attachment_id)
    if found is None:
        raise NotFound("no such attachment")
    path = storage.path(found.sha256)
    if not await anyio.to_thread.run_sync(path.is_file):
        log.error("attachment %d: its content %s is missing from storage", attachment_id, path)
        raise NotFound("the attachment's content is missing")
    return found, path


async def sweep(database: Database, storage: Storage, *, grace_s: float = ORPHAN_GRACE_S) -> int:
    """Delete the stored contents no attachment refers to; how many went."""
    removed = 0
    candidates = await anyio.to_thread.run_sync(lambda: list(storage.older_than(grace_s)))
    for sha256 in candidates:
        async with database.session() as db:
            kept = await repository.is_kept(db, sha256)
        if not kept:
            await anyio.to_thread.run_sync(storage.delete, sha256)
            removed += 1
    if removed:
        log.info("removed %d stored attachment contents no message refers to", removed)
    return removed


async def open_ticket(
    db: Db,
    storage: Storage,
    *,
    author: Viewer,
    topic: str,
    text: str,
    uploads: list[Upload],
    limits: Limits,
    sla_policy: Policy,
) -> int:
    """A new ticket whose first message carries the files; the ticket's id."""
    check(uploads, limits)
    stored = [await _store(storage, upload) for upload in uploads]
    await db.begin()
    ticket_id = await tickets.create_ticket(
        db, author=author, topic=topic, text=text, sla_policy=sla_policy
    )
    if stored:
        first = await messages.list_messages(
            db,
            viewer=author,
            ticket_id=ticket_id,
            page=PageRequest(limit=1, cursor=None, count=False),
        )
        message = first.items[0]
        await repository.add(
            db, ticket_id=ticket_id, message_id=message.id, files=stored, now=message.created_at
        )
    return ticket_id


async def _store(storage: Storage, upload: Upload) -> StoredAttachment:
    sha256 = await anyio.to_thread.run_sync(storage.put, upload.data)
    return StoredAttachment(
        clean_filename(upload.filename), sniff(upload.data), len(upload.data), sha256
    )
