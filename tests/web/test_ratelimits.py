"""Rate limits on login, registration and writes: in memory, and shared through Redis."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from pydantic import ValidationError
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import PASSWORD, Account, MakeUser, client_with, make_settings, running_servers
from ticketdesk.models import tickets, users

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def _login(account: Account, password: str = PASSWORD) -> dict[str, str]:
    return {"email": account.email, "password": password}


def _assert_limited(response: httpx.Response, limit: int, window_s: int = 60) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["detail"].startswith("too many requests")
    assert 1 <= int(response.headers["retry-after"]) <= window_s
    assert response.headers["ratelimit-limit"] == str(limit)
    assert response.headers["ratelimit-remaining"] == "0"
    assert 0 <= int(response.headers["ratelimit-reset"]) <= window_s


@pytest.fixture
def redis_url() -> str:
    return os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS_URL)


@pytest.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own in the real Redis, removed afterwards."""
    prefix = f"ticketdesk-test-{uuid4().hex}"
    client = Redis.from_url(redis_url)
    try:
        assert await client.ping()  # fails loudly when Redis is down
        yield prefix
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def test_the_eleventh_login_in_a_minute_is_429(
    database_url: URL, tmp_path: Path, customer: Account
) -> None:
    async with client_with(database_url, tmp_path) as client:
        for attempt in range(10):
            response = await client.post("/login", json=_login(customer))
            assert response.status_code == 200
            assert response.headers["ratelimit-limit"] == "10"
            assert response.headers["ratelimit-remaining"] == str(9 - attempt)
        _assert_limited(await client.post("/login", json=_login(customer)), 10)


async def test_logins_are_limited_per_address_across_accounts(
    database_url: URL, tmp_path: Path, make_user: MakeUser
) -> None:
    accounts = [await make_user() for _ in range(4)]
    limits = {"rate_limit_login_per_ip": "3/minute", "rate_limit_login_per_account": "9/minute"}
    async with client_with(database_url, tmp_path, **limits) as client:
        for account in accounts[:3]:
            assert (await client.post("/login", json=_login(account))).status_code == 200
        _assert_limited(await client.post("/login", json=_login(accounts[3])), 3)


async def test_an_account_takes_only_so_many_failed_logins(
    database_url: URL, tmp_path: Path, customer: Account, other_customer: Account
) -> None:
    limits = {"rate_limit_login_failures": "3/hour", "rate_limit_login_per_account": "50/minute"}
    async with client_with(database_url, tmp_path, **limits) as client:
        assert (await client.post("/login", json=_login(customer))).status_code == 200
        for _ in range(3):
            wrong = await client.post("/login", json=_login(customer, "not the password"))
            assert wrong.status_code == 404
        # Locked now, even with the right password; another account is not.
        _assert_limited(await client.post("/login", json=_login(customer)), 3, window_s=3600)
        assert (await client.post("/login", json=_login(other_customer))).status_code == 200


async def test_unknown_emails_are_limited_like_accounts(database_url: URL, tmp_path: Path) -> None:
    nobody = {"email": "nobody@example.com", "password": "whatever it is"}
    async with client_with(database_url, tmp_path, rate_limit_login_per_account="2/minute") as c:
        assert [(await c.post("/login", json=nobody)).status_code for _ in range(2)] == [404, 404]
        _assert_limited(await c.post("/login", json=nobody), 2)


async def test_registration_is_limited_per_address_and_a_refused_one_writes_nothing(
    database_url: URL, tmp_path: Path, engine: AsyncEngine
) -> None:
    async with client_with(database_url, tmp_path, rate_limit_register_per_ip="2/minute") as client:
        for n in range(2):
            body = {"email": f"new{n}@example.com", "username": "new", "password": PASSWORD}
            assert (await client.post("/users", json=body)).status_code == 201
        body = {"email": "new2@example.com", "username": "new", "password": PASSWORD}
        _assert_limited(await client.post("/users", json=body), 2)
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(users))).scalar_one() == 2


