"""The live event stream: Server-Sent Events from every server process, resumable."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import URL

from conftest import (
    JWT_KEY,
    PASSWORD,
    STAFF_TOKEN,
    Account,
    _free_port,
    _wait_until_up,
    make_settings,
    running_servers,
)
from ticketdesk.auth.security import create_token
from ticketdesk.db import Db, open_database
from ticketdesk.events import stream


async def sse(response: httpx.Response) -> AsyncIterator[dict[str, str]]:
    """The stream's messages, each as its fields (a comment as `comment`)."""
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if not line:
            if fields:
                yield fields
            fields = {}
        elif line.startswith(":"):
            yield {"comment": line[1:].strip()}
        else:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


async def next_event(messages: AsyncIterator[dict[str, str]]) -> dict[str, str]:
    async with asyncio.timeout(10):
        async for message in messages:
            if "event" in message:
                return message
    raise AssertionError("the stream ended")


@pytest.mark.slow
async def test_events_from_another_process_arrive_within_a_second_and_resume(
    database_url: URL, tmp_path: Path, customer: Account, staff: Account
) -> None:
    with running_servers(2, database_url, tmp_path, RATE_LIMITS="false") as (here, there):
        async with httpx.AsyncClient(timeout=30) as client:
            url = f"{here}/events/stream"
            async with client.stream("GET", url, headers=staff.headers) as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                messages = sse(response)
                first = await anext(messages)
                assert first == {"retry": "2000"}
                delays = []
                for topic in ("first", "second"):
                    started = time.monotonic()
                    body = {"topic": topic, "text": "x"}
                    created = await client.post(
                        f"{there}/tickets", json=body, headers=customer.headers
                    )
                    assert created.status_code == 201
                    event = await next_event(messages)
                    delays.append(time.monotonic() - started)
                    data: dict[str, Any] = json.loads(event["data"])
                    assert event["event"] == "created" == data["kind"]
                    assert data["ticket_id"] == created.json()["id"]
                    assert event["id"] == str(data["id"])
                    if topic == "first":
                        first_id = data["id"]
                assert max(delays) < 1.0, delays
            resume = {**staff.headers, "Last-Event-ID": str(first_id)}
            async with client.stream("GET", url, headers=resume) as response:
                event = await next_event(sse(response))
                assert json.loads(event["data"])["after"]["topic"] == "second"


@pytest.mark.slow
async def test_the_stream_is_for_staff_with_a_valid_position(
    database_url: URL, tmp_path: Path, customer: Account, staff: Account
) -> None:
    with running_servers(1, database_url, tmp_path) as (url,):
        async with httpx.AsyncClient(timeout=30) as client:
            assert (await client.get(f"{url}/events/stream")).status_code == 401
            response = await client.get(f"{url}/events/stream", headers=customer.headers)
            assert response.status_code == 403
            for position in ("abc", "-1", "1" * 20):
                headers = {**staff.headers, "Last-Event-ID": position}
                response = await client.get(f"{url}/events/stream", headers=headers)
                assert response.status_code == 400, position


async def test_a_quiet_stream_beats_and_ends_at_the_first_check_that_fails(
    database_url: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream, "HEARTBEAT_S", 0.05)
    monkeypatch.setattr(stream, "CHECK_S", 0.1)
    database = await open_database(make_settings(database_url, tmp_path))
    answers = [True, True, False]
    asked: list[bool] = []

    async def still_allowed(db: Db) -> bool:
        asked.append(answers[len(asked)])
        return asked[-1]

    try:
        new_events = stream.NewEvents(database)
        seen = [
            item
            async for item in stream.follow(
                database, new_events, after=10**9, still_allowed=still_allowed
            )
        ]
    finally:
        await database.close(5)
    assert asked == answers  # never asked again after a no
    assert len(seen) >= 2
    assert set(seen) == {stream.HEARTBEAT}


