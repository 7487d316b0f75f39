"""The worker: turns committed events into jobs, then runs the jobs that are due.

One loop per process, inside `ticketdesk serve` (JOBS_IN_SERVER) or in `ticketdesk worker`.
Each pass first dispatches: it reads the event feed past the dispatcher's cursor and queues
the jobs each event asks for, moving the cursor in the same transaction, so an event is
turned into jobs once, whichever process gets there first, and none is skipped (the feed
never hands out an event while an earlier one may still commit). Then each kind of job, its
lane, claims due jobs for its own free slots (see `repository.py`), mail first: a kind never
waits for another's slots, so a slow webhook receiver cannot hold up a password-reset mail.
Every attempt has a deadline, shorter than its lease. A request never waits for any of this:
it only writes its events.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ticketdesk.db import Database, Db
from ticketdesk.errors import DatabaseUnavailable, ServiceBusy, StatementTimeout
from ticketdesk.events.repository import CHANNEL
from ticketdesk.jobs import repository
from ticketdesk.jobs.repository import ClaimedJob
from ticketdesk.metrics import JOB_FAILURES
from ticketdesk.settings import Settings

log = logging.getLogger("ticketdesk.jobs")

JITTER = 0.2
"""Each retry delay is stretched or shrunk by up to this share, so failed jobs spread out."""
OUTAGE_PAUSE_S = 2.0
DEADLINE_GRACE_S = 1.0
LEASE_MARGIN_S = 2.0
"""An outcome is tried until this long before the attempt's lease ends, not later."""
PASS_EVERY_S = 0.05
"""Passes start at most this often. Each write wakes the worker; under a stream of writes a
pass then takes the events of many writes at once, instead of a pass (and its queries) for
each. A mail or webhook waits this much longer at most; an idle worker answers a wake at
once."""
UNAVAILABLE = (DatabaseUnavailable, StatementTimeout, ServiceBusy)
"""A kind's own deadline (its call's) comes first; the worker's, this much later, bounds the
rest of an attempt too (its reads of the database)."""


