"""The agent console: the queue's views with their counts, filters and search; a ticket's
properties, taking it, and who else has it open. The ticket's page itself is `tickets.py`'s,
with `agent_context.around_the_thread` beside it."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Form, Query, Request
from fastapi.responses import JSONResponse, Response

from ticketdesk.auth.principal import Viewer
from ticketdesk.errors import BadRequest
from ticketdesk.events import service as events
from ticketdesk.models import utcnow
from ticketdesk.pages.agent_context import AGENT_CHOICES, TAG_CHOICES
from ticketdesk.pages.common import SameOrigin, page_router, rows
from ticketdesk.pages.rendering import in_order, redirect, render
from ticketdesk.pages.session import Agent, Counted, Superuser
from ticketdesk.presence import service as presence
from ticketdesk.schemas import MAX_ID
from ticketdesk.settings import AppSettings
from ticketdesk.tags import policy as tag_policy
from ticketdesk.tags import service as tag_service
from ticketdesk.tickets import policy, search
from ticketdesk.tickets import service as tickets
from ticketdesk.tickets.filters import TicketFilter
from ticketdesk.users import service as users
from ticketdesk.web.routing import DbHandle

router = page_router()
QUEUE_SIZE = 50
COUNT_CAP = 100
"""A queue's badge counts this far and then says 99+: counting a huge queue is slow."""
OPEN = in_order(policy.OPEN_STATUSES)
"""What the open views list."""
EVERY_STATUS = in_order(policy.STATUSES)
"""A status filter's choices where the view leaves every status."""

VIEWS = {
    "unassigned": "Unassigned",
    "mine": "Mine",
    "open": "All open",
    "breaching": "Breaching SLA",
    "all": "All tickets",
}


def view_filter(view: str, viewer: Viewer) -> TicketFilter:
    if view == "unassigned":
        return TicketFilter(statuses=OPEN, unassigned=True)
    if view == "mine":
        return TicketFilter(statuses=OPEN, assignee_id=viewer.id)
    if view == "breaching":
        return TicketFilter(overdue=True)
    if view == "open":
        return TicketFilter(statuses=OPEN)
    return TicketFilter()


SORTABLE = {
    "id": ("created_at", "-created_at"),
    "priority": ("-priority", "priority"),
    "updated": ("-updated_at", "updated_at"),
    "due": ("due", "due"),
}
"""The queue's sortable columns: each header's orders (first click, second click). The ticket
number sorts by when tickets were opened, which is the same order, on an index."""
WAITING_WORDS = {"us": "Needs reply", "customer": "Waiting on customer"}
NewName = Annotated[str, Form(alias="name")]


@router.get("/app/queue")
async def queue(
    request: Request,
    viewer: Agent,
    db: DbHandle,
    view: str = "open",
    status: Annotated[list[str] | None, Query()] = None,
    priority: Annotated[list[str] | None, Query()] = None,
    assignee: str = "",
    waiting: str = "",
    q: str = "",
    tags: str = "",
    sort: str = "-updated_at",
    cursor: str | None = None,
) -> Response:
    """A view of the queue, narrowed by the filters. A search looks through every ticket
    (not the view's alone); a filter only narrows a view, so a view never lists what its
    name rules out."""
    after = await events.position(db, viewer=viewer)
    if view not in VIEWS:
        view = "open"
    if sort not in {order for orders in SORTABLE.values() for order in orders}:
        sort = "-updated_at"
    query = q.strip()
    if query and not search.terms(query):
        query = ""
    base = TicketFilter() if query else view_filter(view, viewer)
    statuses = base.statuses or EVERY_STATUS
    chosen_statuses = tuple(s for s in statuses if s in (status or ()))
    chosen_priorities = tuple(
        policy.priority_rank(p) for p in priority or () if p in policy.PRIORITIES
    )
    assignee_id = base.assignee_id
    unassigned = base.unassigned
    fixed_assignee = assignee_id is not None or unassigned
    if fixed_assignee:
        assignee = ""
    elif assignee == "me":
        assignee_id = viewer.id
    elif assignee == "none":
        unassigned = True
    elif assignee.isdigit() and int(assignee) <= MAX_ID:
        assignee_id = int(assignee)
    else:
        assignee = ""
    tag_filter = TagFilter.of(tags)
    criteria = TicketFilter(
        tags=tag_filter.held,
        not_tags=tag_filter.not_held,
        statuses=chosen_statuses or base.statuses,
        assignee_id=assignee_id,
        unassigned=unassigned,
        priorities=chosen_priorities,
        breached=base.breached,
        overdue=base.overdue,
        search=query[: search.MAX_LENGTH] or None,
        waiting=waiting if waiting in WAITING_WORDS else None,  # type: ignore[arg-type]
    )
    page = await tickets.list_tickets(
        db,
        viewer=viewer,
        page=rows(QUEUE_SIZE, cursor),
        filters=criteria,
        sort=sort,
    )
    counts = {}
    for name in ("unassigned", "mine", "open", "breaching"):
        found = await tickets.count_tickets_up_to(
            db, viewer=viewer, filters=view_filter(name, viewer), cap=COUNT_CAP
        )
        counts[name] = f"{COUNT_CAP - 1:,}+" if found >= COUNT_CAP else str(found)
    agents = {agent.id: agent for agent in await users.active_agents(db, AGENT_CHOICES)}
    chosen = {
        "view": view,
        "status": chosen_statuses,
        "priority": tuple(p for p in priority or () if p in policy.PRIORITIES),
        "assignee": assignee,
        "waiting": criteria.waiting or "",
        "q": q if query else "",
        "tags": tag_filter.text,
        "sort": sort,
    }
    return render(
        request,
        "queue.html",
        {
            "viewer": viewer,
            "view": view,
            "views": VIEWS,
            "searching": bool(query),
            "counts": counts,
            "tickets": page.items,
            "waiting": await tickets.waiting_on(db, list(page.items)),
            "next": page.next_cursor,
            "agents": agents,
            "now": utcnow(),
            "after": after,
            "chosen": chosen,
            "tag_problem": tag_filter.problem,
            "tag_choices": await tag_service.tag_names(db, viewer=viewer, limit=TAG_CHOICES),
            "status_choices": statuses,
            "fixed_assignee": fixed_assignee,
            "waiting_words": WAITING_WORDS,
            "sortable": SORTABLE,
            "link": functools.partial(_queue_link, chosen),
        },
    )


