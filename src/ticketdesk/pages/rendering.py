"""HTML answers: templates with every value escaped, redirects after a form, error pages."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from ticketdesk.errors import Forbidden, TicketdeskError
from ticketdesk.pages.assets import Assets
from ticketdesk.pages.session import RENEWED, SignInRequired
from ticketdesk.settings import Settings
from ticketdesk.tags import policy as tag_policy
from ticketdesk.tickets import policy
from ticketdesk.web.cookies import set_token_cookie
from ticketdesk.web.routing import Route

TEMPLATES = Path(__file__).parent / "templates"

STATUS_WORDS = {
    "pending": "Waiting for us",
    "unresolved": "Waiting for you",
    "resolved": "Resolved",
    "canceled": "Canceled",
}
"""What a customer reads for each status: who is waiting for whom."""
AGENT_STATUS_WORDS = {
    "pending": "Pending",
    "unresolved": "Waiting on customer",
    "resolved": "Resolved",
    "canceled": "Canceled",
}
AGENT_STATE_WORDS = {**AGENT_STATUS_WORDS, "pending": "Needs reply"}
"""An agent's badge: an open ticket says who is to write next (see `state`)."""
WAITING_STATES = {"us": "pending", "customer": "unresolved"}


def state(status: str, waiting: str | None = None) -> str:
    """What a badge shows: an open ticket's state by who is to write next (`policy.waiting_on`),
    in the words of the status that says so; other tickets' status as it is."""
    return WAITING_STATES.get(waiting or "", status)


def in_order(statuses: Collection[policy.Status]) -> tuple[policy.Status, ...]:
    """The statuses as the pages list them, as work flows: the open ones first, the final
    ones last, any other between; in the policy's order within each."""

    def place(status: policy.Status) -> tuple[bool, bool, int]:
        closed = status not in policy.OPEN_STATUSES
        return closed, status in policy.FINAL_STATUSES, policy.STATUSES.index(status)

    return tuple(sorted(statuses, key=place))


def initials(name: str | None) -> str:
    """Up to two letters for a person's avatar: "Carla Diaz" is CD, "bruno" is B."""
    words = [word for word in (name or "?").replace(".", " ").replace("_", " ").split() if word]
    return "".join(word[0] for word in words[:2]).upper() or "?"


def megabytes(size: int) -> str:
    """A size as people read it: 10485760 bytes is "10 MB"."""
    return f"{size / 1024 / 1024:.3g} MB"


def _iso(moment: datetime | None) -> str:
    return moment.isoformat().replace("+00:00", "Z") if moment else ""


def _readable(moment: datetime | None) -> str:
    # Sliced, not strftime()d: a queue shows a hundred of them.
    return f"{moment.isoformat(' ')[:16]} UTC" if moment else ""


def describe_event(event: Any, names: dict[int, str]) -> str:
    """One quiet line of a ticket's history: who did what."""
    who = names.get(event.actor_id, "The customer" if event.actor_id else "Someone")
    after = json.loads(event.after) if event.after else {}
    if event.kind == "created":
        return f"{who} opened the ticket"
    if event.kind == "status":
        return f"{who} set the status to {AGENT_STATUS_WORDS.get(str(after.get('status')), '?')}"
    if event.kind == "assignee":
        assignee = after.get("assignee_id")
        if not assignee:
            return f"{who} unassigned it"
        if assignee == event.actor_id:
            return f"{who} took it"
        return f"{who} assigned it to {names.get(assignee, '#' + str(assignee))}"
    if event.kind == "priority":
        return f"{who} set the priority to {after.get('priority')}"
    if event.kind == "message":
        return f"{who} replied" if after.get("type") == "response" else f"{who} wrote"
    if event.kind == "note":
        return f"{who} wrote an internal note"
    if event.kind == "rating":
        return f"{who} rated it {after.get('score')} of 5"
    if event.kind == "tags":
        return _describe_tags(who, json.loads(event.before) if event.before else {}, after)
    return f"{who}: {event.kind}"


