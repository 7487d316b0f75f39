"""What the load runs need from the data set: target ids, the deep-page cursor, write cleanup."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from common import BENCH_DB, CUSTOMER, dsn

DEEP_SHARE = 0.9  # the deep page starts after 90% of the staff's ticket list
SEARCH_WORDS = "laptop+refund"  # see generate.VOCABULARY: together in about 1% of the tickets


@dataclass(frozen=True)
class Targets:
    read_ticket: int  # one of the known customer's tickets
    messages_ticket: int  # the known customer's ticket with the most messages
    post_ticket: int  # a known customer's ticket that takes new messages (not canceled)
    deep_cursor: str  # staff list, default order, after DEEP_SHARE of all tickets
    deep_position: int
    tickets: int
    search_words: str = SEARCH_WORDS  # two words that some thousands of tickets share
    feed_after: int = 0  # the middle of the event feed


@dataclass(frozen=True)
class Watermark:
    """The state that write runs change, to put back afterwards."""

    tickets_id: int
    messages_id: int
    events_id: int
    post_ticket: int
    post_status: str
    post_updated_at: datetime


async def _fetch_id(conn: asyncpg.Connection, sql: str, *args: object) -> int:
    value = await conn.fetchval(sql, *args)
    if value is None:
        raise RuntimeError(f"the data set has nothing for: {sql}")
    return int(value)


async def deep_cursor(conn: asyncpg.Connection, tickets: int) -> tuple[str, int]:
    from ticketdesk.pagination import encode_cursor

    position = int(tickets * DEEP_SHARE)
    row = await conn.fetchrow(
        "SELECT created_at, id FROM tickets ORDER BY created_at, id OFFSET $1 LIMIT 1",
        position - 1,
    )
    if row is None:
        raise RuntimeError("no ticket at the deep-page position")
    return encode_cursor("created_at", row["created_at"], row["id"]), position


async def find_targets() -> Targets:
    conn = await asyncpg.connect(dsn(BENCH_DB))
    try:
        customer = CUSTOMER.user_id
        read_ticket = await _fetch_id(
            conn, "SELECT min(id) FROM tickets WHERE author_id = $1", customer
        )
        messages_ticket = await _fetch_id(
            conn,
            "SELECT m.ticket_id FROM messages m JOIN tickets t ON t.id = m.ticket_id "
            "WHERE t.author_id = $1 GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
            customer,
        )
        post_ticket = await _fetch_id(
            conn,
            "SELECT id FROM tickets WHERE author_id = $1 AND status <> 'canceled' "
            "AND id <> ALL($2::bigint[]) ORDER BY status = 'pending' DESC, id DESC LIMIT 1",
            customer,
            [read_ticket, messages_ticket],
        )
        tickets = int(await conn.fetchval("SELECT count(*) FROM tickets"))
        cursor, position = await deep_cursor(conn, tickets)
        feed_after = int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM ticket_events"))
    finally:
        await conn.close()
    return Targets(
        read_ticket=read_ticket,
        messages_ticket=messages_ticket,
        post_ticket=post_ticket,
        deep_cursor=cursor,
        deep_position=position,
        tickets=tickets,
        feed_after=feed_after // 2,
    )


async def watermark(post_ticket: int) -> Watermark:
    conn = await asyncpg.connect(dsn(BENCH_DB))
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT max(id) FROM tickets) AS tickets_id, "
            "(SELECT max(id) FROM messages) AS messages_id, "
            "(SELECT coalesce(max(id), 0) FROM ticket_events) AS events_id, status, updated_at "
            "FROM tickets WHERE id = $1",
            post_ticket,
        )
    finally:
        await conn.close()
    assert row is not None
    return Watermark(
        tickets_id=row["tickets_id"],
        messages_id=row["messages_id"],
        events_id=row["events_id"],
        post_ticket=post_ticket,
        post_status=row["status"],
        post_updated_at=row["updated_at"],
    )


ACTIVE_SQL = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() "
    "AND state NOT IN ('idle')"
)
RESTORE_SQL = (
    "DELETE FROM messages WHERE id > $1",
    "DELETE FROM tickets WHERE id > $1",  # their events go with them
    "UPDATE tickets SET status = $1, updated_at = $2 WHERE id = $3",
    "DELETE FROM ticket_events WHERE id > $1",
    # The written-to ticket's search document, without the messages the run added.
    "UPDATE tickets SET search_public = to_tsvector('english', topic) || coalesce(("
    "SELECT to_tsvector('english', string_agg(text, ' ' ORDER BY id)) FROM messages "
    "WHERE ticket_id = $1 AND type <> 'note'), '') WHERE id = $1",
)


async def quiesce(conn: asyncpg.Connection, timeout_s: float = 60, quiet_s: float = 1) -> None:
    """Wait until no other session of the bench database has run a statement for quiet_s.

    Requests still in flight when the load generator stops would otherwise write after
    the cleanup.
    """
    deadline = time.monotonic() + timeout_s
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        if await conn.fetchval(ACTIVE_SQL, BENCH_DB):
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            return
        await asyncio.sleep(0.05)


async def restore(mark: Watermark) -> int:
    """Remove what write runs added; returns how many rows went. Sequences stay where they are."""
    conn = await asyncpg.connect(dsn(BENCH_DB))
    try:
        await quiesce(conn)
        async with conn.transaction():
            removed = await conn.execute(RESTORE_SQL[0], mark.messages_id)
            removed_tickets = await conn.execute(RESTORE_SQL[1], mark.tickets_id)
            await conn.execute(
                RESTORE_SQL[2],
                mark.post_status,
                mark.post_updated_at,
                mark.post_ticket,
            )
            await conn.execute(RESTORE_SQL[3], mark.events_id)
            await conn.execute(RESTORE_SQL[4], mark.post_ticket)
            await conn.execute(
                "UPDATE users u SET tickets_count = "
                "(SELECT count(*) FROM tickets t WHERE t.author_id = u.id) WHERE u.id = $1",
                CUSTOMER.user_id,
            )
        await conn.execute("VACUUM tickets, messages, users, ticket_events")
    finally:
        await conn.close()
    return int(removed.split()[-1]) + int(removed_tickets.split()[-1])
