"""The browser app: a customer portal and an agent console, rendered on the server.

The pages call the same services as the API, with the request's database handle; they
never call the API over HTTP. Every form posts, then redirects to a page (POST, redirect,
GET), so each flow works without JavaScript; `static/app.js` only adds live updates,
keyboard shortcuts and relative times.

Each area has a module and a router of its own, which the app mounts: `signin` (the
landing page, signing in, up and out), `tickets` (a customer's tickets, the ticket page,
replies, files), `console` (the agents' queue and a ticket's properties), `people` (users,
and one's own account), `staff_keys`, `report` and `password_reset`. `router` here serves
the pages' files; `last`, mounted after the API, answers any other address under /app.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ticketdesk.errors import NotFound
from ticketdesk.pages.assets import FOREVER, Assets
from ticketdesk.pages.common import page_router
from ticketdesk.pages.rendering import error_page
from ticketdesk.pages.session import MaybeSignedIn

router = page_router()


@router.get("/app/static/{name}")
async def static(name: str, request: Request) -> Response:
    assets: Assets = request.app.state.assets
    asset = assets.served.get(name)
    if asset is None:
        raise NotFound("no such file")
    return Response(asset.content, media_type=asset.media_type, headers={"Cache-Control": FOREVER})


@router.get("/favicon.ico")
async def favicon(request: Request) -> Response:
    """Browsers ask for /favicon.ico by themselves: they get the pages' icon. Its address
    changes with its content, so this answer is kept for a day only."""
    assets: Assets = request.app.state.assets
    return RedirectResponse(
        assets.url("favicon.svg"), status_code=302, headers={"Cache-Control": "max-age=86400"}
    )


last = page_router()
"""Routed after every other page, and after the API: any other address under /app."""


@last.get("/app/{rest:path}")
async def not_found(request: Request, rest: str, viewer: MaybeSignedIn) -> HTMLResponse:
    request.state.viewer = viewer
    return error_page(request, 404, "There is no page at this address.")