def _describe_tags(who: str, before: dict[str, Any], after: dict[str, Any]) -> str:
    old, new = set(before.get("tags") or ()), set(after.get("tags") or ())
    parts = []
    if new - old:
        parts.append("added the tags " + ", ".join(sorted(new - old)))
    if old - new:
        parts.append("removed the tags " + ", ".join(sorted(old - new)))
    return f"{who} {' and '.join(parts) or 'changed the tags'}"


templates = Jinja2Templates(directory=TEMPLATES)
templates.env.globals.update(
    status_word=STATUS_WORDS.get,
    agent_status_word=AGENT_STATUS_WORDS.get,
    agent_state_word=AGENT_STATE_WORDS.get,
    state=state,
    initials=initials,
    megabytes=megabytes,
    priority_name=policy.priority_name,
    priorities=policy.PRIORITIES,
    iso=_iso,
    readable=_readable,
    describe_event=describe_event,
    tag_names=tag_policy.joined,
    # The status machine, as the policy has it: what staff may set, what never changes again,
    # what takes no more messages.
    agent_statuses=in_order(policy.AGENT_TARGETS),
    final_statuses=policy.FINAL_STATUSES,
    closed_to_messages=policy.CLOSED_TO_MESSAGES,
)


def render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    assets: Assets = request.app.state.assets
    values = {"asset": assets.url, "path": request.url.path, **context}
    response = templates.TemplateResponse(request, name, values, status_code=status_code)
    _renew(request, response)
    response.headers["Cache-Control"] = "no-store"
    return response


def redirect(request: Request, url: str) -> RedirectResponse:
    """303 See Other: the browser GETs `url` (POST, then redirect, then GET)."""
    response = RedirectResponse(url, status_code=303)
    _renew(request, response)
    return response


def _renew(request: Request, response: Response) -> None:
    token = request.scope.get(RENEWED)
    if token is not None:
        settings: Settings = request.app.state.settings
        set_token_cookie(response, token, settings)


ERROR_TITLES = {
    400: "That did not work",
    403: "Not for you",
    404: "Not found",
    409: "Not possible now",
    413: "Too large",
    429: "Slow down",
    500: "Something went wrong",
    503: "Try again shortly",
}


def error_page(request: Request, status_code: int, detail: str) -> HTMLResponse:
    title = ERROR_TITLES.get(status_code, "That did not work")
    viewer = getattr(request.state, "viewer", None)
    context = {
        "title": title,
        "detail": detail,
        "status": status_code,
        "viewer": viewer,
        "back": _back(request),
    }
    return render(request, "error.html", context, status_code)


def _back(request: Request) -> str | None:
    """The page of this site the browser came from (a form's page), to go back to."""
    came_from = urlsplit(request.headers.get("referer", ""))
    if came_from.netloc != request.url.netloc or not came_from.path.startswith("/"):
        return None
    if came_from.path == request.url.path and request.method == "GET":
        return None
    return came_from.path + (f"?{came_from.query}" if came_from.query else "")


class PageRoute(Route):
    """A page: its errors are pages too, and a missing session is a trip to sign in."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_as_page(request: Request) -> Response:
            try:
                return await handle(request)
            except SignInRequired as exc:
                return RedirectResponse(exc.location, status_code=303)
            except TicketdeskError as exc:
                if exc.status_code >= 500:
                    raise
                return error_page(request, exc.status_code, exc.detail)
            except RequestValidationError:
                return error_page(request, 400, "The form or the address was not valid.")
            except StarletteHTTPException as exc:
                if exc.status_code >= 500:
                    raise
                return error_page(request, exc.status_code, str(exc.detail))

        return handle_as_page


async def same_origin(request: Request) -> None:
    """A form may be sent only from this site's own pages (cross-site requests forged with
    the user's session, or with an attacker's account at sign-in, are refused)."""
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.url.netloc}"
    if origin is not None:
        if origin.lower() != own.lower():
            raise Forbidden("forms are accepted from this site's own pages only")
    elif request.headers.get("sec-fetch-site") == "cross-site":
        raise Forbidden("forms are accepted from this site's own pages only")
