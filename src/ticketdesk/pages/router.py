"""The browser app: a customer portal and an agent console, rendered on the server.

The pages call the same services as the API, with the request's database handle; they
never call the API over HTTP. Every form posts, then redirects to a page (POST, redirect,
GET), so each flow works without JavaScript; `static/app.js` only adds live updates,
keyboard shortcuts and relative times.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ticketdesk.attachments import service as attachments
from ticketdesk.attachments.repository import AttachmentRow
from ticketdesk.attachments.router import Files, read_uploads
from ticketdesk.attachments.service import Limits
from ticketdesk.auth import service as auth
from ticketdesk.auth.principal import Viewer
from ticketdesk.auth.schemas import LoginIn
from ticketdesk.db import Db
from ticketdesk.errors import Forbidden, NotFound, TicketdeskError, Unauthorized
from ticketdesk.events import service as events
from ticketdesk.pages.assets import FOREVER, Assets
from ticketdesk.pages.console import agent_ticket_context
from ticketdesk.pages.forms import FormErrors, parse
from ticketdesk.pages.rendering import (
    PageRoute,
    error_page,
    megabytes,
    redirect,
    render,
    same_origin,
)
from ticketdesk.pages.session import Counted, MaybeSignedIn, SignedIn, safe_next
from ticketdesk.pagination import PageRequest
from ticketdesk.settings import AppSettings, Settings
from ticketdesk.tickets import rules, sla
from ticketdesk.tickets import service as tickets
from ticketdesk.tickets.schemas import MessageCreate, RatingIn, TicketCreate
from ticketdesk.users import service as users
from ticketdesk.users.schemas import MeUpdate, UserCreate
from ticketdesk.web.cookies import clear_token_cookie, set_token_cookie
from ticketdesk.web.ratelimits import (
    Limiter,
    client_address,
    login_within_limits,
    password_check_within_limits,
)
from ticketdesk.web.routing import DbHandle

router = APIRouter(route_class=PageRoute, include_in_schema=False)
SameOrigin = Depends(same_origin)


PAGE_SIZE = 25
CLOSED = (
    "Accounts are opened by the support team: write to the support address, and your first "
    "mail opens your account."
)
"""The sign-up page's notice when REGISTRATION=closed: it takes new staff with a key only."""
THREAD_SIZE = 500
FILES_AGAIN = "The files you chose were not sent: choose them again (a browser does not keep them)."
THEN = {"": None, "pending": "pending", "unresolved": "unresolved", "resolved": "resolved"}
"""What the composer's buttons may set once the reply is sent (nothing: the status stays)."""


def home_of(viewer: Viewer) -> str:
    return "/app/queue" if viewer.is_agent else "/app/tickets"


@router.get("/app/static/{name}")
async def static(name: str, request: Request) -> Response:
    assets: Assets = request.app.state.assets
    asset = assets.served.get(name)
    if asset is None:
        raise NotFound("no such file")
    return Response(asset.content, media_type=asset.media_type, headers={"Cache-Control": FOREVER})


# signing in and out


@router.get("/")
async def landing(
    request: Request,
    viewer: MaybeSignedIn,
    next: str | None = None,
    expired: str | None = None,
    reset: str | None = None,
    signed_out: str | None = None,
) -> Response:
    """Sign in, or go home when signed in already."""
    if viewer is not None:
        return redirect(request, safe_next(next) if next else home_of(viewer))
    message = "Your session expired. Sign in again to continue." if expired else None
    if reset:
        message = "Your new password is set. Sign in with it."
    elif signed_out:
        message = "You are signed out."
    settings: Settings = request.app.state.settings
    context = {"next": safe_next(next), "notice": message, "open": settings.registration == "open"}
    return render(request, "sign_in.html", context)


@router.get("/favicon.ico")
async def favicon(request: Request) -> Response:
    """Browsers ask for /favicon.ico by themselves: they get the pages' icon. Its address
    changes with its content, so this answer is kept for a day only."""
    assets: Assets = request.app.state.assets
    return RedirectResponse(
        assets.url("favicon.svg"), status_code=302, headers={"Cache-Control": "max-age=86400"}
    )


