"""A customer's tickets: the list, a new ticket, a ticket's page and its replies, rating,
cancelling, and the files of its messages. Staff reach the same ticket page and composer,
with their console around them (`agent_context.around_the_thread`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Form, Request, UploadFile
from fastapi.responses import Response

from ticketdesk import sla
from ticketdesk.attachments import service as attachments
from ticketdesk.attachments.repository import AttachmentRow
from ticketdesk.attachments.service import Limits
from ticketdesk.auth.principal import Viewer
from ticketdesk.db import Db
from ticketdesk.errors import TicketdeskError
from ticketdesk.events import service as events
from ticketdesk.messages import service as message_service
from ticketdesk.messages.schemas import MessageCreate
from ticketdesk.pages.agent_context import around_the_thread
from ticketdesk.pages.common import SameOrigin, page_router, rows
from ticketdesk.pages.forms import FormErrors, ShowAgain, parse, same_page, submit
from ticketdesk.pages.rendering import error_page, megabytes, redirect, render
from ticketdesk.pages.session import Counted, SignedIn
from ticketdesk.settings import AppSettings, Settings
from ticketdesk.tickets import policy
from ticketdesk.tickets import service as tickets
from ticketdesk.tickets.schemas import RatingIn, TicketCreate
from ticketdesk.web.downloads import send_attachment
from ticketdesk.web.routing import DbHandle
from ticketdesk.web.uploads import Files, uploads_of

router = page_router()

PAGE_SIZE = 25
THREAD_SIZE = 500
FILES_AGAIN = "The files you chose were not sent: choose them again (a browser does not keep them)."
THEN: dict[str, policy.Status | None] = {"": None, **{s: s for s in policy.AGENT_TARGETS}}
"""What the composer's buttons may set once the reply is sent (nothing: the status stays)."""
MESSAGE = {"text": "message"}
"""The API's `text` is the composer's `message` field."""


@router.get("/app/tickets")
async def my_tickets(
    request: Request, viewer: SignedIn, db: DbHandle, cursor: str | None = None
) -> Response:
    if viewer.is_agent:
        return redirect(request, "/app/queue")
    page = await tickets.list_tickets(
        db, viewer=viewer, page=rows(PAGE_SIZE, cursor), sort="-updated_at"
    )
    context = {
        "viewer": viewer,
        "tickets": page.items,
        "waiting": await tickets.waiting_on(db, list(page.items)),
        "next": page.next_cursor,
    }
    return render(request, "my_tickets.html", context)


@router.get("/app/tickets/new")
async def new_ticket_page(request: Request, viewer: SignedIn, settings: AppSettings) -> Response:
    context = {"viewer": viewer, "values": {}, "limits": Limits.of(settings)}
    return render(request, "new_ticket.html", context)


@router.post("/app/tickets", dependencies=[SameOrigin, Counted])
async def open_ticket(
    request: Request,
    viewer: SignedIn,
    db: DbHandle,
    settings: AppSettings,
    topic: Annotated[str, Form()] = "",
    message: Annotated[str, Form()] = "",
    files: Files = None,
) -> Response:
    """Open a ticket; a mistake shows the form again with what was typed, and says so."""
    limits = Limits.of(settings)

    async def attempt() -> Response:
        data = parse(TicketCreate, {"topic": topic, "text": message}, names=MESSAGE)
        with _refusals_in_words(limits):
            uploads = await uploads_of(files, settings)
            ticket_id = await attachments.open_ticket(
                db,
                request.app.state.storage,
                author=viewer,
                topic=data.topic,
                text=data.text,
                uploads=uploads,
                limits=limits,
                sla_policy=settings.sla_policy,
            )
        return redirect(request, f"/app/tickets/{ticket_id}")

    values = {"topic": topic, "message": message}
    context = {"viewer": viewer, "values": values, "limits": limits}
    again = same_page(request, "new_ticket.html", context)
    return await submit(attempt(), _nothing_kept(db, files, again))


