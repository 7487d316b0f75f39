"""People: the users staff look after (the list, a user's page, blocking, staff rights), and
each person's own account (name, password, and for staff the mail they want)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import Response

from ticketdesk.auth import service as auth
from ticketdesk.auth.principal import Viewer
from ticketdesk.db import Db
from ticketdesk.errors import BadRequest, TicketdeskError
from ticketdesk.pages.common import SameOrigin, page_router, rows
from ticketdesk.pages.forms import FormErrors, parse, submit
from ticketdesk.pages.rendering import redirect, render
from ticketdesk.pages.session import Agent, Counted, SignedIn
from ticketdesk.settings import AppSettings
from ticketdesk.tickets import service as tickets
from ticketdesk.tickets.filters import TicketFilter
from ticketdesk.users import service as users
from ticketdesk.users.schemas import MeUpdate, UserUpdate
from ticketdesk.web.cookies import set_token_cookie
from ticketdesk.web.ratelimits import Limiter
from ticketdesk.web.routing import DbHandle

router = page_router()

LIST_SIZE = 50
WRONG_CURRENT = "The current password is not right."
ACTIONS = {
    "block": UserUpdate(is_active=False),
    "unblock": UserUpdate(is_active=True),
    "make-staff": UserUpdate(is_staff=True),
    "remove-staff": UserUpdate(is_staff=False),
}
"""What each button of a user's page changes."""


@router.get("/app/users")
async def user_list(
    request: Request, viewer: Agent, db: DbHandle, cursor: str | None = None
) -> Response:
    page = await users.list_users(db, page=rows(LIST_SIZE, cursor))
    return render(
        request, "users.html", {"viewer": viewer, "users": page.items, "next": page.next_cursor}
    )


@router.get("/app/users/{user_id}")
async def user_page(request: Request, user_id: int, viewer: Agent, db: DbHandle) -> Response:
    user = await users.get_user(db, user_id)
    their = await tickets.list_tickets(
        db,
        viewer=viewer,
        page=rows(LIST_SIZE),
        filters=TicketFilter(author_id=user_id),
        sort="-updated_at",
    )
    return render(request, "user.html", {"viewer": viewer, "user": user, "tickets": their.items})


@router.post("/app/users/{user_id}", dependencies=[SameOrigin, Counted])
async def change_user(
    request: Request,
    user_id: int,
    viewer: Agent,
    db: DbHandle,
    action: Annotated[str, Form()] = "",
) -> Response:
    changes = ACTIONS.get(action)
    if changes is None:
        raise BadRequest("unknown action")
    await users.update_user(db, actor=viewer, user_id=user_id, changes=changes)
    return redirect(request, f"/app/users/{user_id}")


# one's own account


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

    async def attempt() -> Response:
        changes = parse(MeUpdate, values)
        try:
            version = await auth.password_check_within_limits(
                limiter,
                email=viewer.email,
                check=lambda: users.update_me(db, user=viewer, changes=changes),
            )
        except TicketdeskError as exc:
            if exc.status_code != 400:
                raise
            raise FormErrors({"current_password": WRONG_CURRENT}) from None
        response = redirect(request, "/app/account?saved=1")
        if version is not None:
            token, _claims = auth.issue_token(settings, user_id=viewer.id, version=version)
            set_token_cookie(response, token, settings)
        return response

    async def again(exc: FormErrors) -> Response:
        mail = await _mail_choices(db, viewer)
        context = {"viewer": viewer, "values": {"username": username}, "mail": mail}
        return render(request, "account.html", {**context, "errors": exc.errors}, exc.status_code)

    return await submit(attempt(), again)
