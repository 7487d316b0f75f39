"""What an attacker and a new operator found, each kept from coming back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from sqlalchemy.engine import URL

from conftest import Account, MakeUser, client_with


async def test_a_token_logged_out_ten_times_at_once_is_revoked_once(
    client: httpx.AsyncClient, customer: Account
) -> None:
    answers = await asyncio.gather(
        *(client.post("/logout", headers=customer.headers) for _ in range(10))
    )
    assert sorted(answer.status_code for answer in answers) == [204] + [401] * 9
    assert (await client.get("/users/me", headers=customer.headers)).status_code == 401


async def test_guessing_the_password_through_a_session_spends_the_login_failures(
    database_url: URL, tmp_path: Path, make_user: MakeUser
) -> None:
    async with client_with(
        database_url,
        tmp_path,
        rate_limit_login_failures="3/hour",
        rate_limit_writes_per_user="100/minute",
    ) as client:
        user = await make_user("customer")
        guesses = [
            (
                await client.patch(
                    "/users/me",
                    json={"password": "a new password", "current_password": f"guess {n}"},
                    headers=user.headers,
                )
            ).status_code
            for n in range(5)
        ]
        assert guesses == [400, 400, 400, 429, 429]
        # The same budget as logins: the right password cannot log in either now.
        login = await client.post("/login", json={"email": user.email, "password": user.password})
        assert login.status_code == 429
        right = await client.patch(
            "/users/me",
            json={"password": "a new password", "current_password": user.password},
            headers=user.headers,
        )
        assert right.status_code == 429
