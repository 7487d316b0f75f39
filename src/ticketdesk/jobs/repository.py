"""All SQL of the job queue: queue, claim, finish, retry, and the dispatcher's cursor.

A claim marks a job running and moves its `run_at` to the end of a lease: a worker that
dies mid-job (SIGKILL, a lost machine) leaves it claimable again once the lease ends, so
nothing is lost (at least once). Each claim counts an attempt, and a worker finishes a job
only while that attempt is still the latest: a worker whose lease ran out and whose job was
taken by another cannot overwrite the other's outcome. Each kind of job (a lane) is claimed
on its own: mail by one statement, webhook calls endpoint by endpoint (`claim_calls`).

On PostgreSQL, claimers skip the rows another claimer has locked (`FOR UPDATE SKIP LOCKED`),
so several workers on several machines never take the same job. SQLite has one writer at a
time, so its claims are serial anyway.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Update,
    bindparam,
    case,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ticketdesk.db import Db, Statement, constants
from ticketdesk.models import JOB_KINDS, job_cursors, jobs, webhooks

UNFINISHED = ("queued", "running")
EVENTS_CURSOR = "events"


class NewJob(NamedTuple):
    key: str
    kind: str
    payload: str  # JSON
    event_id: int | None = None
    webhook_id: int | None = None


class ClaimedJob(NamedTuple):
    id: int
    key: str
    kind: str
    payload: str
    attempts: int
    webhook_id: int | None


class JobRow(NamedTuple):
    id: int
    key: str
    kind: str
    status: str
    attempts: int
    run_at: datetime
    created_at: datetime
    finished_at: datetime | None
    last_error: str | None
    last_code: int | None
    event_id: int | None
    webhook_id: int | None


_VALUES = {
    "key": bindparam("key"),
    "kind": bindparam("kind"),
    "payload": bindparam("payload"),
    "status": "queued",
    "attempts": 0,
    "run_at": bindparam("now"),
    "created_at": bindparam("now"),
    "event_id": bindparam("event_id"),
    "webhook_id": bindparam("webhook_id"),
}
_QUEUE = Statement(
    sqlite_insert(jobs).values(_VALUES).on_conflict_do_nothing(index_elements=["key"]),
    postgres=postgres_insert(jobs).values(_VALUES).on_conflict_do_nothing(index_elements=["key"]),
)


async def queue(db: Db, new_jobs: list[NewJob], *, now: datetime) -> None:
    """Queue the jobs in the caller's transaction; a key already queued is left as it is."""
    for job in new_jobs:
        await db.execute(_QUEUE, {**job._asdict(), "now": now})


def _take(due: Select[tuple[int]]) -> Update:
    """Mark the jobs `due` selects as running, leased until `lease_end`, an attempt more."""
    return (
        update(jobs)
        .where(jobs.c.id.in_(due.scalar_subquery()))
        .values(status="running", attempts=jobs.c.attempts + 1, run_at=bindparam("lease_end"))
        .returning(
            jobs.c.id,
            jobs.c.key,
            jobs.c.kind,
            jobs.c.payload,
            jobs.c.attempts,
            jobs.c.webhook_id,
        )
    )


_DUE = (jobs.c.status.in_(constants(*UNFINISHED)), jobs.c.run_at <= bindparam("now"))


def _claim_due(which: ColumnElement[bool], *, atomic: bool = False) -> Statement:
    """Take the earliest due jobs that `which` picks (those other workers hold on PostgreSQL
    are skipped, not waited for)."""

    def claim(*, skip_locked: bool) -> Update:
        due = (
            select(jobs.c.id)
            .where(which, *_DUE)
            .order_by(jobs.c.run_at)
            .limit(bindparam("limit", type_=Integer))
        )
        return _take(due.with_for_update(skip_locked=True) if skip_locked else due)

    return Statement(claim(skip_locked=False), postgres=claim(skip_locked=True), atomic=atomic)


_CLAIM_KIND = _claim_due(jobs.c.kind == bindparam("lane"), atomic=True)


_ANY_DUE = Statement(select(jobs.c.id).where(jobs.c.kind == bindparam("lane"), *_DUE).limit(1))


async def any_due(db: Db, *, kind: str, now: datetime) -> bool:
    """Whether a job of this kind is due: a read, so an idle worker's polls take no lock."""
    return await db.first(_ANY_DUE, {"lane": kind, "now": now}) is not None


async def claim(
    db: Db, *, kind: str, now: datetime, lease_end: datetime, limit: int
) -> list[ClaimedJob]:
    """Take up to `limit` due jobs of one kind (and those whose worker's lease ran out)."""
    if not await any_due(db, kind=kind, now=now):
        return []
    params = {"lane": kind, "now": now, "lease_end": lease_end, "limit": limit}
    return [ClaimedJob(*row) for row in await db.all(_CLAIM_KIND, params)]


def _running_calls(endpoint: ColumnElement[int]) -> Select[int]:
    return select(func.count()).where(
        jobs.c.webhook_id == endpoint,
        jobs.c.status == constants("running")[0],
        jobs.c.run_at > bindparam("now"),  # a lease that ran out no longer counts
    )


