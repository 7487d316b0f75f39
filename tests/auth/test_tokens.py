"""Token checks from each process's memory, kept honest by PostgreSQL notifications.

A process remembers a token it found valid and asks the database no more; a logout,
password change or block on any process reaches every other within a second; and when
the notification channel is lost, every check asks the database again until it is back.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import Account, running_servers
from ticketdesk.auth.security import TokenClaims, decode_token
from ticketdesk.db.database import LISTENER_NAME, PostgresDatabase
from ticketdesk.models import revoked_tokens

REACH_S = 1.0
"""How soon a revocation must hold on every process."""


def _claims(app: FastAPI, account: Account) -> TokenClaims:
    return decode_token(account.token, app.state.signing_key)


async def _listening(app: FastAPI) -> None:
    deadline = time.monotonic() + 10
    while not app.state.token_checks.listening:
        assert time.monotonic() < deadline, "the notification channel never opened"
        await asyncio.sleep(0.05)


async def test_a_remembered_token_costs_no_database_round_trip(
    app: FastAPI, client: httpx.AsyncClient, customer: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not isinstance(app.state.database, PostgresDatabase):
        # SQLite: no other process could tell this one of a revocation; it always asks.
        await client.get("/tickets", headers=customer.headers)
        assert app.state.token_checks.cached(_claims(app, customer)) is None
        return
    await _listening(app)
    assert (await client.get("/tickets", headers=customer.headers)).status_code == 200
    taken: list[int] = []
    original = PostgresDatabase.acquire

    async def counting(self: PostgresDatabase) -> object:
        taken.append(1)
        return await original(self)

    monkeypatch.setattr(PostgresDatabase, "acquire", counting)
    assert (await client.get("/healthz", headers=customer.headers)).status_code == 200
    assert (await client.get("/users/me", headers=customer.headers)).status_code == 200
    assert len(taken) == 1  # the account itself; the token check took nothing


@pytest.mark.postgresql_only
async def test_a_lost_channel_sends_every_check_to_the_database(
    app: FastAPI, client: httpx.AsyncClient, customer: Account, engine: AsyncEngine
) -> None:
    await _listening(app)
    assert (await client.get("/tickets", headers=customer.headers)).status_code == 200
    claims = _claims(app, customer)
    assert app.state.token_checks.cached(claims) is not None
    async with engine.begin() as conn:
        # The channel drops; the revocation that follows is never notified.
        await conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = :name AND datname = current_database()"
            ),
            {"name": LISTENER_NAME},
        )
        await asyncio.sleep(0.2)
        await conn.execute(
            insert(revoked_tokens).values(
                jti=claims.jti, user_id=customer.id, expires_at=claims.expires_at
            )
        )
    started = time.monotonic()
    while (await client.get("/tickets", headers=customer.headers)).status_code != 401:
        assert time.monotonic() - started < REACH_S, "the revoked token was still accepted"
        await asyncio.sleep(0.05)
    assert app.state.token_checks.cached(claims) is None
    await _listening(app)  # and the channel comes back


@pytest.mark.slow
@pytest.mark.postgresql_only
async def test_revocations_reach_a_process_that_remembered_the_token_within_a_second(
    database_url: URL, tmp_path: Path, customer: Account, staff: Account
) -> None:
    with running_servers(2, database_url, tmp_path, RATE_LIMITS="false") as (here, there):
        async with httpx.AsyncClient() as client:

            async def remembered_token() -> dict[str, str]:
                body = {"email": customer.email, "password": customer.password}
                response = await client.post(f"{here}/login", json=body)
                client.cookies.clear()
                assert response.status_code == 200
                headers = {"Authorization": f"Bearer {response.json()['token']}"}
                for _ in range(3):  # `there` now answers from memory
                    assert (await client.get(f"{there}/tickets", headers=headers)).is_success
                return headers

            async def refused_there_within_a_second(headers: dict[str, str]) -> None:
                started = time.monotonic()
                while (await client.get(f"{there}/tickets", headers=headers)).status_code != 401:
                    assert time.monotonic() - started < REACH_S
                    await asyncio.sleep(0.01)

            headers = await remembered_token()
            assert (await client.post(f"{here}/logout", headers=headers)).status_code == 204
            await refused_there_within_a_second(headers)

            headers = await remembered_token()
            change = {"password": "another long password", "current_password": customer.password}
            assert (await client.patch(f"{here}/users/me", json=change, headers=headers)).is_success
            customer.password = change["password"]
            await refused_there_within_a_second(headers)

            headers = await remembered_token()
            block = {"is_active": False}
            url = f"{here}/users/{customer.id}"
            assert (await client.patch(url, json=block, headers=staff.headers)).is_success
            await refused_there_within_a_second(headers)
