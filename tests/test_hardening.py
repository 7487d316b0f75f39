"""What an attacker and a new operator found, each kept from coming back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from sqlalchemy.engine import URL

from conftest import Account, MakeUser, client_with, open_ticket


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


async def test_links_never_carry_the_clients_host(
    client: httpx.AsyncClient, staff: Account, customer: Account, database_url: URL, tmp_path: Path
) -> None:
    for _ in range(3):
        await open_ticket(client, customer)
    evil = {**staff.headers, "Host": "evil.example"}
    for path in ("/tickets?limit=1", "/events?limit=1"):
        link = (await client.get(path, headers=evil)).headers["Link"]
        assert "evil.example" not in link
        target = link[1:].split(">")[0]
        assert target.startswith("/") and 'rel="next"' in link
        assert (await client.get(target, headers=staff.headers)).status_code == 200
    async with client_with(database_url, tmp_path, public_url="https://help.example.com") as other:
        link = (await other.get("/tickets?limit=1", headers=evil)).headers["Link"]
        assert link.startswith("<https://help.example.com/tickets?limit=1&cursor=")


async def test_an_email_with_spaces_logs_in_as_it_registered(client: httpx.AsyncClient) -> None:
    padded = "  Spacey@Example.com  "
    registered = await client.post(
        "/users", json={"email": padded, "username": "spacey", "password": "long enough pw"}
    )
    assert registered.status_code == 201 and registered.json()["email"] == "spacey@example.com"
    login = await client.post("/login", json={"email": padded, "password": "long enough pw"})
    assert login.status_code == 200


async def test_head_is_answered_wherever_get_is(
    client: httpx.AsyncClient, customer: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    for path in ("/healthz", "/tickets", f"/tickets/{ticket_id}", "/", "/openapi.json"):
        get = await client.get(path, headers=customer.headers)
        head = await client.head(path, headers=customer.headers)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b""
        assert head.headers["content-type"] == get.headers["content-type"]
        assert head.headers["content-length"] == get.headers["content-length"]
    assert (await client.head("/tickets")).status_code == 401
    only_post = await client.head("/login")
    assert only_post.status_code == 405 and only_post.headers["allow"] == "POST"
    allow = (await client.delete("/healthz")).headers["allow"]
    assert allow == "GET, HEAD"
