"""Writes to one row take turns in the process; a request waiting for its turn never leaves
the request whose turn it is without a connection."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import URL

from conftest import Account, MakeUser, client_with, open_ticket
from ticketdesk.db.turns import Turns


async def test_one_at_a_time_per_key_and_keys_side_by_side() -> None:
    turns = Turns()
    inside: dict[str, int] = {"a": 0, "b": 0}
    most: dict[str, int] = {"a": 0, "b": 0}
    order: list[tuple[str, int]] = []

    async def write(key: str, number: int) -> None:
        async with turns.turn(key):
            inside[key] += 1
            most[key] = max(most[key], inside[key])
            await asyncio.sleep(0.001)
            order.append((key, number))
            inside[key] -= 1

    await asyncio.gather(*(write(key, n) for n in range(10) for key in "ab"))
    assert most == {"a": 1, "b": 1}
    assert [n for key, n in order if key == "a"] == list(range(10))  # in the order they came
    assert len(turns) == 0  # no entry outlives its last use


async def test_a_cancelled_wait_gives_up_its_place() -> None:
    turns = Turns()
    async with turns.turn("a"):
        waiting = asyncio.create_task(_enter(turns, "a"))
        await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    assert len(turns) == 0
    await asyncio.wait_for(_enter(turns, "a"), 1)


async def _enter(turns: Turns, key: str) -> None:
    async with turns.turn(key):
        pass


@pytest.mark.postgresql_only
async def test_retried_writes_to_one_ticket_with_a_small_pool_all_land(
    backend: str, database_url: URL, tmp_path: Path, make_user: MakeUser
) -> None:
    """Posts with an Idempotency-Key hold a connection (their transaction) before their
    turn, posts without one take it at their statement: with two connections and a mix of
    both at once, the post whose turn it is never waits for a connection the others hold,
    and every one lands."""
    async with client_with(database_url, tmp_path, db_pool_size=2, db_pool_timeout=3.0) as small:
        customer: Account = await make_user("turns@example.com")
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
