"""The report, for staff: tickets created, resolved and canceled, breaches, response and
resolution times and ratings over a period, for everyone and by assignee."""

from __future__ import annotations

from datetime import timedelta

from fastapi import Request
from fastapi.responses import Response

from ticketdesk.errors import BadRequest
from ticketdesk.models import utcnow
from ticketdesk.pages.common import page_router
from ticketdesk.pages.rendering import render
from ticketdesk.pages.session import Agent
from ticketdesk.reports import service as reports
from ticketdesk.reports.repository import Counts
from ticketdesk.users import service as users
from ticketdesk.web.routing import DbHandle

router = page_router()


@router.get("/app/report")
async def report(request: Request, viewer: Agent, db: DbHandle, days: int = 30) -> Response:
    if not 1 <= days <= 366:
        raise BadRequest("choose a period of 1 to 366 days")
    stop = utcnow()
    start = stop - timedelta(days=days)
    found = await reports.summary(db, viewer=viewer, start=start, stop=stop)
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
