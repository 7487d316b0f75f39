"""What an attacker and a new operator found, each kept from coming back."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import URL

from conftest import STAFF_TOKEN, Account, MakeUser, client_with, open_ticket, running_servers
from ticketdesk.messages.service import PAGE_MAX_BYTES


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


async def test_closed_registration_takes_customers_from_agents_and_the_staff_token_only(
    database_url: URL, tmp_path: Path, make_user: MakeUser
) -> None:
    def body(n: int) -> dict[str, object]:
        return {"email": f"new{n}@example.com", "username": "new", "password": "long enough pw"}

    async with client_with(database_url, tmp_path, registration="closed") as client:
        agent = await make_user("staff")
        customer = await make_user("customer")
        refused = await client.post("/users", json=body(1))
        assert refused.status_code == 403
        assert "registration is closed" in refused.json()["detail"]
        by_customer = await client.post("/users", json=body(2), headers=customer.headers)
        assert by_customer.status_code == 403
        by_agent = await client.post("/users", json=body(3), headers=agent.headers)
        assert by_agent.status_code == 201 and by_agent.json()["is_staff"] is False
        with_token = await client.post(
            "/users", json=body(4), headers={"Authorization": f"Bearer {STAFF_TOKEN}"}
        )
        assert with_token.status_code == 201
        staff = await client.post(
            "/users",
            json={**body(5), "isStaff": True},
            headers={"Authorization": f"Bearer {STAFF_TOKEN}"},
        )
        assert staff.status_code == 201 and staff.json()["is_staff"] is True
        page = await client.get("/app/sign-up")
        # The page stays open to new staff with a key, and says how customers get accounts.
        assert page.status_code == 200 and "opened by the support team" in page.text
        sign_in = await client.get("/")
        assert "/app/sign-up" not in sign_in.text
        posted = await client.post(
            "/app/sign-up", data=body(6), headers={"Origin": "http://testserver"}
        )
        assert posted.status_code == 403
    listed = [f"new{n}@example.com" for n in (3, 4, 5)]
    async with client_with(database_url, tmp_path) as open_client:
        users_now = await open_client.get("/users?limit=100", headers=agent.headers)
        emails = {u["email"] for u in users_now.json()}
        assert set(listed) <= emails and not {"new1@example.com", "new2@example.com"} & emails
        assert (await open_client.post("/users", json=body(7))).status_code == 201


async def test_repeated_filters_build_one_statement_and_the_cache_is_bounded(
    client: httpx.AsyncClient, customer: Account
) -> None:
    from ticketdesk.tickets import repository

    await client.get("/tickets?status=pending", headers=customer.headers)
    before = repository.ticket_page_statement.cache_info()
    for repeats in range(1, 80):
        query = "&".join(["status=pending"] * repeats)
        response = await client.get(f"/tickets?{query}", headers=customer.headers)
        assert response.status_code == 200
    after = repository.ticket_page_statement.cache_info()
    assert after.currsize == before.currsize  # every count of repeats: the same statement
    assert after.maxsize is not None and after.maxsize <= 512


async def test_a_page_of_long_messages_ends_by_its_bytes_and_the_link_goes_on(
    client: httpx.AsyncClient, customer: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    long_text = "x" * 900_000  # within MAX_BODY_BYTES, as JSON
    for n in range(12):
        posted = await client.post(
            f"/tickets/{ticket_id}/messages",
            json={"text": f"{n} {long_text}"},
            headers=customer.headers,
        )
        assert posted.status_code == 201
    url: str | None = f"/tickets/{ticket_id}/messages?limit=1000"
    seen: list[int] = []
    pages = 0
    while url is not None:
        response = await client.get(url, headers=customer.headers)
        assert response.status_code == 200
        assert len(response.content) < PAGE_MAX_BYTES + 1_000_000
        seen += [message["id"] for message in response.json()]
        pages += 1
        link = response.headers.get("Link")
        url = link[1:].split(">")[0] if link else None
    assert pages >= 3
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 13


@contextmanager
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never says a word (a hung Redis)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


async def test_a_silent_redis_costs_a_login_one_deadline_not_one_per_check(
    database_url: URL, tmp_path: Path, customer: Account, caplog: pytest.LogCaptureFixture
) -> None:
    """A login makes three checks of the store (and a failed one a fourth): a store that
    never answers is waited on once a request, for the one deadline they share; the checks
    after it do not wait again (it was 0.5 s each)."""
    waited = "rate-limit store unavailable (TimeoutError)"
    skipped = "rate-limit store unavailable (no time left)"
    with silent_server() as port:
        async with client_with(
            database_url, tmp_path, redis_url=f"redis://127.0.0.1:{port}/0"
        ) as client:
            body = {"email": customer.email, "password": customer.password}
            caplog.clear()
            login = await client.post("/login", json=body)
            assert login.status_code == 200  # fail open: the store is away, not the service
            lines = [record.getMessage() for record in caplog.records]
            assert sum(waited in line for line in lines) == 1
            assert sum(skipped in line for line in lines) == 2  # per account, failures
            caplog.clear()
            wrong = await client.post("/login", json={**body, "password": "wrong password"})
            assert wrong.status_code == 404
            lines = [record.getMessage() for record in caplog.records]
            assert sum(waited in line for line in lines) == 1
            assert sum(skipped in line for line in lines) == 3  # and the failure recorded


def _exchange(port: int, head: bytes, *, wait_s: float = 10.0) -> bytes:
    """Send `head` on a new connection; everything the server says until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as conn:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            conn.sendall(head)
        received = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := conn.recv(65536):
                received += chunk
        return received


def _one_response(conn: socket.socket) -> bytes:
    """One whole response on a kept-alive connection: its head, then Content-Length bytes."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += conn.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: (\d+)", head)[1])  # type: ignore[index]
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


@pytest.mark.slow
@pytest.mark.postgresql_only
def test_oversized_many_or_slow_request_heads_are_refused_by_the_server(
    database_url: URL, tmp_path: Path
) -> None:
    with running_servers(1, database_url, tmp_path, HEADER_TIMEOUT="1") as (url,):
        port = int(url.rsplit(":", 1)[1])
        big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n"
        started = time.monotonic()
        answer = _exchange(port, big)
        assert answer.startswith(b"HTTP/1.1 431 ")
        assert time.monotonic() - started < 2
        many = (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
            + b"".join(f"X-H{n}: 1\r\n".encode() for n in range(150))
            + b"\r\n"
        )
        assert _exchange(port, many).startswith(b"HTTP/1.1 431 ")
        # A head that never ends: the connection is closed, without an answer.
        started = time.monotonic()
        assert _exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", wait_s=10) == b""
        assert time.monotonic() - started < 5
        # A connection that says nothing at all is closed as well.
        assert _exchange(port, b"", wait_s=10) == b""
        # Within the limits, the same server answers (keep-alive included).
        ok = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Fine: " + b"a" * 8_000 + b"\r\n\r\n"
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            for _ in range(2):
                conn.sendall(ok)
                assert _one_response(conn).startswith(b"HTTP/1.1 200 ")
        assert httpx.get(f"{url}/healthz").status_code == 200
