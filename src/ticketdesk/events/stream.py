"""Following the feed live: every committed event, soon after it may be served.

A stream reads the feed after the last id it sent every `POLL_S` seconds, and at once when
this process wrote events. Events written by other processes (or servers) arrive within
`POLL_S` of their commit. Writers send no notification through the database: in the
benchmark a NOTIFY in every write transaction cost about a fifth of the message posts per
second (the commit-time queue lock, and waking every listening process), while a stream's
read is three short statements, and only while someone watches.

A stream is for as long as its follower may read every ticket's events, and no longer:
every `CHECK_S` seconds, however busy the desk, the follower is checked again before the
feed is read, and the stream ends at the first check that fails (a logout, a new password,
a block, a demotion, an expired token). So it ends within `CHECK_S` of the change, plus one
check, and sends no event committed more than `CHECK_S` after it. The check is cheap: the
token checks of this process remember valid tokens until a change is notified
(`auth/tokens.py`); on SQLite it is one small query. It ends too when the server stops
(`NewEvents.close`): an open stream would otherwise hold the stop for SHUTDOWN_TIMEOUT,
and its follower reconnects (to another server) with the last id it saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from ticketdesk.db import Database, Db
from ticketdesk.events import repository
from ticketdesk.events.repository import CHANNEL, EventRow

POLL_S = 0.5
CHECK_S = 0.5
"""How often the follower is checked again: the stream ends within a second of a revocation."""
HEARTBEAT_S = 15.0
BATCH = 100


class Heartbeat:
    """Nothing new: a sign of life for proxies and clients that time out quiet connections."""


HEARTBEAT = Heartbeat()


class NewEvents:
    """Wakes every waiting stream of this process when events may have committed, and ends
    them all when the process stops."""

    def __init__(self, database: Database) -> None:
        self._changed = asyncio.Event()
        self.closed = False
        database.listen_here(CHANNEL, self._notified)

    def _notified(self, _payload: str) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def close(self) -> None:
        """The server stops: every stream ends now, and any stream begun later at once."""
        self.closed = True
        self._notified("")

    async def wait(self, seconds: float) -> None:
        """Until the next notification, or `seconds`."""
        if self.closed:
            return
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await changed.wait()


async def follow(
    database: Database,
    new_events: NewEvents,
    *,
    after: int,
    still_allowed: Callable[[Db], Awaitable[bool]],
) -> AsyncIterator[EventRow | Heartbeat]:
    """Every event after the position `after`, then each new one as it commits.

    Every `CHECK_S` seconds `still_allowed` is asked, on the handle of the feed's read that
    follows; the stream ends when it says no, or when the process stops. A heartbeat comes
    after `HEARTBEAT_S` quiet seconds.
    """
    last = after
    quiet_since = time.monotonic()
    check_due = quiet_since + CHECK_S
    while not new_events.closed:
        async with database.session() as db:
            started = time.monotonic()
            if started >= check_due:
                if not await still_allowed(db):
                    return
                check_due = started + CHECK_S
            rows = await repository.feed(db, after=last, limit=BATCH)
        for row in rows:
            yield row
            last = row.id
        now = time.monotonic()
        if rows:
            quiet_since = now
            if len(rows) == BATCH:
                continue
        elif now - quiet_since >= HEARTBEAT_S:
            yield HEARTBEAT
            quiet_since = now
        wake = min(now + POLL_S, check_due, quiet_since + HEARTBEAT_S)
        await new_events.wait(max(0.0, wake - time.monotonic()))