async def test_a_closed_process_ends_its_streams_and_starts_none(
    database_url: URL, tmp_path: Path
) -> None:
    database = await open_database(make_settings(database_url, tmp_path))

    async def still_allowed(db: Db) -> bool:
        return True

    async def drain() -> list[object]:
        follow = stream.follow(database, new_events, after=10**9, still_allowed=still_allowed)
        return [item async for item in follow]

    try:
        new_events = stream.NewEvents(database)
        waiting = asyncio.create_task(drain())
        await asyncio.sleep(0.2)
        assert not waiting.done()
        new_events.close()
        assert await asyncio.wait_for(waiting, timeout=1) == []
        assert await asyncio.wait_for(drain(), timeout=1) == []
    finally:
        await database.close(5)


# A stream lives only as long as its follower's right to it.

BOUND_S = 1.0
"""A stream ends within this of its follower losing the right to it."""
SLACK_S = 0.5
"""What a loaded machine may add to the bound: scheduling, two servers and the test's posts."""
NEW_PASSWORD = "a brand new horse battery"


@dataclass
class Watched:
    """What a stream delivered while a customer kept posting, and when it ended."""

    delivered: list[int] = field(default_factory=list)  # message ids, as the stream sent them
    posted: list[tuple[float, int]] = field(default_factory=list)  # (sent at, message id)
    flowing: asyncio.Event = field(default_factory=asyncio.Event)  # a few events came
    ended: float | None = None


async def _read_until_end(response: httpx.Response, watched: Watched) -> None:
    async for message in sse(response):
        if message.get("event") == "message":
            watched.delivered.append(json.loads(message["data"])["after"]["message_id"])
            if len(watched.delivered) >= 5:
                watched.flowing.set()
    watched.ended = time.monotonic()


async def _keep_posting(
    client: httpx.AsyncClient, url: str, author: Account, ticket_id: int, watched: Watched
) -> None:
    while True:
        sent = time.monotonic()
        response = await client.post(
            f"{url}/tickets/{ticket_id}/messages", json={"text": "more"}, headers=author.headers
        )
        assert response.status_code == 201, response.text
        watched.posted.append((sent, response.json()["id"]))
        await asyncio.sleep(0.02)


async def watch_while_posting(
    here: str,
    there: str,
    follower: dict[str, str],
    customer: Account,
    lose_right: Callable[[httpx.AsyncClient], Awaitable[float]],
) -> tuple[Watched, float]:
    """A stream on `here` while `customer` keeps posting on `there`; `lose_right` takes the
    follower's right away and gives the time (monotonic) it was gone."""
    watched = Watched()
    async with httpx.AsyncClient(timeout=30) as client:
        body = {"topic": "busy", "text": "x"}
        created = await client.post(f"{there}/tickets", json=body, headers=customer.headers)
        assert created.status_code == 201, created.text
        ticket_id = created.json()["id"]
        async with client.stream("GET", f"{here}/events/stream", headers=follower) as response:
            assert response.status_code == 200
            reader = asyncio.create_task(_read_until_end(response, watched))
            poster = asyncio.create_task(_keep_posting(client, there, customer, ticket_id, watched))
            try:
                await asyncio.wait_for(watched.flowing.wait(), timeout=10)
                gone = await lose_right(client)
                try:
                    await asyncio.wait_for(asyncio.shield(reader), timeout=BOUND_S + 4)
                except TimeoutError:
                    raise AssertionError("the stream is still open") from None
                # Posts go on past the bound, so that a late event would have come.
                await asyncio.sleep(max(0.0, gone + BOUND_S + 0.3 - time.monotonic()))
                assert not poster.done(), poster
            finally:
                poster.cancel()
                reader.cancel()
    return watched, gone


def assert_cut_off(watched: Watched, gone: float) -> None:
    assert watched.ended is not None
    assert watched.ended - gone < BOUND_S + SLACK_S, watched.ended - gone
    late = [message_id for sent, message_id in watched.posted if sent > gone + BOUND_S]
    assert late, "no post came after the bound"
    assert not set(late) & set(watched.delivered), "an event committed after the bound came"


async def _logout(client: httpx.AsyncClient, there: str, agent: Account, root: Account) -> int:
    return (await client.post(f"{there}/logout", headers=agent.headers)).status_code