def _queue_link(chosen: dict[str, Any], **changes: Any) -> str:
    """The queue's address with these choices changed (a new sort starts at the first page)."""
    values = {**chosen, **changes}
    pairs: list[tuple[str, str]] = []
    names = ("view", "q", "tags", "status", "priority", "assignee", "waiting", "sort", "cursor")
    for name in names:
        value = values.get(name)
        if isinstance(value, tuple | list):
            pairs.extend((name, str(item)) for item in value)
        elif value:
            pairs.append((name, str(value)))
    return "/app/queue?" + urlencode(pairs)


@router.post("/app/tickets/{ticket_id}/properties", dependencies=[SameOrigin, Counted])
async def properties(
    request: Request,
    ticket_id: int,
    viewer: Agent,
    db: DbHandle,
    settings: AppSettings,
    status: Annotated[str, Form()] = "",
    priority: Annotated[str, Form()] = "",
    assignee: Annotated[str, Form()] = "",
) -> Response:
    if status not in policy.AGENT_TARGETS | {""} or priority not in (*policy.PRIORITIES, ""):
        raise BadRequest("choose a status and a priority from the lists")
    if assignee and not assignee.isdigit():
        raise BadRequest("choose an assignee from the list")
    current = await tickets.get_ticket(db, viewer=viewer, ticket_id=ticket_id)
    assignee_id = int(assignee) if assignee else None
    # What the policy allows of these (nothing, on a ticket in a final status) is the
    # service's to say: the form sends every field, changed or not.
    changes = tickets.TicketChanges(
        status=status or None,  # type: ignore[arg-type]
        assignee_id=assignee_id if assignee_id != current.assignee_id else tickets.UNCHANGED,
        priority=priority or None,  # type: ignore[arg-type]
    )
    await tickets.change_ticket(
        db, viewer=viewer, ticket_id=ticket_id, changes=changes, sla_policy=settings.sla_policy
    )
    return redirect(request, f"/app/tickets/{ticket_id}")


@dataclass(frozen=True)
class TagFilter:
    """The queue's Tags field: tags a ticket must hold, and (after a `-`) tags it must not,
    with spaces or commas between them; what was not a tag, or one too many, is said."""

    held: tuple[str, ...] = ()
    not_held: tuple[str, ...] = ()
    problem: str = ""

    @classmethod
    def of(cls, text: str) -> TagFilter:
        held: dict[str, None] = {}
        not_held: dict[str, None] = {}
        wrong = []
        for word in _words(text):
            into = not_held if word.startswith("-") else held
            try:
                into[tag_policy.normalize(word.removeprefix("-"))] = None
            except ValueError:
                wrong.append(word)
        problem = ""
        if wrong:
            problem = f"Not tags, so left out: {', '.join(wrong)}; {tag_policy.RULE}."
        limit = tag_policy.MAX_FILTERS
        if len(held) > limit or len(not_held) > limit:
            problem += f" At most {limit} tags, and {limit} after a -, are used."
        return cls(tuple(held)[:limit], tuple(not_held)[:limit], problem.strip())

    @property
    def text(self) -> str:
        return " ".join((*self.held, *(f"-{name}" for name in self.not_held)))


