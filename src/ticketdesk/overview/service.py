"""What operators see of the queue (`ticketdesk jobs`, GET /metrics): its states, its lanes
(mail and webhook calls, each queued and running), and the endpoints paused after failing."""

from __future__ import annotations

from typing import NamedTuple

from ticketdesk.db import Db
from ticketdesk.jobs import repository
from ticketdesk.jobs.repository import JobRow
from ticketdesk.webhooks import repository as webhooks
from ticketdesk.webhooks.repository import PausedRow

__all__ = ["JobRow", "PausedRow"]


class Figures(NamedTuple):
    """The queue's figures: jobs per state, per lane and state, and endpoints per state."""

    counts: dict[str, int]
    lanes: dict[str, dict[str, int]]
    endpoints: dict[str, int]


class Overview(NamedTuple):
    counts: dict[str, int]
    lanes: dict[str, dict[str, int]]
    paused: list[PausedRow]
    queued: list[JobRow]
    running: list[JobRow]
    failed: list[JobRow]
    done: list[JobRow]


async def figures(db: Db) -> Figures:
    return Figures(
        counts=await repository.counts(db),
        lanes=await repository.lanes(db),
        endpoints=await webhooks.states(db),
    )


async def overview(db: Db, *, limit: int) -> Overview:
    """How many jobs are in each state and lane, the paused endpoints, and the latest
    `limit` jobs of each state."""
    return Overview(
        counts=await repository.counts(db),
        lanes=await repository.lanes(db),
        paused=await webhooks.paused(db),
        queued=await repository.jobs_in(db, status="queued", limit=limit),
        running=await repository.jobs_in(db, status="running", limit=limit),
        failed=await repository.jobs_in(db, status="failed", limit=limit),
        done=await repository.jobs_in(db, status="done", limit=limit),
    )