async def _demote(client: httpx.AsyncClient, there: str, agent: Account, root: Account) -> int:
    changed = await client.patch(
        f"{there}/users/{agent.id}", json={"is_staff": False}, headers=root.headers
    )
    return changed.status_code


async def _block(client: httpx.AsyncClient, there: str, agent: Account, root: Account) -> int:
    changed = await client.patch(
        f"{there}/users/{agent.id}", json={"is_active": False}, headers=root.headers
    )
    return changed.status_code


async def _change_password(
    client: httpx.AsyncClient, there: str, agent: Account, root: Account
) -> int:
    body = {"password": NEW_PASSWORD, "current_password": PASSWORD}
    return (await client.patch(f"{there}/users/me", json=body, headers=agent.headers)).status_code


REVOCATIONS: dict[str, tuple[Callable[..., Awaitable[int]], int, int]] = {
    # how, its answer's status, and what the agent's token gets from the API afterwards
    "logout": (_logout, 204, 401),
    "demotion": (_demote, 200, 403),
    "block": (_block, 200, 401),
    "password change": (_change_password, 200, 401),
}


@pytest.mark.slow
@pytest.mark.parametrize("how", list(REVOCATIONS))
async def test_a_stream_ends_within_a_second_of_its_agent_losing_the_right_to_it(
    how: str,
    database_url: URL,
    tmp_path: Path,
    customer: Account,
    staff: Account,
    superuser: Account,
) -> None:
    """With events flowing all along: a busy stream is checked as often as a quiet one. The
    change goes through the other server, so on PostgreSQL the stream's process learns of
    it by notification."""
    revoke, status, afterwards = REVOCATIONS[how]
    with running_servers(2, database_url, tmp_path, RATE_LIMITS="false") as (here, there):

        async def lose_right(client: httpx.AsyncClient) -> float:
            assert await revoke(client, there, staff, superuser) == status
            return time.monotonic()

        watched, gone = await watch_while_posting(here, there, staff.headers, customer, lose_right)
        async with httpx.AsyncClient(timeout=30) as client:
            for url in (here, there):
                answer = await client.get(f"{url}/events", headers=staff.headers)
                assert answer.status_code == afterwards
    assert_cut_off(watched, gone)


@pytest.mark.slow
async def test_a_stream_ends_within_a_second_of_an_operators_demotion(
    database_url: URL, tmp_path: Path, customer: Account, staff: Account
) -> None:
    """`ticketdesk demote`, from a process of its own, as an operator runs it."""
    environment = {
        **os.environ,
        "DATABASE_URL": database_url.render_as_string(hide_password=False),
        "JWT_KEY": JWT_KEY,
    }
    command = [sys.executable, "-m", "ticketdesk", "demote", "--email", staff.email]
    with running_servers(1, database_url, tmp_path, RATE_LIMITS="false") as (url,):

        async def lose_right(client: httpx.AsyncClient) -> float:
            done = await asyncio.to_thread(
                subprocess.run, command, env=environment, capture_output=True, timeout=60
            )
            assert done.returncode == 0, done.stderr
            return time.monotonic()

        watched, gone = await watch_while_posting(url, url, staff.headers, customer, lose_right)
    assert_cut_off(watched, gone)


@pytest.mark.slow
async def test_a_stream_ends_within_a_second_of_its_token_expiring(
    database_url: URL, tmp_path: Path, customer: Account, staff: Account
) -> None:
    with running_servers(1, database_url, tmp_path, RATE_LIMITS="false") as (url,):
        token, claims = create_token(
            user_id=staff.id, version=0, key=JWT_KEY.encode(), lifetime_seconds=3
        )
        expires = time.monotonic() + (claims.expires_at - datetime.now(UTC)).total_seconds()
        follower = {"Authorization": f"Bearer {token}"}

        async def lose_right(client: httpx.AsyncClient) -> float:
            await asyncio.sleep(max(0.0, expires - time.monotonic()))
            return expires

        watched, gone = await watch_while_posting(url, url, follower, customer, lose_right)
    assert_cut_off(watched, gone)


