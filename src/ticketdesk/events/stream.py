"""Following the feed live: every committed event, as soon as it may be served.

On PostgreSQL each transaction that writes events sends a notification on `CHANNEL` (in
`repository.GUARD`), which every process hears on its own listening connection; a stream
then reads the feed after the last id it sent. It also reads every `POLL_S` seconds, for
what no notification announces (an event held back by a writer that rolled back, or a lost
channel). SQLite has no notifications between processes: its streams read every
`LOCAL_POLL_S` seconds, and at once when this process wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from ticketdesk.db import Database
from ticketdesk.events import repository
from ticketdesk.events.repository import CHANNEL, EventRow

POLL_S = 1.0
LOCAL_POLL_S = 0.5
HEARTBEAT_S = 15.0
BATCH = 100


class Heartbeat:
    """Nothing new: a sign of life for proxies and clients that time out quiet connections."""


HEARTBEAT = Heartbeat()


class NewEvents:
    """Wakes every waiting stream of this process when events may have committed."""

    def __init__(self, database: Database) -> None:
        self._changed = asyncio.Event()
        self._listening = database.listen(CHANNEL, self._notified, self._channel_state)

    def _notified(self, _payload: str) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _channel_state(self, listening: bool) -> None:
        self._listening = listening
        self._notified("")

    @property
    def poll_seconds(self) -> float:
        return POLL_S if self._listening else LOCAL_POLL_S

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
        await new_events.wait(max(0.0, min(new_events.poll_seconds, until_heartbeat)))
