"""The live event stream: Server-Sent Events from every server process, resumable."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import URL

from conftest import Account, make_settings, running_servers
from ticketdesk.db import open_database
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


async def test_a_quiet_stream_beats_until_its_follower_may_no_longer_follow(
    database_url: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream, "HEARTBEAT_S", 0.2)
    database = await open_database(make_settings(database_url, tmp_path))
    answers = iter([True, True, False])

    async def still_allowed() -> bool:
        return next(answers)

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
    assert seen == [stream.HEARTBEAT, stream.HEARTBEAT]
