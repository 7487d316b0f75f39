"""The pages to set a forgotten password: ask for a link, then choose the new password.

Without mail (SMTP_HOST unset) no link can reach anyone: the page says so, and whom to ask.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Form, Request
from fastapi.responses import Response

from ticketdesk.errors import BadRequest
from ticketdesk.pages.forms import FormErrors, parse
from ticketdesk.pages.rendering import PageRoute, redirect, render, same_origin
from ticketdesk.pages.session import MaybeSignedIn
from ticketdesk.password_reset import service
from ticketdesk.password_reset.schemas import ResetConfirm
from ticketdesk.schemas import normalize_email
from ticketdesk.settings import AppSettings
from ticketdesk.web.ratelimits import Limiter, client_address, limit_reset_request
from ticketdesk.web.routing import DbHandle

router = APIRouter(route_class=PageRoute, include_in_schema=False)
SameOrigin = Depends(same_origin)


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
    if not email.strip():
        errors = {"email": "Enter the email address of your account."}
        return render(request, "reset_request.html", {"errors": errors}, 400)
    address = normalize_email(email)
    await limit_reset_request(limiter, address=client_address(request), email=address)
    later = service.request_reset(request.app.state.database, email=address, settings=settings)
    if later is not None:
        after_answer.add_task(later)
    if not settings.mail_enabled:  # the service logged it, for the operator
        return render(request, "reset_request.html", {"no_mail": True})
    return render(request, "reset_sent.html", {"email": email.strip()})


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
    await limiter.hit(limiter.reset_per_ip, client_address(request))
    try:
        data = parse(ResetConfirm, {"token": token, "password": password})
        await service.confirm_reset(db, token=data.token, password=data.password)
    except FormErrors as exc:
        return render(request, "reset_confirm.html", {"token": token, "errors": exc.errors}, 400)
    except BadRequest:  # used meanwhile (in another tab, say), or expired while typing
        return render(request, "reset_confirm.html", {"spent": True}, 400)
    return redirect(request, "/?reset=1")