async def thread_of(
    db: Db, viewer: Viewer, ticket_id: int
) -> tuple[list[Any], dict[int, list[AttachmentRow]]]:
    page = await message_service.list_messages(
        db, viewer=viewer, ticket_id=ticket_id, page=rows(THREAD_SIZE)
    )
    files: dict[int, list[AttachmentRow]] = {}
    for row in await attachments.of_messages(db, ticket_id=ticket_id, page=list(page.items)):
        files.setdefault(row.message_id, []).append(row)
    return list(page.items), files


@router.get("/app/tickets/{ticket_id}")
async def ticket_page(
    request: Request, ticket_id: int, viewer: SignedIn, db: DbHandle, sent: str | None = None
) -> Response:
    return await render_ticket(request, db, viewer, ticket_id, {"sent": sent})


async def render_ticket(
    request: Request,
    db: Db,
    viewer: Viewer,
    ticket_id: int,
    extra: dict[str, Any],
    status_code: int = 200,
) -> Response:
    """A ticket's page, for its customer or for staff (with what the form sent, if it failed)."""
    settings: Settings = request.app.state.settings
    # A live page's stream starts after what the page shows: read first, so nothing is missed.
    after = await events.position(db, viewer=viewer) if viewer.is_agent else 0
    ticket = await tickets.get_ticket(db, viewer=viewer, ticket_id=ticket_id)
    messages, files = await thread_of(db, viewer, ticket_id)
    last_public = next((m.type for m in reversed(messages) if policy.customer_reads(m.type)), None)
    context: dict[str, Any] = {
        "viewer": viewer,
        "ticket": ticket,
        "messages": messages,
        "files": files,
        "names": await message_service.author_names(db, ticket=ticket),
        "waiting": policy.waiting_on(ticket.status, last_public),
        "limits": Limits.of(settings),
        "values": {},
        "errors": {},
        "after": after,
        **extra,
    }
    if viewer.is_agent:
        context |= await around_the_thread(db, viewer, ticket)
        context["agent_names"] = {**context["names"], **context["agent_names"]}  # the history's
        context["assign_on_reply"] = settings.assign_on_reply
        return render(request, "agent_ticket.html", context, status_code)
    return render(request, "ticket.html", context, status_code)


@router.post("/app/tickets/{ticket_id}/messages", dependencies=[SameOrigin, Counted])
async def reply(
    request: Request,
    ticket_id: int,
    viewer: SignedIn,
    db: DbHandle,
    settings: AppSettings,
    message: Annotated[str, Form()] = "",
    internal: Annotated[str | None, Form()] = None,
    then: Annotated[str, Form()] = "",
    assign: Annotated[str, Form()] = "",
    files: Files = None,
) -> Response:
    """Send a reply or a note; for staff, set the status it leaves (Send and resolve) and take
    a ticket nobody has, all in the one transaction. A mistake shows the ticket again, with
    the text as typed and the error beside its field."""
    is_note = internal is not None and viewer.is_agent
    limits = Limits.of(settings)

    async def attempt() -> Response:
        data = parse(MessageCreate, {"text": message, "internal": is_note}, names=MESSAGE)
        if then not in THEN or (then and not viewer.is_agent):
            raise FormErrors({"then": "Choose what the ticket becomes from the buttons."})
        with _refusals_in_words(limits):
            uploads = await uploads_of(files, settings)
            await attachments.post_message(
                db,
                request.app.state.storage,
                viewer=viewer,
                ticket_id=ticket_id,
                text=data.text,
                internal=data.internal,
                uploads=uploads,
                limits=limits,
            )
            if viewer.is_agent:
                take = bool(assign) and not is_note
                await _after_reply(
                    db, viewer, ticket_id, then, take=take, sla_policy=settings.sla_policy
                )
        kind = "note" if is_note else "reply"
        return redirect(request, f"/app/tickets/{ticket_id}?sent={kind}#composer")

    async def again(exc: FormErrors) -> Response:
        values = {"message": message, "internal": is_note, "then": then, "assign": assign}
        extra = {"values": values, "errors": exc.errors}
        return await render_ticket(request, db, viewer, ticket_id, extra, exc.status_code)

    return await submit(attempt(), _nothing_kept(db, files, again))


