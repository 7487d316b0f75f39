"""What operators see of the queue (`ticketdesk jobs`), and the worker built for a process."""

from __future__ import annotations

from typing import NamedTuple

from ticketdesk.db import Db
from ticketdesk.jobs import repository
from ticketdesk.jobs.repository import JobRow

__all__ = ["JobRow"]


class Overview(NamedTuple):
    counts: dict[str, int]
    queued: list[JobRow]
    running: list[JobRow]
    failed: list[JobRow]
    done: list[JobRow]


async def overview(db: Db, *, limit: int) -> Overview:
    """How many jobs are in each state, and the latest `limit` of each."""
    return Overview(
        counts=await repository.counts(db),
        queued=await repository.jobs_in(db, status="queued", limit=limit),
        running=await repository.jobs_in(db, status="running", limit=limit),
        failed=await repository.jobs_in(db, status="failed", limit=limit),
        done=await repository.jobs_in(db, status="done", limit=limit),
    )
