"""GET /metrics: Prometheus's text format, behind METRICS_TOKEN, summed over every worker."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import insert
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import JWT_KEY, Account, MakeUser, _free_port, client_with, open_ticket
from ticketdesk.models import jobs, utcnow, webhooks
from ticketdesk.webhooks import delivery

TOKEN = "a-metrics-token-for-the-tests"
SCRAPER = {"Authorization": f"Bearer {TOKEN}"}


def value(text: str, name: str, **labels: str) -> float:
    """The sample of `name` with exactly these labels (0 if there is none)."""
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match:
            found = dict(re.findall(r'(\w+)="([^"]*)"', match[1] or ""))
            found.pop("pid", None)
            if found == labels:
                return float(match[2])
    return 0.0


async def test_metrics_are_off_without_a_token_and_closed_to_others(
    client: httpx.AsyncClient, staff: Account
) -> None:
    assert (await client.get("/metrics")).status_code == 404
    assert (await client.get("/metrics", headers=SCRAPER)).status_code == 404


async def test_metrics_count_requests_by_route_and_what_else_an_operator_watches(
    database_url: URL, tmp_path: Path, make_user: MakeUser
) -> None:
    async with client_with(
        database_url, tmp_path, metrics_token=TOKEN, rate_limit_writes_per_user="2/minute"
    ) as client:
        customer = await make_user("customer")
        assert (await client.get("/metrics")).status_code == 401
        assert (await client.get("/metrics", headers=customer.headers)).status_code == 401
        before = (await client.get("/metrics", headers=SCRAPER)).text
        ticket_id = await open_ticket(client, customer)
        for _ in range(3):
            await client.get(f"/tickets/{ticket_id}", headers=customer.headers)
        await client.get("/no/such/path")
        for _ in range(2):
            await client.post(
                "/tickets", json={"topic": "t", "text": "x"}, headers=customer.headers
            )
        scraped = await client.get("/metrics", headers=SCRAPER)
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    route = {"method": "GET", "route": "/tickets/{ticket_id}", "status": "200"}
    grown = value(text, "ticketdesk_http_requests_total", **route) - value(
        before, "ticketdesk_http_requests_total", **route
    )
    assert grown == 3
    assert (
        value(text, "ticketdesk_http_requests_total", method="GET", route="unmatched", status="404")
        >= 1
    )
    assert (
        value(
            text,
            "ticketdesk_http_request_duration_seconds_count",
            method="GET",
            route="/tickets/{ticket_id}",
        )
        >= 3
    )
    assert value(text, "ticketdesk_rate_limit_rejections_total", rule="writes-user") >= 1
    assert "ticketdesk_db_connections_in_use" in text
    assert "ticketdesk_db_connections_waiting" in text
    assert (
        value(text, "ticketdesk_jobs", state="queued") >= 0
        and 'ticketdesk_jobs{state="done"}' in text
    )
    assert value(text, "ticketdesk_process_resident_memory_bytes") > 10_000_000
    routes = set(re.findall(r'route="([^"]*)"', text))
    assert not any(re.search(r"/\d", route) for route in routes)  # templates, never ids


async def test_metrics_show_the_mail_and_webhook_lanes_and_paused_endpoints(
    database_url: URL, tmp_path: Path, engine: AsyncEngine
) -> None:
    now = utcnow()
    async with engine.begin() as conn:
        hooks = [
            (
                await conn.execute(
                    insert(webhooks)
                    .values(
                        url=f"https://hooks.example.com/{n}",
                        events='["created"]',
                        secret=delivery.new_secret(),
                        created_at=now,
                        **health,
                    )
                    .returning(webhooks.c.id)
                )
            ).scalar_one()
            for n, health in enumerate(
                [
                    {},
                    {"consecutive_failures": 10, "paused_until": now, "paused_reason": "down"},
                    {"is_active": False, "disabled_reason": "gone"},
                ]
            )
        ]
        rows = [("mail", "queued", None)] * 2 + [("mail", "running", None)]
        rows += [("webhook", "queued", hooks[1])] * 5 + [("webhook", "running", hooks[0])]
        rows += [("webhook", "done", hooks[0])] * 3
        await conn.execute(
            insert(jobs),
            [
                {
                    "key": f"{kind}:{n}",
                    "kind": kind,
                    "payload": "{}",
                    "status": status,
                    "attempts": 0,
                    "run_at": now,
                    "created_at": now,
                    "webhook_id": hook,
                }
                for n, (kind, status, hook) in enumerate(rows)
            ],
        )
    async with client_with(database_url, tmp_path, metrics_token=TOKEN) as client:
        text = (await client.get("/metrics", headers=SCRAPER)).text
    assert value(text, "ticketdesk_jobs", state="queued") == 7
    assert value(text, "ticketdesk_jobs", state="done") == 3
    assert value(text, "ticketdesk_lane_jobs", lane="mail", state="queued") == 2
    assert value(text, "ticketdesk_lane_jobs", lane="mail", state="running") == 1
    assert value(text, "ticketdesk_lane_jobs", lane="webhook", state="queued") == 5
    assert value(text, "ticketdesk_lane_jobs", lane="webhook", state="running") == 1
    for state in ("active", "paused", "disabled"):
        assert value(text, "ticketdesk_webhook_endpoints", state=state) == 1


@pytest.mark.slow
@pytest.mark.postgresql_only
def test_metrics_are_summed_over_every_worker_process(database_url: URL, tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url.render_as_string(hide_password=False),
        "JWT_KEY": JWT_KEY,
        "METRICS_TOKEN": TOKEN,
        "LOG_LEVEL": "warning",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ticketdesk",
            "serve",
            "--workers",
            "2",
            "--no-migrate",
            "--port",
            str(port),
        ],
        cwd=tmp_path,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and server.poll() is None
            time.sleep(0.2)
        pids = set()
        for _ in range(40):  # a new connection each: both workers answer some
            assert httpx.get(f"{url}/healthz").status_code == 200
        scrapes = [httpx.get(f"{url}/metrics", headers=SCRAPER).text for _ in range(6)]
        for text in scrapes:
            done = value(
                text, "ticketdesk_http_requests_total", method="GET", route="/healthz", status="200"
            )
            assert done >= 40  # every scrape sees every process's count
            pids |= set(
                re.findall(r'ticketdesk_process_resident_memory_bytes\{pid="(\d+)"\}', text)
            )
        assert len(pids) >= 2
    finally:
        server.terminate()
        server.wait(timeout=30)
