"""Signing in, up and out: the landing page, and the way home once signed in.

Who the viewer is (the session cookie, its renewal) is `session.py`; these pages start and
end a session.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response

from ticketdesk.auth import service as auth
from ticketdesk.auth.principal import Viewer
from ticketdesk.auth.schemas import LoginIn
from ticketdesk.errors import Forbidden, NotFound, TicketdeskError, Unauthorized
from ticketdesk.pages.common import SameOrigin, page_router
from ticketdesk.pages.forms import FormErrors, parse, same_page, submit
from ticketdesk.pages.rendering import redirect, render
from ticketdesk.pages.session import MaybeSignedIn, SignedIn, safe_next
from ticketdesk.settings import AppSettings, Settings
from ticketdesk.users import policy as user_policy
from ticketdesk.users import service as users
from ticketdesk.users.schemas import UserCreate
from ticketdesk.web.cookies import clear_token_cookie, set_token_cookie
from ticketdesk.web.ratelimits import Limiter, client_address
from ticketdesk.web.routing import DbHandle

router = page_router()

CLOSED = (
    "Accounts are opened by the support team: write to the support address, and your first "
    "mail opens your account."
)
"""The sign-up page's notice when REGISTRATION=closed: it takes new staff with a key only."""
LOGIN_REFUSED = "Wrong email or password."
WRONG_STAFF_KEY = (
    "This staff key does not work: it is mistyped, used already, expired or withdrawn. "
    "Ask your administrator for a new one."
)
STAFF_KEY_NEEDED = "Only new staff sign up here, with the staff key they were given."


def home_of(viewer: Viewer) -> str:
    return "/app/queue" if viewer.is_agent else "/app/tickets"


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
    async def attempt() -> Response:
        parse(LoginIn, {"email": email, "password": password})
        try:
            token, _claims, _quota = await auth.login_within_limits(
                limiter,
                db,
                settings,
                address=client_address(request),
                email=email,
                password=password,
            )
        except NotFound:
            raise FormErrors({"form": LOGIN_REFUSED}) from None
        response = RedirectResponse(safe_next(next), status_code=303)
        set_token_cookie(response, token, settings)
        return response

    values = {"email": email, "next": safe_next(next)}
    return await submit(attempt(), same_page(request, "sign_in.html", values))


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
    # The STAFF_TOKEN is for the API: a page takes staff keys only.
    registration = user_policy.Registration.of(settings, takes_staff_token=False)
    key = staff_key.strip() or None

    async def attempt() -> Response:
        fields = {"username": username, "email": email, "password": password}
        data = parse(UserCreate, {**fields, "isStaff": bool(key)})
        try:
            user = await users.register(db, data, credential=key, registration=registration)
        except Unauthorized:
            raise FormErrors({"staff_key": WRONG_STAFF_KEY}) from None
        except Forbidden:
            raise FormErrors({"staff_key": STAFF_KEY_NEEDED}, 403) from None
        except TicketdeskError as exc:
            if exc.status_code != 400:
                raise
            raise FormErrors({"email": exc.detail}) from None
        token, _claims = auth.issue_token(settings, user_id=user.id, version=0)
        response = RedirectResponse("/app/queue" if user.is_staff else "/app/tickets", 303)
        set_token_cookie(response, token, settings)
        return response

    values: dict[str, Any] = {"username": username, "email": email, "staff_key": key or ""}
    values |= {"closed": CLOSED if registration.closed else None, "mail": settings.mail_enabled}
    await limiter.hit(limiter.register_per_ip, client_address(request))
    return await submit(attempt(), same_page(request, "sign_up.html", values))


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