# HEAD, and stopping the server


def _read_head(conn: socket.socket) -> bytes:
    """One response's status line and headers (a HEAD's response has nothing more)."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = conn.recv(4096)
        assert chunk, f"the connection closed: {received!r}"
        received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    assert rest == b"", rest
    return head


@pytest.mark.slow
async def test_head_of_the_stream_answers_its_head_and_the_connection_goes_on(
    database_url: URL, tmp_path: Path, customer: Account, staff: Account
) -> None:
    with running_servers(1, database_url, tmp_path) as (url,):
        async with (
            httpx.AsyncClient(timeout=30) as client,
            client.stream("GET", f"{url}/events/stream", headers=staff.headers) as got,
        ):
            assert got.status_code == 200
            expected = {name: got.headers[name] for name in ("content-type", "cache-control")}
        port = int(url.rpartition(":")[2])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            for headers, status in ((staff.headers, b"200"), (customer.headers, b"403")):
                ((name, value),) = headers.items()
                conn.sendall(
                    b"HEAD /events/stream HTTP/1.1\r\nHost: test\r\n"
                    + f"{name}: {value}\r\n\r\n".encode()
                )
                head = _read_head(conn).decode().lower()
                assert head.startswith(f"http/1.1 {status.decode()} "), head
                if status == b"200":
                    for name, value in expected.items():
                        assert f"\r\n{name}: {value}".lower() in head, head
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := conn.recv(4096):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 "), answer


@contextmanager
def logged_server(database_url: URL, tmp_path: Path, **env: str) -> Iterator[tuple[str, Any]]:
    """`ticketdesk serve` with its log (stderr) in `server.log`: its url and its process."""
    port = _free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": database_url.render_as_string(hide_password=False),
        "JWT_KEY": JWT_KEY,
        "STAFF_TOKEN": STAFF_TOKEN,
        **env,
    }
    command = [sys.executable, "-m", "ticketdesk", "serve", "--workers", "1", "--no-migrate"]
    with (tmp_path / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            env=environment,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_until_up(url, process)
            yield url, process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)


@pytest.mark.slow
async def test_open_streams_end_at_once_when_the_server_stops(
    database_url: URL, tmp_path: Path, staff: Account, superuser: Account
) -> None:
    """Not held for SHUTDOWN_TIMEOUT, nor cancelled at its end with a traceback."""
    opened = asyncio.Semaphore(0)
    ended: list[float] = []

    async def follow(client: httpx.AsyncClient, url: str, follower: Account) -> None:
        async with client.stream("GET", f"{url}/events/stream", headers=follower.headers) as got:
            assert got.status_code == 200
            opened.release()
            async for _ in got.aiter_lines():
                pass
        ended.append(time.monotonic())

    env = {"SHUTDOWN_TIMEOUT": "20", "LOG_LEVEL": "info", "JOBS_IN_SERVER": "false"}
    with logged_server(database_url, tmp_path, **env) as (url, process):
        async with httpx.AsyncClient(timeout=30) as client:
            streams = [asyncio.create_task(follow(client, url, who)) for who in (staff, superuser)]
            for _ in streams:
                await asyncio.wait_for(opened.acquire(), timeout=10)
            stop_sent = time.monotonic()
            process.send_signal(signal.SIGTERM)
            try:
                exit_code = await asyncio.to_thread(process.wait, 5)
            except subprocess.TimeoutExpired:
                raise AssertionError("the server still runs 5 s after SIGTERM") from None
            stopped = time.monotonic()
            await asyncio.wait_for(asyncio.gather(*streams), timeout=5)
    assert exit_code == 0
    assert stopped - stop_sent < 3, stopped - stop_sent
    assert all(at - stop_sent < 2 for at in ended), [at - stop_sent for at in ended]
    log = (tmp_path / "server.log").read_text()
    assert "Application shutdown complete" in log
    assert "Traceback" not in log and "CancelledError" not in log, log
