"""The team lead's summary of a period (see `repository` for what each figure counts)."""

from __future__ import annotations

from datetime import datetime

from ticketdesk.auth.principal import Viewer
from ticketdesk.db import Db
from ticketdesk.errors import BadRequest, Forbidden
from ticketdesk.models import utcnow
from ticketdesk.reports import repository
from ticketdesk.reports.repository import Counts, Durations, Summary

__all__ = ["Counts", "Durations", "Summary"]


async def summary(db: Db, *, viewer: Viewer, start: datetime, stop: datetime) -> Summary:
    if not viewer.is_agent:
        raise Forbidden("reports are for staff only")
    if start >= stop:
        raise BadRequest("`from` must be before `to`")
    return await repository.summary(db, start=start, stop=stop, now=utcnow())