async def test_writes_are_limited_per_user_and_reads_are_not(
    database_url: URL,
    tmp_path: Path,
    customer: Account,
    other_customer: Account,
    engine: AsyncEngine,
) -> None:
    ticket = {"topic": "t", "text": "t"}
    async with client_with(database_url, tmp_path, rate_limit_writes_per_user="3/minute") as c:
        for n in range(3):
            response = await c.post("/tickets", json=ticket, headers=customer.headers)
            assert response.status_code == 201
            assert response.headers["ratelimit-remaining"] == str(2 - n)
        _assert_limited(await c.post("/tickets", json=ticket, headers=customer.headers), 3)
        ticket_id = (await c.get("/tickets", headers=customer.headers)).json()[0]["id"]
        answer = {"text": "more"}
        _assert_limited(
            await c.post(f"/tickets/{ticket_id}/messages", json=answer, headers=customer.headers),
            3,
        )
        for _ in range(5):  # reads are not writes
            assert (await c.get("/tickets", headers=customer.headers)).status_code == 200
        # Another user has a budget of their own.
        assert (await c.post("/tickets", json=ticket, headers=other_customer.headers)).is_success
    async with engine.connect() as conn:
        count = select(func.count()).select_from(tickets).where(tickets.c.author_id == customer.id)
        assert (await conn.execute(count)).scalar_one() == 3


async def test_limits_can_be_switched_off(
    database_url: URL, tmp_path: Path, customer: Account
) -> None:
    async with client_with(database_url, tmp_path, rate_limits=False) as client:
        for _ in range(15):
            response = await client.post("/login", json=_login(customer))
            assert response.status_code == 200
            assert "ratelimit-limit" not in response.headers


async def test_two_apps_sharing_redis_share_one_budget(
    database_url: URL, tmp_path: Path, customer: Account, redis_url: str, redis_prefix: str
) -> None:
    shared = {"redis_url": redis_url, "rate_limit_prefix": redis_prefix}
    async with (
        client_with(database_url, tmp_path, **shared) as first,
        client_with(database_url, tmp_path, **shared) as second,
    ):
        for n in range(10):
            client = first if n % 2 else second
            assert (await client.post("/login", json=_login(customer))).status_code == 200
        _assert_limited(await first.post("/login", json=_login(customer)), 10)
        _assert_limited(await second.post("/login", json=_login(customer)), 10)


async def test_with_redis_unreachable_limits_fail_open_and_say_so(
    database_url: URL, tmp_path: Path, customer: Account, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable = "redis://127.0.0.1:1/0"
    async with client_with(database_url, tmp_path, redis_url=unreachable) as client:
        started = time.monotonic()
        response = await client.post("/login", json=_login(customer))
        assert response.status_code == 200
        assert time.monotonic() - started < 5
    assert "rate-limit store unavailable" in caplog.text


def test_a_malformed_rate_is_a_configuration_error(database_url: URL, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not a rate"):
        make_settings(database_url, tmp_path, rate_limit_login_per_ip="lots")


@pytest.fixture
def servers(
    database_url: URL, tmp_path: Path, redis_url: str, redis_prefix: str
) -> Iterator[list[str]]:
    shared = {"REDIS_URL": redis_url, "RATE_LIMIT_PREFIX": redis_prefix}
    with running_servers(2, database_url, tmp_path, **shared) as urls:
        yield urls


@pytest.mark.slow
async def test_two_server_processes_sharing_redis_share_one_budget(
    servers: list[str], customer: Account
) -> None:
    statuses: list[Any] = []
    async with httpx.AsyncClient() as client:
        for n in range(11):
            url = servers[n % 2]
            response = await client.post(f"{url}/login", json=_login(customer))
            statuses.append(response.status_code)
        assert statuses == [200] * 10 + [429]
        _assert_limited(await client.post(f"{servers[1]}/login", json=_login(customer)), 10)
