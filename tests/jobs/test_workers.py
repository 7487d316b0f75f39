"""Real `ticketdesk worker` processes: no job runs twice at once, and a killed one loses none."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import JWT_KEY
from receivers import RawPeer, WebhookReceiver, answers_huge
from ticketdesk.models import jobs, utcnow, webhooks
from ticketdesk.webhooks import delivery

pytestmark = pytest.mark.slow

JOBS = 500


@contextmanager
def workers(
    count: int, database_url: URL, tmp_path: Path, **env: str
) -> Iterator[list[subprocess.Popen[bytes]]]:
    environment = {
        **os.environ,
        "DATABASE_URL": database_url.render_as_string(hide_password=False),
        "JWT_KEY": JWT_KEY,
        "LOG_LEVEL": "warning",
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "JOB_POLL_SECONDS": "0.1",
        "WEBHOOK_CONCURRENCY": "4",
        **env,
    }
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "ticketdesk", "worker"], env=environment, cwd=tmp_path
        )
        for _ in range(count)
    ]
    try:
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            process.wait(timeout=30)


def jobs_command(database_url: URL, tmp_path: Path, *args: str) -> str:
    """What `ticketdesk jobs` prints."""
    return subprocess.run(
        [sys.executable, "-m", "ticketdesk", "jobs", *args],
        env={**os.environ, "DATABASE_URL": database_url.render_as_string(hide_password=False)},
        cwd=tmp_path,
        capture_output=True,
        check=True,
        text=True,
    ).stdout


async def queue_calls(engine: AsyncEngine, receiver: WebhookReceiver) -> None:
    """One endpoint, and JOBS deliveries to it queued (as the dispatcher queues them)."""
    secret = delivery.new_secret()
    receiver.secret = secret
    await queue_calls_to(engine, receiver.url, secret, range(1, JOBS + 1))


async def queue_calls_to(engine: AsyncEngine, url: str, secret: str, events: range) -> None:
    now = utcnow()
    async with engine.begin() as conn:
        webhook_id = (
            await conn.execute(
                insert(webhooks)
                .values(url=url, events='["created"]', secret=secret, created_at=now)
                .returning(webhooks.c.id)
            )
        ).scalar_one()
        await conn.execute(
            insert(jobs),
            [
                {
                    "key": f"webhook:{webhook_id}:{n}",
                    "kind": "webhook",
                    "payload": json.dumps({"body": json.dumps({"n": n})}),
                    "status": "queued",
                    "attempts": 0,
                    "run_at": now,
                    "created_at": now,
                    "event_id": n,
                    "webhook_id": webhook_id,
                }
                for n in events
            ],
        )


async def done_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        count = await conn.scalar(
            select(func.count()).select_from(jobs).where(jobs.c.status == "done")
        )
    return int(count or 0)


async def wait_all_done(engine: AsyncEngine, seconds: float = 90.0, count: int = JOBS) -> None:
    for _ in range(int(seconds / 0.2)):
        if await done_count(engine) == count:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{await done_count(engine)} of {count} jobs done")


async def test_two_workers_send_each_job_exactly_once(
    database_url: URL, tmp_path: Path, engine: AsyncEngine
) -> None:
    # Answers slow enough that the workers' eight slots would all be busy with this endpoint.
    with WebhookReceiver(delay_s=0.01) as receiver:
        await queue_calls(engine, receiver)
        with workers(2, database_url, tmp_path) as processes:
            await wait_all_done(engine)
            assert all(process.poll() is None for process in processes)
    # One endpoint never has more than WEBHOOK_ENDPOINT_CONCURRENCY calls in flight, however
    # many workers and slots there are.
    assert receiver.most_in_flight == 2
    ids = [call.webhook_id for call in receiver.calls]
    assert len(ids) == JOBS
    assert len(set(ids)) == JOBS
    assert set(receiver.attempts.values()) == {1}
    assert all(call.verified for call in receiver.calls)
    async with engine.connect() as conn:
        attempts = (await conn.execute(select(jobs.c.attempts).distinct())).scalars().all()
    assert attempts == [1]
    # What an operator sees of it.
    seen = json.loads(jobs_command(database_url, tmp_path, "--json", "--limit", "3"))
    assert seen["counts"] == {"done": JOBS}
    assert [row["id"] for row in seen["done"]] == [JOBS, JOBS - 1, JOBS - 2]
    assert seen["done"][0]["last_code"] == 204 and seen["failed"] == []
    idle = {"queued": 0, "running": 0}
    assert seen["lanes"] == {"mail": idle, "webhook": idle} and seen["paused"] == []
    table = jobs_command(database_url, tmp_path)
    assert table.startswith(
        f"jobs: 0 queued, 0 running, 0 failed, {JOBS} done\n"
        "lanes: mail 0 queued, 0 running; webhook 0 queued, 0 running\n"
    )


@pytest.mark.parametrize("kill", [signal.SIGKILL])
async def test_a_worker_killed_mid_job_loses_nothing(
    database_url: URL, tmp_path: Path, engine: AsyncEngine, kill: signal.Signals
) -> None:
    # Slow answers: the killed worker certainly has calls in flight.
    with WebhookReceiver(delay_s=0.05) as receiver:
        await queue_calls(engine, receiver)
        lease = {"JOB_LEASE_SECONDS": "7", "WEBHOOK_TIMEOUT": "1", "SMTP_TIMEOUT": "1"}
        with workers(2, database_url, tmp_path, **lease) as (doomed, survivor):
            for _ in range(300):
                if len(receiver.calls) >= JOBS // 5:
                    break
                await asyncio.sleep(0.05)
            doomed.send_signal(kill)
            assert doomed.wait(timeout=10) == -kill
            await wait_all_done(engine)
            assert survivor.poll() is None
    delivered = {call.webhook_id for call in receiver.calls}
    assert len(delivered) == JOBS  # every job, though one worker died holding some
    # At least once: a call the dead worker made but could not record is made again.
    assert max(receiver.attempts.values()) <= 2


HUGE = 256 * 1024 * 1024


def memory_kib(pid: int, field: str) -> int:
    """A field of /proc/<pid>/status in KiB: VmRSS (resident now), VmHWM (its peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


async def test_a_huge_answer_is_not_read_into_the_worker(
    database_url: URL, tmp_path: Path, engine: AsyncEngine
) -> None:
    """Only the status counts: at most 64 KiB of an answer is read, then the call ends."""
    with (
        WebhookReceiver() as receiver,
        RawPeer(answers_huge(HUGE)) as huge,
        workers(1, database_url, tmp_path) as (worker,),
    ):
        # A first call, answered briefly: the worker is up, with all it needs loaded.
        receiver.secret = delivery.new_secret()
        await queue_calls_to(engine, receiver.url, receiver.secret, range(1, 2))
        await wait_all_done(engine, count=1)
        before = memory_kib(worker.pid, "VmHWM")
        await queue_calls_to(engine, huge.url, delivery.new_secret(), range(2, 3))
        await wait_all_done(engine, count=2)
        peak = memory_kib(worker.pid, "VmHWM")
    (connection,) = huge.connections
    assert connection.sent < 32 * 1024 * 1024  # what the socket buffers hold, at most
    assert peak - before < 32 * 1024, (before, peak)  # KiB: the worker's peak barely moved


async def test_the_jobs_command_shows_the_lanes_and_the_paused_endpoints(
    database_url: URL, tmp_path: Path, engine: AsyncEngine
) -> None:
    secret = delivery.new_secret()
    await queue_calls_to(engine, "https://hooks.example.com/down", secret, range(1, 4))
    until = utcnow() + timedelta(minutes=5)
    reason = "10 calls failed in a row; the last: no complete answer within 10 s"
    async with engine.begin() as conn:
        await conn.execute(
            update(webhooks).values(
                consecutive_failures=10, paused_until=until, paused_reason=reason
            )
        )
    seen = json.loads(jobs_command(database_url, tmp_path, "--json"))
    assert seen["lanes"] == {
        "mail": {"queued": 0, "running": 0},
        "webhook": {"queued": 3, "running": 0},
    }
    (paused,) = seen["paused"]
    assert paused["url"] == "https://hooks.example.com/down" and paused["queued"] == 3
    assert paused["consecutive_failures"] == 10 and paused["paused_reason"] == reason
    table = jobs_command(database_url, tmp_path)
    assert "lanes: mail 0 queued, 0 running; webhook 3 queued, 0 running\n" in table
    assert "paused webhook endpoints" in table
    assert until.strftime("%Y-%m-%d %H:%M:%S") in table and reason in table
