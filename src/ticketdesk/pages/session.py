"""Who is looking at a page: the session cookie `token`, renewed while the user is active.

A page needs a signed-in user; without one (no cookie, or one that expired or was revoked)
it sends the browser to sign in, and back to where it was afterwards. A token past half its
lifetime is replaced on the next page the user opens, with the same sign-in time, until
SESSION_MAX_HOURS after signing in: then the user signs in again.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request

from ticketdesk.auth import service as auth
from ticketdesk.auth.dependencies import TOKEN_COOKIE
from ticketdesk.auth.principal import Viewer
from ticketdesk.auth.security import decode_token
from ticketdesk.auth.tokens import TokenChecks
from ticketdesk.db.request import request_db
from ticketdesk.errors import Forbidden, TicketdeskError, Unauthorized
from ticketdesk.logs import record_user
from ticketdesk.models import utcnow
from ticketdesk.settings import Settings

RENEWED = "ticketdesk.renewed_token"
"""The scope key of a renewed token, set on the page's response by `render`/`redirect`."""


class SignInRequired(TicketdeskError):
    """No valid session: the page answers with a redirect to sign in (see `PageRoute`)."""

    status_code = 303

    def __init__(self, next_path: str, *, expired: bool) -> None:
        super().__init__("sign in to continue")
        self.next_path = next_path
        self.expired = expired

    @property
    def location(self) -> str:
        query = f"next={quote(self.next_path, safe='/')}"
        return f"/?{query}&expired=1" if self.expired else f"/?{query}"


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path of this site, never another site."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/app"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/app"
    return value


async def optional_viewer(request: Request) -> Viewer | None:
    """The signed-in user of the session cookie, or None (no cookie, expired, revoked)."""
    token = request.cookies.get(TOKEN_COOKIE)
    if not token:
        return None
    try:
        claims = decode_token(token, request.app.state.signing_key)
    except Unauthorized:
        return None
    checks: TokenChecks = request.app.state.token_checks
    account = checks.cached(claims) or await checks.load(request_db(request), claims)
    if account is None:
        return None
    record_user(request.scope, account.id)
    viewer = Viewer.of(account, claims)
    request.state.viewer = viewer  # an error page keeps its navigation
    settings: Settings = request.app.state.settings
    fresh = auth.renewed(settings, viewer, utcnow())
    if fresh is not None:
        request.scope[RENEWED] = fresh[0]
    return viewer


async def page_viewer(
    request: Request, viewer: Annotated[Viewer | None, Depends(optional_viewer)]
) -> Viewer:
    if viewer is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        expired = TOKEN_COOKIE in request.cookies
        raise SignInRequired(path if request.method == "GET" else "/app", expired=expired)
    return viewer


async def page_agent(viewer: Annotated[Viewer, Depends(page_viewer)]) -> Viewer:
    if not viewer.is_agent:
        raise Forbidden("this page is for staff")
    return viewer


async def page_superuser(viewer: Annotated[Viewer, Depends(page_viewer)]) -> Viewer:
    if not viewer.is_superuser:
        raise Forbidden("this page is for superusers")
    return viewer


MaybeSignedIn = Annotated[Viewer | None, Depends(optional_viewer)]
SignedIn = Annotated[Viewer, Depends(page_viewer)]
Agent = Annotated[Viewer, Depends(page_agent)]
Superuser = Annotated[Viewer, Depends(page_superuser)]


async def counted_write(request: Request, viewer: Annotated[Viewer, Depends(page_viewer)]) -> None:
    """A form that writes counts against the same per-user limit as the API's writes."""
    limiter = request.app.state.rate_limiter
    if limiter.enabled:
        await limiter.hit(limiter.writes_per_user, str(viewer.id))


Counted = Depends(counted_write)
"""For a writing page's `dependencies`: its user's write budget."""