@router.get("/app")
async def app_home(request: Request, viewer: SignedIn) -> Response:
    return redirect(request, home_of(viewer))


@router.post("/app/sign-in", dependencies=[SameOrigin])
async def sign_in(
    request: Request,
    db: DbHandle,
    limiter: Limiter,
    settings: AppSettings,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/app",
) -> Response:
    values = {"email": email, "next": safe_next(next)}
    try:
        parse(LoginIn, {"email": email, "password": password})
    except FormErrors as exc:
        return render(request, "sign_in.html", {**values, "errors": exc.errors}, 400)
    try:
        token, _claims, _quota = await login_within_limits(
            limiter,
            db,
            settings,
            address=client_address(request),
            email=email,
            password=password,
        )
    except NotFound:
        errors = {"form": "Wrong email or password."}
        return render(request, "sign_in.html", {**values, "errors": errors}, 400)
    response = RedirectResponse(safe_next(next), status_code=303)
    set_token_cookie(response, token, settings)
    return response


WRONG_STAFF_KEY = (
    "This staff key does not work: it is mistyped, used already, expired or withdrawn. "
    "Ask your administrator for a new one."
)
STAFF_KEY_NEEDED = "Only new staff sign up here, with the staff key they were given."


@router.get("/app/sign-up")
async def sign_up_page(request: Request, viewer: MaybeSignedIn) -> Response:
    """Sign up; with a staff key, as staff. With REGISTRATION=closed, staff only (the page
    says how customers get an account)."""
    if viewer is not None:
        return redirect(request, home_of(viewer))
    settings: Settings = request.app.state.settings
    closed = settings.registration == "closed"
    context = {"closed": CLOSED if closed else None, "mail": settings.mail_enabled}
    return render(request, "sign_up.html", context)


@router.post("/app/sign-up", dependencies=[SameOrigin])
async def sign_up(
    request: Request,
    db: DbHandle,
    limiter: Limiter,
    settings: AppSettings,
    username: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    staff_key: Annotated[str, Form()] = "",
) -> Response:
    """The API's registration, with the staff key as its credential: the key is spent, and
    the account is staff, or nothing is kept at all."""
    closed = settings.registration == "closed"
    key = staff_key.strip() or None
    values: dict[str, Any] = {"username": username, "email": email, "staff_key": key or ""}
    values |= {"closed": CLOSED if closed else None, "mail": settings.mail_enabled}
    await limiter.hit(limiter.register_per_ip, client_address(request))
    fields = {"username": username, "email": email, "password": password, "isStaff": bool(key)}
    try:
        data = parse(UserCreate, fields)
        user = await users.register(
            db,
            data,
            credential=key,
            staff_token=None,  # the STAFF_TOKEN is for the API: a page takes staff keys only
            trial_domains=settings.trial_domain_names,
            closed=closed,
        )
    except FormErrors as exc:
        return render(request, "sign_up.html", {**values, "errors": exc.errors}, 400)
    except Unauthorized:
        errors = {"staff_key": WRONG_STAFF_KEY}
        return render(request, "sign_up.html", {**values, "errors": errors}, 400)
    except Forbidden:
        errors = {"staff_key": STAFF_KEY_NEEDED}
        return render(request, "sign_up.html", {**values, "errors": errors}, 403)
    except TicketdeskError as exc:
        if exc.status_code != 400:
            raise
        return render(request, "sign_up.html", {**values, "errors": {"email": exc.detail}}, 400)
    token, _claims = auth.issue_token(settings, user_id=user.id, version=0)
    response = RedirectResponse("/app/queue" if user.is_staff else "/app/tickets", 303)
    set_token_cookie(response, token, settings)
    return response


@router.post("/app/sign-out", dependencies=[SameOrigin])
async def sign_out(
    request: Request, viewer: MaybeSignedIn, db: DbHandle, settings: AppSettings
) -> Response:
    if viewer is not None:
        with contextlib.suppress(Unauthorized):  # signed out twice at once: both go home
            await auth.logout(db, viewer)
    response = RedirectResponse("/?signed_out=1", status_code=303)
    clear_token_cookie(response, settings)
    return response