class JobFailed(Exception):
    """This attempt failed: `final` when trying again cannot help (a refused recipient)."""

    def __init__(self, reason: str, *, code: int | None = None, final: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.final = final


@dataclass(frozen=True)
class Outcome:
    """A job that succeeded: the reply code, what to keep of its payload (None: all), and
    what to do once its success is recorded (an SMTP session's QUIT: a worker killed before
    the record runs the job again, so nothing that can wait comes before it)."""

    code: int | None = None
    payload: str | None = None
    then: Callable[[], Awaitable[None]] | None = None


Claim = Callable[[Db, datetime, datetime, int], Awaitable[list[ClaimedJob]]]
"""Takes up to the given number of due jobs of one kind: (db, now, lease end, limit)."""
Hook = Callable[[Db, ClaimedJob], Awaitable[None]]
Record = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Kind:
    """How to run one kind of job, in its own lane: `slots` at once per worker, each attempt
    within `deadline` seconds. `succeeded` and `failed` run in the transaction that records
    the attempt (`failed` unless the job said trying again cannot help), `given_up` when it
    failed through its whole schedule."""

    run: Callable[[ClaimedJob], Awaitable[Outcome]]
    claim: Claim
    slots: int
    deadline: float
    succeeded: Hook | None = None
    failed: Callable[[Db, ClaimedJob, str], Awaitable[None]] | None = None
    given_up: Callable[[Db, ClaimedJob, str], Awaitable[None]] | None = None


Dispatch = Callable[[Db], Awaitable[int]]
"""Queues the jobs of the events past the cursor in the given transaction; how many events."""


def next_delay(attempts: int, delays: tuple[float, ...]) -> float | None:
    """Seconds until the next attempt after `attempts` failed ones; None: give up."""
    if attempts > len(delays):
        return None
    delay = delays[attempts - 1]
    return delay * random.uniform(1 - JITTER, 1 + JITTER)  # noqa: S311 - spreading, not secrecy


class Worker:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        kinds: dict[str, Kind],
        dispatch: Dispatch,
        *,
        closing: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`kinds` in the order their lanes claim: the most urgent first."""
        self._database = database
        self._settings = settings
        self._kinds = kinds
        self._dispatch = dispatch
        self._closing = closing
        self._running: dict[str, set[asyncio.Task[None]]] = {name: set() for name in kinds}
        self._wake = asyncio.Event()
        database.listen_here(CHANNEL, lambda _payload: self._wake.set())

    async def run(self) -> None:
        """Dispatch and run jobs until cancelled; the jobs in hand are let finish first."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                started = loop.time()
                try:
                    busy = await self.step()
                except Exception:
                    log.exception("the job queue could not be read; trying again shortly")
                    await asyncio.sleep(OUTAGE_PAUSE_S)
                    continue
                if not busy:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self._settings.job_poll_seconds):
                            await self._wake.wait()
                rest = started + PASS_EVERY_S - loop.time()
                if rest > 0:
                    await asyncio.sleep(rest)
        finally:
            await self.drain()
            if self._closing is not None:
                await self._closing()

    async def step(self) -> bool:
        """One pass: dispatch a batch of new events, start due jobs in each lane's free slots.
        True when there may be more. (A burst of events is dispatched over several passes, so
        the lanes claim between its batches.)"""
        async with self._database.session() as db:
            busy = await self._dispatch(db) > 0
        for name, kind in self._kinds.items():
            busy = await self._fill(name, kind) or busy
        return busy

    async def _fill(self, name: str, kind: Kind) -> bool:
        """Claim jobs for the lane's free slots; True when it filled them all."""
        running = self._running[name]
        free = kind.slots - len(running)
        if free <= 0:
            return False  # a finishing job wakes the loop
        now = datetime.now(UTC)
        lease_end = now + timedelta(seconds=self._settings.job_lease_seconds)
        async with self._database.session() as db:
            claimed = await kind.claim(db, now, lease_end, free)
        for job in claimed:
            task = asyncio.get_running_loop().create_task(self._attempt(kind, job), name=job.key)
            running.add(task)
            task.add_done_callback(functools.partial(self._finished, running))
        return len(claimed) == free

    async def drain(self) -> None:
        """Wait for the jobs in hand (their outcome is recorded)."""
        tasks = [task for lane in self._running.values() for task in lane]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _finished(self, lane: set[asyncio.Task[None]], task: asyncio.Task[None]) -> None:
        lane.discard(task)
        self._wake.set()

    async def _attempt(self, kind: Kind, job: ClaimedJob) -> None:
        lease_ends = time.monotonic() + self._settings.job_lease_seconds - LEASE_MARGIN_S
        record, then = await self._run(kind, job)
        try:
            await self._recorded(record, until=lease_ends)
        except Exception:
            # The database stayed away: the job's lease runs out, and it runs again.
            log.exception("the outcome of job %s could not be recorded", job.key)
        finally:
            if then is not None:
                await then()

    @staticmethod
    async def _recorded(record: Record, *, until: float) -> None:
        """Record an attempt's outcome, again and again while the database is away (a
        restart) until shortly before the lease ends: an outcome lost is a mail sent twice."""
        delay = 0.25
        while True:
            try:
                await record()
                return
            except UNAVAILABLE:
                if time.monotonic() + delay >= until:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 4.0)

    async def _run(self, kind: Kind, job: ClaimedJob) -> tuple[Record, Record | None]:
        """Run the job: what records its outcome, and what comes after the record."""
        deadline = kind.deadline + DEADLINE_GRACE_S
        try:
            async with asyncio.timeout(deadline):
                outcome = await kind.run(job)
        except JobFailed as failure:
            return functools.partial(self._failed, job, kind, failure), None
        except TimeoutError:
            late = JobFailed(f"not done within {deadline:g} s")
            return functools.partial(self._failed, job, kind, late), None
        except Exception as exc:
            log.exception("job %s crashed", job.key, extra={"job_id": job.id})
            crashed = JobFailed(f"{type(exc).__name__} in the worker")
            return functools.partial(self._failed, job, kind, crashed), None
        return functools.partial(self._done, job, kind, outcome), outcome.then

    async def _done(self, job: ClaimedJob, kind: Kind, outcome: Outcome) -> None:
        now = datetime.now(UTC)
        async with self._database.session() as db:
            if kind.succeeded is not None:
                await db.begin()
            await repository.finish(
                db,
                job,
                status="done",
                run_at=now,
                finished_at=now,
                error=None,
                code=outcome.code,
                payload=outcome.payload,
            )
            if kind.succeeded is not None:
                await kind.succeeded(db, job)

    async def _failed(self, job: ClaimedJob, kind: Kind, failure: JobFailed) -> None:
        now = datetime.now(UTC)
        delay = None if failure.final else next_delay(job.attempts, self._settings.retry_delays)
        fields = {
            "job_id": job.id,
            "job_key": job.key,
            "job_kind": job.kind,
            "attempt": job.attempts,
            "error": failure.reason,
            "code": failure.code,
        }
        exhausted = delay is None and not failure.final
        counted = not failure.final and kind.failed is not None
        async with self._database.session() as db:
            if exhausted or counted:
                await db.begin()  # the endpoint may be paused or disabled in the same one
            recorded = await repository.finish(
                db,
                job,
                status="failed" if delay is None else "queued",
                run_at=now if delay is None else now + timedelta(seconds=delay),
                finished_at=now if delay is None else None,
                error=failure.reason,
                code=failure.code,
            )
            if counted and kind.failed is not None:
                await kind.failed(db, job, failure.reason)
            if recorded and exhausted and kind.given_up is not None:
                await kind.given_up(db, job, failure.reason)
        JOB_FAILURES.labels(job.kind, "true" if delay is None else "false").inc()
        if delay is None:
            log.error("job failed for good", extra=fields)
        else:
            log.warning("job failed; retrying in %.1f s", delay, extra=fields)