_HAS_DUE_CALLS = exists().where(jobs.c.webhook_id == webhooks.c.id, *_DUE)
_FAILING = webhooks.c.consecutive_failures > 0
_PER_ENDPOINT = bindparam("per_endpoint", type_=Integer)
_ALLOWED = case(
    (webhooks.c.is_active.is_(False), _PER_ENDPOINT),  # its calls fail at once
    (webhooks.c.paused_until > bindparam("now"), 0),
    (_FAILING | webhooks.c.paused_until.is_not(None), 1),  # one at a time, a probe when paused
    else_=_PER_ENDPOINT,
)


def _ready_endpoints(*, locked: bool) -> Select[tuple[int, int]]:
    """Endpoints with due calls and, it seems, room for more, and how many calls each may
    have in flight. An answering endpoint may have `per_endpoint`; one whose last call
    failed, a single one; a paused one, none until its pause is over, then one: its probe.
    Answering endpoints go first, then the least recently served: so one endpoint's backlog
    never keeps another waiting for more than a slot, and failing endpoints get only the
    slots nobody else wants."""
    seems_free = _running_calls(webhooks.c.id).scalar_subquery() < _ALLOWED
    ready = (
        select(webhooks.c.id, _ALLOWED)
        .where(_HAS_DUE_CALLS, seems_free)
        .order_by(_FAILING, webhooks.c.served_at.is_not(None), webhooks.c.served_at, webhooks.c.id)
        .limit(bindparam("limit", type_=Integer))
    )
    # Not FOR UPDATE: that would also wait for, and skip, the endpoints new jobs refer to.
    return ready.with_for_update(skip_locked=True, key_share=True) if locked else ready


_READY_ENDPOINTS = Statement(_ready_endpoints(locked=False), postgres=_ready_endpoints(locked=True))
_SEEM_READY = Statement(_ready_endpoints(locked=False), writes=False)
_RUNNING_NOW = Statement(_running_calls(bindparam("endpoint")))


_CLAIM_CALLS = _claim_due(jobs.c.webhook_id == bindparam("endpoint"))
_SERVED = Statement(
    update(webhooks)
    .where(webhooks.c.id == bindparam("webhook_id"))
    .values(served_at=bindparam("now"))
)


async def claim_calls(
    db: Db, *, now: datetime, lease_end: datetime, limit: int, per_endpoint: int
) -> list[ClaimedJob]:
    """Take up to `limit` due webhook calls, endpoint by endpoint, in one transaction.

    Each endpoint's row stays locked from the moment it is chosen (skipped when another
    worker holds it) until its calls are taken, and its calls in flight are counted after
    the lock is held, by a statement of their own: a statement sees what was committed
    before it began, so a count made in the choosing statement could miss the calls another
    worker took just before it let go of the row. So the limits hold across every worker.
    """
    params = {"now": now, "limit": limit, "per_endpoint": per_endpoint}
    if not await db.first(_SEEM_READY, params):
        return []  # a read: an idle worker's polls take no lock
    await db.begin()
    ready = await db.all(_READY_ENDPOINTS, params)
    claimed: list[ClaimedJob] = []
    for webhook_id, allowed in ready:
        running = await db.scalar(_RUNNING_NOW, {"endpoint": webhook_id, "now": now})
        room = min(int(allowed) - int(running), limit - len(claimed))
        if room <= 0:
            continue
        params = {"endpoint": webhook_id, "now": now, "lease_end": lease_end, "limit": room}
        rows = await db.all(_CLAIM_CALLS, params)
        if rows:
            claimed.extend(ClaimedJob(*row) for row in rows)
            await db.execute(_SERVED, {"webhook_id": webhook_id, "now": now})
    return claimed


_THIS_ATTEMPT = (jobs.c.id == bindparam("job_id"), jobs.c.attempts == bindparam("attempt"))
_FINISH = Statement(
    update(jobs)
    .where(*_THIS_ATTEMPT, jobs.c.status == constants("running")[0])
    .values(
        status=bindparam("new_status"),
        run_at=bindparam("new_run_at"),
        finished_at=bindparam("new_finished_at"),
        last_error=bindparam("new_error"),
        last_code=bindparam("new_code"),
        payload=func.coalesce(bindparam("new_payload", type_=jobs.c.payload.type), jobs.c.payload),
    ),
    atomic=True,
)


async def finish(
    db: Db,
    job: ClaimedJob,
    *,
    status: str,
    run_at: datetime,
    finished_at: datetime | None,
    error: str | None,
    code: int | None,
    payload: str | None = None,
) -> bool:
    """Record the outcome of this attempt (done, failed, or queued again for `run_at`).

    `payload` replaces the job's (e.g. without a secret it no longer needs). False when the
    attempt is no longer the job's latest: another worker took it over.
    """
    changed = await db.execute(
        _FINISH,
        {
            "job_id": job.id,
            "attempt": job.attempts,
            "new_status": status,
            "new_run_at": run_at,
            "new_finished_at": finished_at,
            "new_error": error,
            "new_code": code,
            "new_payload": payload,
        },
    )
    return changed == 1


