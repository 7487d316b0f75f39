"""The agent console: queues with counts, the ticket's properties, users, keys, the report."""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import JSONResponse, Response

from ticketdesk.auth.principal import Viewer
from ticketdesk.db import Db
from ticketdesk.errors import BadRequest, TicketdeskError
from ticketdesk.events import service as events
from ticketdesk.models import utcnow
from ticketdesk.pages.rendering import PageRoute, redirect, render, same_origin
from ticketdesk.pages.session import Agent, Counted, Superuser
from ticketdesk.pagination import PageRequest
from ticketdesk.presence import service as presence
from ticketdesk.reports import service as reports
from ticketdesk.reports.repository import Counts
from ticketdesk.schemas import MAX_ID
from ticketdesk.settings import AppSettings
from ticketdesk.staff_keys import service as staff_keys
from ticketdesk.tickets import rules, search
from ticketdesk.tickets import service as tickets
from ticketdesk.tickets.repository import TicketFilter, TicketRow
from ticketdesk.users import service as users
from ticketdesk.users.schemas import UserUpdate
from ticketdesk.web.routing import DbHandle

router = APIRouter(route_class=PageRoute, include_in_schema=False)
SameOrigin = Depends(same_origin)
QUEUE_SIZE = 50
COUNT_CAP = 100
"""A queue's badge counts this far and then says 99+: counting a huge queue is slow."""
AGENT_CHOICES = 100
"""Agents offered in an assignee list (by name)."""
OPEN: tuple[rules.Status, ...] = ("pending", "unresolved")

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
    statuses = base.statuses or (*rules.AGENT_TARGETS, "canceled")
    chosen_statuses = tuple(s for s in statuses if s in (status or ()))
    chosen_priorities = tuple(
        rules.priority_rank(p) for p in priority or () if p in rules.PRIORITIES
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
    criteria = TicketFilter(
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
        page=PageRequest(limit=QUEUE_SIZE, cursor=cursor, count=False),
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
        "priority": tuple(p for p in priority or () if p in rules.PRIORITIES),
        "assignee": assignee,
        "waiting": criteria.waiting or "",
        "q": q if query else "",
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
    for name in ("view", "q", "status", "priority", "assignee", "waiting", "sort", "cursor"):
        value = values.get(name)
        if isinstance(value, tuple | list):
            pairs.extend((name, str(item)) for item in value)
        elif value:
            pairs.append((name, str(value)))
    return "/app/queue?" + urlencode(pairs)


async def agent_ticket_context(db: Db, viewer: Viewer, ticket: TicketRow) -> dict[str, Any]:
    history = await events.history(
        db,
        viewer=viewer,
        ticket_id=ticket.id,
        page=PageRequest(limit=500, cursor=None, count=False),
    )
    others = await tickets.list_tickets(
        db,
        viewer=viewer,
        page=PageRequest(limit=10, cursor=None, count=False),
        filters=TicketFilter(author_email=ticket.author),
        sort="-updated_at",
    )
    agents = await users.active_agents(db, AGENT_CHOICES)
    return {
        "history": history.items,
        "others": [other for other in others.items if other.id != ticket.id],
        "agents": agents,
        "agent_names": {agent.id: agent.username for agent in agents},
        "now": utcnow(),
    }


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
    if status not in rules.AGENT_TARGETS | {""} or priority not in (*rules.PRIORITIES, ""):
        raise BadRequest("choose a status and a priority from the lists")
    if assignee and not assignee.isdigit():
        raise BadRequest("choose an assignee from the list")
    current = await tickets.get_ticket(db, viewer=viewer, ticket_id=ticket_id)
    changes = tickets.TicketChanges(
        status=status or None,  # type: ignore[arg-type]
        assignee_id=(int(assignee) if assignee else None)
        if (int(assignee) if assignee else None) != current.assignee_id
        else tickets.UNCHANGED,
        priority=priority or None,  # type: ignore[arg-type]
    )
    if current.status == "canceled" and status == current.status:
        changes = tickets.TicketChanges(assignee_id=changes.assignee_id, priority=changes.priority)
    await tickets.change_ticket(
        db, viewer=viewer, ticket_id=ticket_id, changes=changes, policy=settings.sla_policy
    )
    return redirect(request, f"/app/tickets/{ticket_id}")


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
        policy=settings.sla_policy,
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


# users


@router.get("/app/users")
async def user_list(
    request: Request, viewer: Agent, db: DbHandle, cursor: str | None = None
) -> Response:
    page = await users.list_users(
        db, page=PageRequest(limit=QUEUE_SIZE, cursor=cursor, count=False)
    )
    return render(
        request, "users.html", {"viewer": viewer, "users": page.items, "next": page.next_cursor}
    )


@router.get("/app/users/{user_id}")
async def user_page(request: Request, user_id: int, viewer: Agent, db: DbHandle) -> Response:
    user = await users.get_user(db, user_id)
    their = await tickets.list_tickets(
        db,
        viewer=viewer,
        page=PageRequest(limit=QUEUE_SIZE, cursor=None, count=False),
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
    changes = {
        "block": UserUpdate(is_active=False),
        "unblock": UserUpdate(is_active=True),
        "make-staff": UserUpdate(is_staff=True),
        "remove-staff": UserUpdate(is_staff=False),
    }.get(action)
    if changes is None:
        raise BadRequest("unknown action")
    await users.update_user(db, actor=viewer, user_id=user_id, changes=changes)
    return redirect(request, f"/app/users/{user_id}")


# staff keys (superusers)


@router.get("/app/staff-keys")
async def key_list(request: Request, viewer: Superuser, db: DbHandle) -> Response:
    keys = await staff_keys.list_keys(db)
    return render(request, "staff_keys.html", {"viewer": viewer, "keys": keys, "new_key": None})


@router.post("/app/staff-keys", dependencies=[SameOrigin, Counted])
async def issue_key(request: Request, viewer: Superuser, db: DbHandle) -> Response:
    key, _row = await staff_keys.create_key(
        db, created_by=viewer.id, expires_at=utcnow() + timedelta(days=7)
    )
    keys = await staff_keys.list_keys(db)
    # Shown once, on this answer only: not a redirect, so it never sits in a URL or history.
    return render(request, "staff_keys.html", {"viewer": viewer, "keys": keys, "new_key": key})


@router.post("/app/staff-keys/{key_id}/withdraw", dependencies=[SameOrigin, Counted])
async def withdraw_key(request: Request, key_id: int, viewer: Superuser, db: DbHandle) -> Response:
    await staff_keys.delete_key(db, key_id)
    return redirect(request, "/app/staff-keys")


# the report


@router.get("/app/report")
async def report(request: Request, viewer: Agent, db: DbHandle, days: int = 30) -> Response:
    if not 1 <= days <= 366:
        raise BadRequest("choose a period of 1 to 366 days")
    stop = utcnow()
    start = stop - timedelta(days=days)
    try:
        found = await reports.summary(db, viewer=viewer, start=start, stop=stop)
    except TicketdeskError:
        raise
    agents = {agent.id: agent.username for agent in await users.active_agents(db)}
    return render(
        request,
        "report.html",
        {
            "viewer": viewer,
            "days": days,
            "overall": Counts.total(found.counts),
            "found": found,
            "agents": agents,
        },
    )