# the customer's tickets (agents reach the same pages, with their console around them)


@router.get("/app/tickets")
async def my_tickets(
    request: Request, viewer: SignedIn, db: DbHandle, cursor: str | None = None
) -> Response:
    if viewer.is_agent:
        return redirect(request, "/app/queue")
    page = await tickets.list_tickets(
        db,
        viewer=viewer,
        page=PageRequest(limit=PAGE_SIZE, cursor=cursor, count=False),
        sort="-updated_at",
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
    values = {"topic": topic, "message": message}
    limits = Limits.of(settings)
    status_code = 400
    try:
        data = parse(TicketCreate, {"topic": topic, "text": message})
        uploads = await read_uploads(files, settings)
        ticket_id = await attachments.open_ticket(
            db,
            request.app.state.storage,
            author=viewer,
            topic=data.topic,
            text=data.text,
            uploads=uploads,
            limits=limits,
            policy=settings.sla_policy,
        )
    except FormErrors as exc:
        errors = {"message" if k == "text" else k: v for k, v in exc.errors.items()}
    except TicketdeskError as exc:
        if exc.status_code not in (400, 409, 413):
            raise
        errors = {_failed_field(exc): _in_words(exc, limits)}
        status_code = exc.status_code
    else:
        return redirect(request, f"/app/tickets/{ticket_id}")
    await db.finish(commit=False)
    if any(not isinstance(file, str) and file.filename for file in files or ()):
        errors.setdefault("files_again", FILES_AGAIN)
    context = {"viewer": viewer, "values": values, "errors": errors, "limits": limits}
    return render(request, "new_ticket.html", context, status_code)


async def thread_of(
    db: Db, viewer: Viewer, ticket_id: int
) -> tuple[list[Any], dict[int, list[AttachmentRow]]]:
    page = await tickets.list_messages(
        db,
        viewer=viewer,
        ticket_id=ticket_id,
        page=PageRequest(limit=THREAD_SIZE, cursor=None, count=False),
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
    last_public = next((m.type for m in reversed(messages) if m.type != "note"), None)
    context: dict[str, Any] = {
        "viewer": viewer,
        "ticket": ticket,
        "messages": messages,
        "files": files,
        "names": await tickets.author_names(db, ticket=ticket),
        "waiting": rules.waiting_on(ticket.status, last_public),
        "limits": Limits.of(settings),
        "values": {},
        "errors": {},
        "after": after,
        **extra,
    }
    if viewer.is_agent:
        context |= await agent_ticket_context(db, viewer, ticket)
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
    status_code = 400
    values = {"message": message, "internal": is_note, "then": then, "assign": assign}
    try:
        data = parse(MessageCreate, {"text": message, "internal": is_note})
        if then not in THEN or (then and not viewer.is_agent):
            raise FormErrors({"then": "Choose what the ticket becomes from the buttons."})
        uploads = await read_uploads(files, settings)
        await attachments.post_message(
            db,
            request.app.state.storage,
            viewer=viewer,
            ticket_id=ticket_id,
            text=data.text,
            internal=data.internal,
            uploads=uploads,
            limits=Limits.of(settings),
        )
        if viewer.is_agent:
            take = bool(assign) and not is_note
            await _after_reply(db, viewer, ticket_id, then, take=take, policy=settings.sla_policy)
    except FormErrors as exc:
        errors = {"message" if k == "text" else k: v for k, v in exc.errors.items()}
    except TicketdeskError as exc:
        if exc.status_code not in (400, 409, 413):
            raise
        errors = {_failed_field(exc): _in_words(exc, Limits.of(settings))}
        status_code = exc.status_code
    else:
        kind = "note" if is_note else "reply"
        return redirect(request, f"/app/tickets/{ticket_id}?sent={kind}#composer")
    await db.finish(commit=False)  # nothing of a refused post is shown, or kept
    if any(not isinstance(file, str) and file.filename for file in files or ()):
        errors.setdefault("files_again", FILES_AGAIN)
    extra = {"values": values, "errors": errors}
    return await render_ticket(request, db, viewer, ticket_id, extra, status_code)


async def _after_reply(
    db: Db, viewer: Viewer, ticket_id: int, then: str, *, take: bool, policy: sla.Policy
) -> None:
    current = await tickets.get_ticket(db, viewer=viewer, ticket_id=ticket_id)
    changes = tickets.TicketChanges(
        status=THEN[then],  # type: ignore[arg-type]
        assignee_id=viewer.id if take and current.assignee_id is None else tickets.UNCHANGED,
    )
    if changes.status is not None or changes.assignee_id is not tickets.UNCHANGED:
        await tickets.change_ticket(
            db, viewer=viewer, ticket_id=ticket_id, changes=changes, policy=policy
        )


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
        db, viewer=viewer, ticket_id=ticket_id, status="canceled", policy=settings.sla_policy
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
    from fastapi.responses import FileResponse

    found, path = await attachments.download(
        db, request.app.state.storage, viewer=viewer, attachment_id=attachment_id
    )
    return FileResponse(
        path,
        media_type=found.content_type,
        filename=found.filename,
        content_disposition_type="attachment",
        headers={"Cache-Control": "private, no-store"},
    )


# the account


async def _mail_choices(db: Db, viewer: Viewer) -> Any:
    return await users.mail_choices(db, user=viewer) if viewer.is_agent else None


@router.get("/app/account")
async def account_page(
    request: Request, viewer: SignedIn, db: DbHandle, saved: str | None = None
) -> Response:
    mail = await _mail_choices(db, viewer)
    context = {"viewer": viewer, "saved": saved, "values": {}, "mail": mail}
    return render(request, "account.html", context)


@router.post("/app/account/mail", dependencies=[SameOrigin, Counted])
async def save_mail_choices(
    request: Request,
    viewer: SignedIn,
    db: DbHandle,
    new_tickets: Annotated[str, Form()] = "",
    customer_replies: Annotated[str, Form()] = "",
) -> Response:
    await users.choose_mail(
        db,
        user=viewer,
        new_tickets=new_tickets == "on",
        customer_replies=customer_replies == "on",
    )
    return redirect(request, "/app/account?saved=1")


@router.post("/app/account", dependencies=[SameOrigin, Counted])
async def save_account(
    request: Request,
    viewer: SignedIn,
    db: DbHandle,
    settings: AppSettings,
    limiter: Limiter,
    username: Annotated[str, Form()] = "",
    current_password: Annotated[str, Form()] = "",
    new_password: Annotated[str, Form()] = "",
) -> Response:
    values: dict[str, Any] = {}
    if username and username != viewer.username:
        values["username"] = username
    if new_password:
        values["password"] = new_password
        values["current_password"] = current_password or None
    try:
        changes = parse(MeUpdate, values)
        version = await password_check_within_limits(
            limiter,
            email=viewer.email,
            check=lambda: users.update_me(db, user=viewer, changes=changes),
        )
    except FormErrors as exc:
        context = {"viewer": viewer, "errors": exc.errors, "values": {"username": username}}
        context["mail"] = await _mail_choices(db, viewer)
        return render(request, "account.html", context, 400)
    except TicketdeskError as exc:
        if exc.status_code != 400:
            raise
        errors = {"current_password": "The current password is not right."}
        context = {"viewer": viewer, "errors": errors, "values": {"username": username}}
        context["mail"] = await _mail_choices(db, viewer)
        return render(request, "account.html", context, 400)
    response = redirect(request, "/app/account?saved=1")
    if version is not None:
        token, _claims = auth.issue_token(settings, user_id=viewer.id, version=version)
        set_token_cookie(response, token, settings)
    return response


last = APIRouter(route_class=PageRoute, include_in_schema=False)
"""Routed after every other page."""


@last.get("/app/{rest:path}")
async def not_found(request: Request, rest: str, viewer: MaybeSignedIn) -> HTMLResponse:
    request.state.viewer = viewer
    return error_page(request, 404, "There is no page at this address.")
