"""What an attacker and a new operator found, each kept from coming back."""

from __future__ import annotations

import asyncio

import httpx

from conftest import Account


async def test_a_token_logged_out_ten_times_at_once_is_revoked_once(
    client: httpx.AsyncClient, customer: Account
) -> None:
    answers = await asyncio.gather(
        *(client.post("/logout", headers=customer.headers) for _ in range(10))
    )
    assert sorted(answer.status_code for answer in answers) == [204] + [401] * 9
    assert (await client.get("/users/me", headers=customer.headers)).status_code == 401
