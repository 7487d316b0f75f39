"""Following the feed live: every committed event, soon after it may be served.

A stream reads the feed after the last id it sent every `POLL_S` seconds, and at once when
this process wrote events. Events written by other processes (or servers) arrive within
`POLL_S` of their commit. Writers send no notification through the database: in the
benchmark a NOTIFY in every write transaction cost about a fifth of the message posts per
second (the commit-time queue lock, and waking every listening process), while a stream's
read is three short statements, and only while someone watches.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from ticketdesk.db import Database
from ticketdesk.events import repository
from ticketdesk.events.repository import CHANNEL, EventRow

POLL_S = 0.5
HEARTBEAT_S = 15.0
BATCH = 100


class Heartbeat:
    """Nothing new: a sign of life for proxies and clients that time out quiet connections."""


HEARTBEAT = Heartbeat()


class NewEvents:
    """Wakes every waiting stream of this process when events may have committed."""

    def __init__(self, database: Database) -> None:
        self._changed = asyncio.Event()
        database.listen_here(CHANNEL, self._notified)

    def _notified(self, _payload: str) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait(self, seconds: float) -> None:
        """Until the next notification, or `seconds`."""
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await changed.wait()


async def follow(
    database: Database,
    new_events: NewEvents,
    *,
    after: int,
    still_allowed: Callable[[], Awaitable[bool]],
) -> AsyncIterator[EventRow | Heartbeat]:
    """Every event after the position `after`, then each new one as it commits, for ever.

    A heartbeat comes after `HEARTBEAT_S` quiet seconds, once `still_allowed` says the
    follower may go on; the stream ends when it says no (a token revoked or expired).
    """
    last = after
    quiet_since = time.monotonic()
    while True:
        async with database.session() as db:
            rows = await repository.feed(db, after=last, limit=BATCH)
        for row in rows:
            yield row
            last = row.id
        if rows:
            quiet_since = time.monotonic()
            if len(rows) == BATCH:
                continue
        elif time.monotonic() - quiet_since >= HEARTBEAT_S:
            if not await still_allowed():
                return
            yield HEARTBEAT
            quiet_since = time.monotonic()
        until_heartbeat = HEARTBEAT_S - (time.monotonic() - quiet_since)
        await new_events.wait(max(0.0, min(POLL_S, until_heartbeat)))