def _words(text: str) -> list[str]:
    """What was typed in a tags field: spaces or commas between the tags."""
    return [word for word in re.split(r"[\s,]+", text) if word]


def _one_tag(value: str) -> str | None:
    try:
        return tag_policy.normalize(value)
    except ValueError:
        return None


@router.post("/app/tickets/{ticket_id}/tags", dependencies=[SameOrigin, Counted])
async def ticket_tags(
    request: Request,
    ticket_id: int,
    viewer: Agent,
    db: DbHandle,
    add: Annotated[str, Form()] = "",
    remove: Annotated[str, Form()] = "",
) -> Response:
    """Add the tags typed (spaces or commas between them), or take one off."""
    added = [_tag_or_400(word, "tags") for word in _words(add)]
    removed = [_tag_or_400(remove, "tags")] if remove.strip() else []
    await tag_service.change_tags(db, viewer=viewer, ticket_id=ticket_id, add=added, remove=removed)
    return redirect(request, f"/app/tickets/{ticket_id}")


TAGS_LISTED = 1000


@router.get("/app/tags")
async def tag_list(
    request: Request,
    viewer: Agent,
    db: DbHandle,
    renamed: str = "",
    to: str = "",
    removed: str = "",
) -> Response:
    """The tags in use with their counts; superusers rename, merge and remove them here.
    What was just done is said from tag names alone (the address cannot put words here)."""
    found = await tag_service.tags_in_use(db, viewer=viewer, prefix="", limit=TAGS_LISTED)
    said = ""
    # Said only where the list bears it out: a link alone cannot make the page claim it.
    names = {tag.name for tag in found}
    if _one_tag(renamed) == renamed and _one_tag(to) == to and to in names - {renamed}:
        said = f"{renamed} is now {to}."
    elif _one_tag(removed) == removed and removed not in names:
        said = f"{removed} is taken off every ticket."
    return render(request, "tags.html", {"viewer": viewer, "tags": found, "renamed": said})


def _tag_or_400(value: str, field: str) -> str:
    try:
        return tag_policy.normalize(value)
    except ValueError as exc:
        raise BadRequest(f"{field}: {exc}") from None


@router.post("/app/tags/{name}/rename", dependencies=[SameOrigin, Counted])
async def rename_tag(
    request: Request, name: str, viewer: Superuser, db: DbHandle, new_name: NewName
) -> Response:
    old, new = _tag_or_400(name, "tag"), _tag_or_400(new_name, "name")
    await tag_service.rename_tag(db, viewer=viewer, name=old, new_name=new)
    return redirect(request, "/app/tags?" + urlencode({"renamed": old, "to": new}))


@router.post("/app/tags/{name}/remove", dependencies=[SameOrigin, Counted])
async def remove_tag(request: Request, name: str, viewer: Superuser, db: DbHandle) -> Response:
    old = _tag_or_400(name, "tag")
    await tag_service.remove_tag(db, viewer=viewer, name=old)
    return redirect(request, "/app/tags?" + urlencode({"removed": old}))


@router.post("/app/tickets/{ticket_id}/take", dependencies=[SameOrigin, Counted])
async def take(
    request: Request,
    ticket_id: int,
    viewer: Agent,
    db: DbHandle,
    settings: AppSettings,
) -> Response:
    await tickets.change_ticket(
        db,
        viewer=viewer,
        ticket_id=ticket_id,
        changes=tickets.TicketChanges(assignee_id=viewer.id),
        sla_policy=settings.sla_policy,
    )
    return redirect(request, f"/app/tickets/{ticket_id}")


@router.post("/app/tickets/{ticket_id}/presence", dependencies=[SameOrigin])
async def presence_seen(
    ticket_id: int,
    viewer: Agent,
    db: DbHandle,
    state: Annotated[str, Form()] = "viewing",
) -> JSONResponse:
    """The page says it is open (or its agent is writing); the answer names the others."""
    others = await presence.seen(db, viewer=viewer, ticket_id=ticket_id, state=state)
    return JSONResponse(
        [{"username": other.username, "state": other.state} for other in others],
        headers={"Cache-Control": "no-store"},
    )
