"""The event feed never skips an event, however its writers' commits interleave; a ticket's
history counts what its viewer may see."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import httpx
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import Account, make_settings, open_ticket
from ticketdesk.db import open_database
from ticketdesk.events import repository as events
from ticketdesk.events.policy import CUSTOMER_KINDS
from ticketdesk.events.repository import Change
from ticketdesk.models import utcnow

WRITERS = 50


async def test_a_follower_sees_every_committed_event_exactly_once(
    client: httpx.AsyncClient,
    customer: Account,
    engine: AsyncEngine,
    database_url: URL,
    tmp_path: Path,
) -> None:
    """50 writers draw event ids at once and commit (or roll back) after random delays,
    so ids commit out of order; a follower polls `after=<last id seen>` all along."""
    ticket_id = await open_ticket(client, customer)
    settings = make_settings(database_url, tmp_path, db_pool_size=WRITERS + 5)
    database = await open_database(settings)
    rng = random.Random(8)
    committed: set[str] = set()
    done = asyncio.Event()

    async def write(number: int) -> None:
        await asyncio.sleep(rng.random() * 0.05)
        db = database.handle()
        try:
            await db.begin()
            changes = [Change("status", None, {"writer": f"{number}-{i}"}) for i in range(2)]
            await events.record(
                db, ticket_id=ticket_id, actor_id=None, now=utcnow(), changes=changes
            )
            await asyncio.sleep(rng.random() * 0.2)  # holds its ids uncommitted meanwhile
        except BaseException:
            await db.finish(commit=False)
            raise
        keep = number % 7 != 0  # some writers roll back: their ids never appear
        await db.finish(commit=keep)
        if keep:
            committed.update(f"{number}-{i}" for i in range(2))

    async def follow() -> list[events.EventRow]:
        seen: list[events.EventRow] = []
        last = 0
        while True:
            finished = done.is_set()  # read before the poll: one more poll after the last commit
            async with database.session() as db:
                page = await events.feed(db, after=last, limit=7)
            seen.extend(page)
            if page:
                last = page[-1].id
            elif finished:
                return seen
            await asyncio.sleep(0.003)

    try:
        follower = asyncio.create_task(follow())
        await asyncio.gather(*(write(n) for n in range(WRITERS)))
        done.set()
        seen = await asyncio.wait_for(follower, timeout=30)
    finally:
        await database.close(5)

    ids = [row.id for row in seen]
    assert ids == sorted(set(ids)), "ids ascend, none twice"
    written = [json.loads(row.after or "{}")["writer"] for row in seen if row.kind == "status"]
    assert sorted(written) == sorted(committed)
    assert len(committed) == 2 * len([n for n in range(WRITERS) if n % 7 != 0])


async def test_the_history_counts_what_its_viewer_may_see(
    client: httpx.AsyncClient, customer: Account, other_customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    path = f"/tickets/{ticket_id}"
    note = {"text": "n", "internal": True}
    staff_only = [  # a note, an assignment and a priority: never shown to the author
        await client.post(f"{path}/messages", json=note, headers=staff.headers),
        await client.patch(path, json={"assignee_id": staff.id}, headers=staff.headers),
        await client.patch(path, json={"priority": "high"}, headers=staff.headers),
    ]
    assert [change.status_code for change in staff_only] == [201, 200, 200]
    for account in (staff, customer):
        reply = {"text": f"from {account.email}"}
        posted = await client.post(f"{path}/messages", json=reply, headers=account.headers)
        assert posted.status_code == 201

    totals = {}
    for account in (staff, customer):
        whole = await client.get(f"{path}/events?limit=1000", headers=account.headers)
        assert "X-Total-Count" not in whole.headers  # only when asked
        counted = await client.get(f"{path}/events?limit=1&count=true", headers=account.headers)
        assert counted.status_code == 200
        assert len(counted.json()) == 1 and 'rel="next"' in counted.headers["Link"]
        totals[account.id] = int(counted.headers["X-Total-Count"])
        assert totals[account.id] == len(whole.json())
    assert totals[staff.id] == totals[customer.id] + len(staff_only)
    seen_by_author = await client.get(f"{path}/events", headers=customer.headers)
    assert {event["kind"] for event in seen_by_author.json()} <= set(CUSTOMER_KINDS)

    other = await client.get(f"{path}/events?count=true", headers=other_customer.headers)
    assert other.status_code == 404 and "X-Total-Count" not in other.headers
