"""Writes to one key gathered into batches: each gets its own answer, a failure reaches
exactly the writes of its batch, a cancelled write leaves no trace, and on PostgreSQL many
posts at once to one ticket (and tickets opened at once by one customer) land as if they
had been made one by one."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest
from sqlalchemy import URL

from conftest import Account, MakeUser, client_with, open_ticket
from ticketdesk.db.batches import Batches
from ticketdesk.errors import ServiceBusy


class Recorder:
    """A batch runner that records each batch and answers each item with its double."""

    def __init__(self, delay: float = 0.01) -> None:
        self.batches: list[list[int]] = []
        self.leaders: list[int] = []
        self.delay = delay
        self.release = asyncio.Event()
        self.release.set()

    async def run(self, leader: int, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        self.leaders.append(leader)
        await self.release.wait()
        await asyncio.sleep(self.delay)
        return [item * 2 for item in items]


async def test_writes_arriving_while_one_runs_go_together_in_order() -> None:
    batches: Batches[int, int] = Batches()
    recorder = Recorder()
    results = await asyncio.gather(*(batches.submit("a", n, recorder.run) for n in range(10)))
    assert results == [n * 2 for n in range(10)]  # each its own answer
    assert recorder.batches == [[0], list(range(1, 10))]  # the first alone, then the rest
    assert recorder.leaders == [0, 1]  # each batch run by its first write
    assert len(batches) == 0  # no entry outlives its last use


async def test_keys_do_not_wait_for_each_other_and_batches_are_bounded() -> None:
    batches: Batches[int, int] = Batches(max_batch=3)
    recorder = Recorder()
    await asyncio.gather(*(batches.submit(key, n, recorder.run) for n in range(7) for key in "ab"))
    assert max(len(batch) for batch in recorder.batches) == 3
    assert sorted(n for batch in recorder.batches for n in batch) == sorted(list(range(7)) * 2)
    # Both keys' first writes ran at once, not one after the other.
    assert recorder.batches[:2] == [[0], [0]]


async def test_a_failure_reaches_the_writes_of_its_batch_only() -> None:
    batches: Batches[int, int] = Batches()
    calls = 0

    async def run(leader: int, items: Sequence[int]) -> list[int]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        if calls == 2:
            raise RuntimeError("the database broke")
        return list(items)

    first = asyncio.create_task(batches.submit("a", 0, run))
    await asyncio.sleep(0)
    second = [asyncio.create_task(batches.submit("a", n, run)) for n in (1, 2)]
    await asyncio.sleep(0.005)
    assert await first == 0
    with pytest.raises(RuntimeError, match="broke"):
        await second[0]
    with pytest.raises(RuntimeError, match="broke"):
        await second[1]
    assert await batches.submit("a", 3, run) == 3  # the key works again
    assert len(batches) == 0


async def test_a_cancelled_wait_leaves_no_trace() -> None:
    batches: Batches[int, int] = Batches()
    recorder = Recorder()
    recorder.release.clear()
    first = asyncio.create_task(batches.submit("a", 0, recorder.run))
    await asyncio.sleep(0)
    gone = asyncio.create_task(batches.submit("a", 1, recorder.run))
    kept = asyncio.create_task(batches.submit("a", 2, recorder.run))
    await asyncio.sleep(0.005)
    gone.cancel()
    recorder.release.set()
    assert await first == 0
    assert await kept == 4
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert recorder.batches == [[0], [2]]
    assert len(batches) == 0


async def test_a_write_cancelled_as_its_turn_comes_hands_the_turn_on() -> None:
    batches: Batches[int, int] = Batches()
    recorder = Recorder()
    recorder.release.clear()
    first = asyncio.create_task(batches.submit("a", 0, recorder.run))
    await asyncio.sleep(0)
    second = asyncio.create_task(batches.submit("a", 1, recorder.run))
    await asyncio.sleep(0)
    recorder.release.set()
    assert await first == 0  # the turn is handed to `second`, which has not woken yet
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    assert await asyncio.wait_for(batches.submit("a", 2, recorder.run), 1) == 4
    assert len(batches) == 0


async def test_the_others_of_an_interrupted_batch_are_told_to_retry() -> None:
    batches: Batches[int, int] = Batches()
    recorder = Recorder()
    recorder.release.clear()
    first = asyncio.create_task(batches.submit("a", 0, recorder.run))
    await asyncio.sleep(0)
    leader = asyncio.create_task(batches.submit("a", 1, recorder.run))
    other = asyncio.create_task(batches.submit("a", 2, recorder.run))
    await asyncio.sleep(0)
    recorder.release.set()
    assert await first == 0
    await asyncio.sleep(0.001)  # `leader` runs the batch of 1 and 2 now
    assert recorder.batches[-1] == [1, 2]
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    with pytest.raises(ServiceBusy):
        await other
    assert len(batches) == 0


async def _events(client: httpx.AsyncClient, agent: Account, ticket_id: int) -> list[dict]:
    feed = (await client.get("/events?limit=1000", headers=agent.headers)).json()
    return [event for event in feed if event["ticket_id"] == ticket_id]


@pytest.mark.postgresql_only
async def test_many_posts_at_once_to_one_ticket_land_as_if_one_by_one(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer, text="first words")
    await client.post(
        f"/tickets/{ticket_id}/messages", json={"text": "try again"}, headers=staff.headers
    )
    resolved = await client.patch(
        f"/tickets/{ticket_id}", json={"status": "resolved"}, headers=staff.headers
    )
    assert resolved.status_code == 200

    async def post(number: int) -> httpx.Response:
        return await client.post(
            f"/tickets/{ticket_id}/messages",
            json={"text": f"zebra{number} still broken"},
            headers=customer.headers,
        )

    responses = await asyncio.gather(*(post(n) for n in range(20)))
    assert [r.status_code for r in responses] == [201] * 20
    posted = [r.json() for r in responses]
    assert [m["text"] for m in posted] == [f"zebra{n} still broken" for n in range(20)]
    assert len({m["id"] for m in posted}) == 20

    thread = (
        await client.get(f"/tickets/{ticket_id}/messages?limit=100", headers=customer.headers)
    ).json()
    assert [m["id"] for m in thread[2:]] == sorted(m["id"] for m in posted)
    assert sorted(m["text"] for m in thread[2:]) == sorted(m["text"] for m in posted)
    ticket = (await client.get(f"/tickets/{ticket_id}", headers=staff.headers)).json()
    assert ticket["status"] == "pending"  # reopened, once

    events = await _events(client, staff, ticket_id)
    requests = [e for e in events if e["kind"] == "message" and e["after"]["type"] == "request"]
    assert sorted(e["after"]["message_id"] for e in requests) == sorted(m["id"] for m in posted)
    reopenings = [e for e in events if e["kind"] == "status" and e["after"]["status"] == "pending"]
    assert len(reopenings) == 1
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)

    for number in (0, 7, 19):  # every message's words are searchable, not only the first's
        found = await client.get(f"/tickets?q=zebra{number}", headers=staff.headers)
        assert [t["id"] for t in found.json()] == [ticket_id], number


@pytest.mark.postgresql_only
async def test_posts_at_once_to_a_closed_ticket_are_all_refused(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    closed = await client.patch(
        f"/tickets/{ticket_id}", json={"status": "canceled"}, headers=customer.headers
    )
    assert closed.status_code == 200
    responses = await asyncio.gather(
        *(
            client.post(
                f"/tickets/{ticket_id}/messages", json={"text": f"{n}"}, headers=customer.headers
            )
            for n in range(6)
        )
    )
    assert [r.status_code for r in responses] == [409] * 6
    thread = (await client.get(f"/tickets/{ticket_id}/messages", headers=customer.headers)).json()
    assert len(thread) == 1


@pytest.mark.postgresql_only
async def test_another_customers_posts_in_the_crowd_are_not_found(
    client: httpx.AsyncClient, customer: Account, other_customer: Account
) -> None:
    ticket_id = await open_ticket(client, customer)

    async def post(account: Account, number: int) -> int:
        response = await client.post(
            f"/tickets/{ticket_id}/messages", json={"text": f"{number}"}, headers=account.headers
        )
        return response.status_code

    statuses = await asyncio.gather(
        *(post(customer if n % 2 else other_customer, n) for n in range(10))
    )
    assert statuses == [404 if n % 2 == 0 else 201 for n in range(10)]
    thread = (await client.get(f"/tickets/{ticket_id}/messages", headers=customer.headers)).json()
    assert sorted(m["text"] for m in thread[1:]) == sorted(str(n) for n in range(1, 10, 2))


@pytest.mark.postgresql_only
async def test_tickets_opened_at_once_by_one_customer_each_land_whole(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    async def opened(number: int) -> int:
        return await open_ticket(client, customer, topic=f"topic {number}", text=f"text {number}")

    ids = await asyncio.gather(*(opened(n) for n in range(15)))
    assert len(set(ids)) == 15
    for number, ticket_id in enumerate(ids):
        ticket = (await client.get(f"/tickets/{ticket_id}", headers=customer.headers)).json()
        assert ticket["topic"] == f"topic {number}"
        thread = (
            await client.get(f"/tickets/{ticket_id}/messages", headers=customer.headers)
        ).json()
        assert [m["text"] for m in thread] == [f"text {number}"]
        events = await _events(client, staff, ticket_id)
        assert [(e["kind"], e["after"]["topic"]) for e in events] == [
            ("created", f"topic {number}")
        ]
        assert events[0]["after"]["message_id"] == thread[0]["id"]
    users = (await client.get("/users?limit=100", headers=staff.headers)).json()
    mine = next(user for user in users if user["id"] == customer.id)
    assert mine["tickets_count"] == 15


@pytest.mark.postgresql_only
async def test_retried_writes_to_one_ticket_with_a_small_pool_all_land(
    database_url: URL, tmp_path: Path, make_user: MakeUser
) -> None:
    """Posts with an Idempotency-Key hold a connection (their transaction) and write alone;
    posts without one take theirs before they join a batch: with two connections and a mix
    of both at once, the post that runs a batch never waits for a connection the others
    hold, and every one lands."""
    async with client_with(database_url, tmp_path, db_pool_size=2, db_pool_timeout=3.0) as small:
        customer: Account = await make_user("batches@example.com")
        ticket_id = await open_ticket(small, customer)

        async def post(number: int) -> int:
            response = await small.post(
                f"/tickets/{ticket_id}/messages",
                json={"text": f"message {number}"},
                headers={
                    **customer.headers,
                    **({"Idempotency-Key": f"t{number}"} if number % 2 else {}),
                },
            )
            return response.status_code

        statuses = await asyncio.gather(*(post(n) for n in range(12)))
        assert statuses == [201] * 12
        page = await small.get(f"/tickets/{ticket_id}/messages?limit=50", headers=customer.headers)
        assert len(page.json()) == 13