_RETRY = Statement(
    update(jobs)
    .where(
        jobs.c.id == bindparam("job_id"),
        jobs.c.webhook_id == bindparam("of_webhook"),
        jobs.c.status.in_(constants("failed", "done")),
    )
    .values(status="queued", run_at=bindparam("now"), finished_at=None, attempts=0)
    .returning(jobs.c.id)
)


async def retry(db: Db, *, job_id: int, webhook_id: int, now: datetime) -> bool:
    """Queue a finished delivery again, with a fresh schedule; False unless it had finished."""
    return (
        await db.first(_RETRY, {"job_id": job_id, "of_webhook": webhook_id, "now": now}) is not None
    )


_JOB_COLUMNS = (
    jobs.c.id,
    jobs.c.key,
    jobs.c.kind,
    jobs.c.status,
    jobs.c.attempts,
    jobs.c.run_at,
    jobs.c.created_at,
    jobs.c.finished_at,
    jobs.c.last_error,
    jobs.c.last_code,
    jobs.c.event_id,
    jobs.c.webhook_id,
)


def _by_status() -> Statement:
    return Statement(
        select(*_JOB_COLUMNS)
        .where(jobs.c.status == bindparam("status"))
        .order_by(jobs.c.id.desc())
        .limit(bindparam("limit", type_=Integer))
    )


_BY_STATUS = _by_status()


async def jobs_in(db: Db, *, status: str, limit: int) -> list[JobRow]:
    """The latest jobs in one state, newest first."""
    rows = await db.all(_BY_STATUS, {"status": status, "limit": limit})
    return [JobRow(*row) for row in rows]


_OF_WEBHOOK = Statement(
    select(*_JOB_COLUMNS)
    .where(
        jobs.c.webhook_id == bindparam("webhook_id"),
        jobs.c.id < bindparam("before", type_=jobs.c.id.type),
    )
    .order_by(jobs.c.id.desc())
    .limit(bindparam("limit", type_=Integer))
)


async def deliveries(db: Db, *, webhook_id: int, before: int, limit: int) -> list[JobRow]:
    """A webhook's deliveries with ids below `before`, newest first."""
    rows = await db.all(_OF_WEBHOOK, {"webhook_id": webhook_id, "before": before, "limit": limit})
    return [JobRow(*row) for row in rows]


_DELIVERY = Statement(
    select(*_JOB_COLUMNS).where(
        jobs.c.id == bindparam("job_id"), jobs.c.webhook_id == bindparam("webhook_id")
    )
)


async def delivery(db: Db, *, webhook_id: int, job_id: int) -> JobRow | None:
    row = await db.first(_DELIVERY, {"job_id": job_id, "webhook_id": webhook_id})
    return JobRow(*row) if row is not None else None


_COUNTS = Statement(select(jobs.c.status, func.count()).group_by(jobs.c.status))


async def counts(db: Db) -> dict[str, int]:
    """How many jobs there are in each state."""
    return {status: int(count) for status, count in await db.all(_COUNTS)}


_LANES = Statement(
    select(jobs.c.kind, jobs.c.status, func.count())
    .where(jobs.c.status.in_(constants(*UNFINISHED)))
    .group_by(jobs.c.kind, jobs.c.status)
)


async def lanes(db: Db) -> dict[str, dict[str, int]]:
    """How many jobs of each kind are queued and running."""
    found = {kind: dict.fromkeys(UNFINISHED, 0) for kind in JOB_KINDS}
    for kind, status, count in await db.all(_LANES):
        found.setdefault(kind, dict.fromkeys(UNFINISHED, 0))[status] = int(count)
    return found


_CURSOR = Statement(
    select(job_cursors.c.position).where(job_cursors.c.name == bindparam("name")),
    postgres=select(job_cursors.c.position)
    .where(job_cursors.c.name == bindparam("name"))
    .with_for_update(skip_locked=True),
    writes=True,
)
_MOVE_CURSOR = Statement(
    update(job_cursors)
    .where(job_cursors.c.name == bindparam("cursor"))
    .values(position=bindparam("new_position"))
)
_CURSOR_EXISTS = Statement(
    select(job_cursors.c.position).where(job_cursors.c.name == bindparam("name")), writes=False
)


_NEW_CURSOR = Statement(
    insert(job_cursors).values(name=bindparam("name"), position=bindparam("position"))
)


async def lock_cursor(db: Db, name: str = EVENTS_CURSOR) -> int | None:
    """The dispatcher's position, locked for this transaction; None while another holds it."""
    row = await db.first(_CURSOR, {"name": name})
    if row is None:
        if db.dialect == "postgresql" and await db.first(_CURSOR_EXISTS, {"name": name}):
            return None  # locked by another dispatcher
        await db.execute(_NEW_CURSOR, {"name": name, "position": 0})
        return 0
    return int(row[0])


async def move_cursor(db: Db, position: int, name: str = EVENTS_CURSOR) -> None:
    await db.execute(_MOVE_CURSOR, {"cursor": name, "new_position": position})
