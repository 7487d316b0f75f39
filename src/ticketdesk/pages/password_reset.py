"""The pages to set a forgotten password: ask for a link, then choose the new password.

Without mail (SMTP_HOST unset) no link can reach anyone: the page says so, and whom to ask.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import BackgroundTasks, Form, Request
from fastapi.responses import Response

from ticketdesk.errors import BadRequest
from ticketdesk.pages.common import SameOrigin, page_router
from ticketdesk.pages.forms import FormErrors, parse, same_page, submit
from ticketdesk.pages.rendering import redirect, render
from ticketdesk.pages.session import MaybeSignedIn
from ticketdesk.password_reset import service
from ticketdesk.password_reset.schemas import ResetConfirm
from ticketdesk.schemas import normalize_email
from ticketdesk.settings import AppSettings
from ticketdesk.web.ratelimits import Limiter, client_address, limit_reset_request
from ticketdesk.web.routing import DbHandle

router = page_router()


@router.get("/app/password-reset")
async def ask_page(request: Request, viewer: MaybeSignedIn, settings: AppSettings) -> Response:
    context = {"viewer": viewer, "no_mail": not settings.mail_enabled}
    return render(request, "reset_request.html", context)


@router.post("/app/password-reset", dependencies=[SameOrigin])
async def ask(
    request: Request,
    limiter: Limiter,
    settings: AppSettings,
    after_answer: BackgroundTasks,
    email: Annotated[str, Form()] = "",
) -> Response:
    async def attempt() -> Response:
        if not email.strip():
            raise FormErrors({"email": "Enter the email address of your account."})
        address = normalize_email(email)
        await limit_reset_request(limiter, address=client_address(request), email=address)
        later = service.request_reset(request.app.state.database, email=address, settings=settings)
        if later is not None:
            after_answer.add_task(later)
        if not settings.mail_enabled:  # the service logged it, for the operator
            return render(request, "reset_request.html", {"no_mail": True})
        return render(request, "reset_sent.html", {"email": email.strip()})

    return await submit(attempt(), same_page(request, "reset_request.html", {}))


@router.get("/app/password-reset/confirm")
async def choose_page(request: Request, db: DbHandle, token: str = "") -> Response:
    """The new password's form; a used or expired link says so at once (and stays unused)."""
    if not token or not await service.link_works(db, token=token):
        return render(request, "reset_confirm.html", {"spent": True}, 410)
    return render(request, "reset_confirm.html", {"token": token})


@router.post("/app/password-reset/confirm", dependencies=[SameOrigin])
async def choose(
    request: Request,
    db: DbHandle,
    limiter: Limiter,
    token: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    async def attempt() -> Response:
        data = parse(ResetConfirm, {"token": token, "password": password})
        try:
            await service.confirm_reset(db, token=data.token, password=data.password)
        except BadRequest:  # used meanwhile (in another tab, say), or expired while typing
            return render(request, "reset_confirm.html", {"spent": True}, 400)
        return redirect(request, "/?reset=1")

    await limiter.hit(limiter.reset_per_ip, client_address(request))
    return await submit(attempt(), same_page(request, "reset_confirm.html", {"token": token}))