async def _after_reply(
    db: Db, viewer: Viewer, ticket_id: int, then: str, *, take: bool, sla_policy: sla.Policy
) -> None:
    current = await tickets.get_ticket(db, viewer=viewer, ticket_id=ticket_id)
    changes = tickets.TicketChanges(
        status=THEN[then],
        assignee_id=viewer.id if take and current.assignee_id is None else tickets.UNCHANGED,
    )
    if changes.status is not None or changes.assignee_id is not tickets.UNCHANGED:
        await tickets.change_ticket(
            db, viewer=viewer, ticket_id=ticket_id, changes=changes, sla_policy=sla_policy
        )


@contextlib.contextmanager
def _refusals_in_words(limits: Limits) -> Iterator[None]:
    """What the service refuses of a post that its writer can mend (a 400, 409 or 413), as
    an error beside the composer's field, with the refusal's status; any other refusal is
    the error page."""
    try:
        yield
    except TicketdeskError as exc:
        if exc.status_code not in (400, 409, 413):
            raise
        raise FormErrors({_failed_field(exc): _in_words(exc, limits)}, exc.status_code) from None


def _nothing_kept(db: Db, files: list[UploadFile | str] | None, again: ShowAgain) -> ShowAgain:
    """A refused post's page again: nothing of the post is shown, or kept, and the files it
    carried must be chosen again (a browser does not fill a file input in)."""

    async def show(exc: FormErrors) -> Response:
        await db.finish(commit=False)
        if any(not isinstance(file, str) and file.filename for file in files or ()):
            exc.errors.setdefault("files_again", FILES_AGAIN)
        return await again(exc)

    return show


def _failed_field(exc: TicketdeskError) -> str:
    """Which part of the composer a refusal is about."""
    if exc.status_code == 413 or "files" in exc.detail:
        return "files"
    return "form"


def _in_words(exc: TicketdeskError, limits: Limits) -> str:
    if exc.status_code == 413:
        return (
            f"The files are too large: each may be at most {megabytes(limits.per_file)}, "
            f"and all of a message's together {megabytes(limits.per_message)}."
        )
    if exc.status_code == 409:
        return f"This cannot be sent now: {exc.detail}."
    return exc.detail[:1].upper() + exc.detail[1:] + "."


@router.post("/app/tickets/{ticket_id}/cancel", dependencies=[SameOrigin, Counted])
async def cancel(
    request: Request, ticket_id: int, viewer: SignedIn, db: DbHandle, settings: AppSettings
) -> Response:
    await tickets.change_status(
        db,
        viewer=viewer,
        ticket_id=ticket_id,
        status=policy.CANCELED,
        sla_policy=settings.sla_policy,
    )
    return redirect(request, f"/app/tickets/{ticket_id}")


@router.post("/app/tickets/{ticket_id}/rating", dependencies=[SameOrigin, Counted])
async def rate(
    request: Request,
    ticket_id: int,
    viewer: SignedIn,
    db: DbHandle,
    score: Annotated[str, Form()] = "",
    comment: Annotated[str, Form()] = "",
) -> Response:
    try:
        data = parse(
            RatingIn,
            {"score": int(score) if score.isdigit() else score, "comment": comment or None},
        )
    except FormErrors:
        return error_page(request, 400, "Choose a score from 1 to 5.")
    await tickets.rate_ticket(
        db, viewer=viewer, ticket_id=ticket_id, score=data.score, comment=data.comment
    )
    return redirect(request, f"/app/tickets/{ticket_id}")


@router.get("/app/attachments/{attachment_id}")
async def download(
    request: Request, attachment_id: int, viewer: SignedIn, db: DbHandle
) -> Response:
    return await send_attachment(request, db, viewer, attachment_id)
