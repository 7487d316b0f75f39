from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from ticketdesk.auth.dependencies import CurrentUser
from ticketdesk.models import utcnow
from ticketdesk.reports import service
from ticketdesk.reports.repository import Counts
from ticketdesk.reports.schemas import AssigneeFigures, Figures, SummaryOut
from ticketdesk.schemas import UtcDatetime
from ticketdesk.web.errors import responses
from ticketdesk.web.routing import DbHandle, Route

router = APIRouter(prefix="/reports", tags=["reports"], route_class=Route)
DEFAULT_DAYS = 30


@router.get("/summary", responses=responses(400, 401, 403), response_model_by_alias=True)
async def summary(
    user: CurrentUser,
    db: DbHandle,
    start: Annotated[
        UtcDatetime | None,
        Query(alias="from", description=f"default: {DEFAULT_DAYS} days before `to`"),
    ] = None,
    stop: Annotated[UtcDatetime | None, Query(alias="to", description="default: now")] = None,
) -> SummaryOut:
    """Created, resolved and canceled tickets, response and resolution times (median, 90th
    percentile), SLA breaches and ratings in the period [from, to): overall and per
    assignee (staff only)."""
    stop = stop or utcnow()
    start = start or stop - timedelta(days=DEFAULT_DAYS)
    found = await service.summary(db, viewer=user, start=start, stop=stop)
    counts = {row.assignee_id: row for row in found.counts}
    first = {row.assignee_id: row for row in found.first_response}
    resolution = {row.assignee_id: row for row in found.resolution}
    assignees = sorted(counts.keys() | first.keys() | resolution.keys(), key=_nobody_last)
    by_assignee = [
        AssigneeFigures(
            assignee_id=assignee,
            **Figures.of(
                counts.get(assignee), first.get(assignee), resolution.get(assignee)
            ).model_dump(),
        )
        for assignee in assignees
    ]
    return SummaryOut.model_validate(
        {
            "from": start,
            "to": stop,
            "overall": Figures.of(
                Counts.total(found.counts), found.overall_first_response, found.overall_resolution
            ),
            "by_assignee": by_assignee,
        }
    )


def _nobody_last(assignee: int | None) -> tuple[bool, int]:
    return assignee is None, assignee or 0
