"""Measurements against a running server: scenarios with repeats, and the special load runs."""

from __future__ import annotations

import asyncio
import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import loadgen
from common import ACCOUNTS, log
from dataset import Targets, restore, watermark
from loadgen import Load, WrkResult
from scenarios import BY_NAME, Scenario
from server import Server

from ticketdesk.auth.security import PASSWORD_HASHER


@dataclass(frozen=True)
class Plan:
    connections: int
    threads: int
    duration_s: int
    warmup_s: int
    timeout_s: int
    repeat: int

    def load(self, connections: int | None = None, duration_s: int | None = None) -> Load:
        return Load(
            connections=connections or self.connections,
            duration_s=duration_s or self.duration_s,
            threads=self.threads,
            timeout_s=self.timeout_s,
        )


def login_all(server: Server) -> dict[str, str]:
    return {role: server.login(account.email) for role, account in ACCOUNTS.items()}


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3) if values else 0.0


def median_of(values: list[float | None]) -> float | None:
    """The median of the values that were measured; None when none was."""
    known = [value for value in values if value is not None]
    return median(known) if known else None


def summarize(runs: list[WrkResult]) -> dict[str, object]:
    """Medians over the measured runs; errors and statuses summed over all of them."""
    statuses: dict[str, int] = {}
    for run in runs:
        for code, count in run.statuses.items():
            statuses[code] = statuses.get(code, 0) + count
    return {
        "rps": median([r.rps for r in runs]),
        "p50_ms": median([r.p50_ms for r in runs]),
        "p99_ms": median([r.p99_ms for r in runs]),
        "server_us_per_req": median_of([r.cpu_us("server_us_per_req") for r in runs]),
        "pg_us_per_req": median_of([r.cpu_us("pg_us_per_req") for r in runs]),
        "errors": sum(r.errors for r in runs),
        "statuses": statuses,
    }


def cleaned(
    server: Server, scenario: Scenario, targets: Targets, action: Callable[[], WrkResult]
) -> WrkResult:
    """Run the action; for a write scenario, remove what it added afterwards."""
    if not scenario.writes:
        return action()
    mark = asyncio.run(watermark(targets.post_ticket))
    try:
        return action()
    finally:
        server.settle()
        removed = asyncio.run(restore(mark))
        log(f"  removed {removed} rows written by {scenario.name}")


def describe(result: WrkResult) -> str:
    return (
        f"{result.rps:8.1f} req/s  p50 {result.p50_ms:7.1f} ms  p99 {result.p99_ms:7.1f} ms  "
        f"errors {result.errors}{cpu_text(result)}"
    )


def cpu_text(result: WrkResult) -> str:
    if result.cpu is None:
        return ""
    server, pg = result.cpu_us("server_us_per_req"), result.cpu_us("pg_us_per_req")
    server_text = "-" if server is None else f"{server:.0f}"
    pg_text = "-" if pg is None else f"{pg:.0f}"
    return f"  CPU µs/req server {server_text} PG {pg_text}"


def measure_scenario(
    server: Server, scenario: Scenario, targets: Targets, tokens: dict[str, str], plan: Plan
) -> dict[str, Any]:
    """A warm-up run, then `plan.repeat` measured runs at the plan's connections."""
    request = scenario.request(targets, tokens)

    connections = scenario.connections or plan.connections

    def one(duration_s: int) -> WrkResult:
        load = plan.load(connections=connections, duration_s=duration_s)
        server.settle()
        return cleaned(
            server,
            scenario,
            targets,
            lambda: loadgen.run(server.base_url, request, load, server.pid),
        )

    log(f"{scenario.letter}) {scenario.name}: {scenario.method} {request.path}")
    warmup = one(plan.warmup_s) if plan.warmup_s > 0 else None
    runs = []
    for number in range(1, plan.repeat + 1):
        runs.append(one(plan.duration_s))
        log(f"  run {number}: {describe(runs[-1])}")
    return {
        "title": scenario.title,
        "path": request.path,
        "connections": connections,
        "warmup": warmup.to_json() if warmup else None,
        "runs": [run.to_json() for run in runs],
        "median": summarize(runs),
    }


def high_concurrency(
    server: Server,
    scenarios: list[Scenario],
    targets: Targets,
    tokens: dict[str, str],
    plan: Plan,
    connections: int,
) -> dict[str, object]:
    """One run per read scenario at many connections: do errors or timeouts appear?"""
    results: dict[str, object] = {}
    log(f"read scenarios at {connections} connections")
    for scenario in scenarios:
        request = scenario.request(targets, tokens)
        server.settle()
        load = plan.load(connections=connections)
        result = loadgen.run(server.base_url, request, load, server.pid)
        log(f"  {scenario.name}: {describe(result)}")
        results[scenario.name] = result.to_json()
    return {"connections": connections, "scenarios": results}


def login_flood(
    server: Server,
    targets: Targets,
    tokens: dict[str, str],
    plan: Plan,
    probe_connections: int,
    flood_connections: int,
) -> dict[str, object]:
    """Single-ticket reads alone, then while many clients log in at once."""
    probe = BY_NAME["ticket_read"].request(targets, tokens)
    login = BY_NAME["login"].request(targets, tokens)
    probe_load = plan.load(connections=probe_connections)
    flood_load = Load(flood_connections, plan.duration_s, plan.threads, timeout_s=30)
    log(f"login flood: ticket reads at {probe_connections} connections, quiet")
    server.settle()
    quiet = loadgen.run(server.base_url, probe, probe_load, server.pid)
    log(f"  quiet: {describe(quiet)}")
    log(f"  with {flood_connections} connections logging in")
    server.settle()
    flood = loadgen.start(server.base_url, login, flood_load)
    # Two wrk runs at once: the CPU could not be told apart, so none is measured.
    during = loadgen.run(server.base_url, probe, probe_load, with_cpu=False)
    logins = loadgen.collect(flood)
    log(f"  reads during the flood: {describe(during)}")
    log(f"  logins during the flood: {describe(logins)}")
    return {
        "probe_connections": probe_connections,
        "flood_connections": flood_connections,
        "quiet": quiet.to_json(),
        "during_flood": during.to_json(),
        "logins": logins.to_json(),
        "p99_ratio": round(during.p99_ms / quiet.p99_ms, 2) if quiet.p99_ms else None,
    }


def hash_ceiling(repeat: int, verifications: int = 20) -> dict[str, Any]:
    """The service's own argon2id verification, timed on one thread, `repeat` times."""
    stored = PASSWORD_HASHER.hash("bench-password")
    runs_ms = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(verifications):
            PASSWORD_HASHER.verify(stored, "bench-password")
        runs_ms.append((time.perf_counter() - started) / verifications * 1000)
    median_ms = statistics.median(runs_ms)
    cores = os.cpu_count() or 1
    return {
        "cores": cores,
        "runs_ms": [round(ms, 2) for ms in runs_ms],
        "median_ms": round(median_ms, 2),
        "logins_per_s": round(cores / (median_ms / 1000), 1),
        # What one thread per core verifies in fact: they share caches and memory bandwidth.
        "parallel_per_s": round(_parallel_verifications(stored, cores), 1),
        "parameters": {
            "memory_kib": PASSWORD_HASHER.memory_cost,
            "time_cost": PASSWORD_HASHER.time_cost,
            "parallelism": PASSWORD_HASHER.parallelism,
        },
    }


def _parallel_verifications(stored: str, threads: int, seconds: float = 5.0) -> float:
    counts = [0] * threads
    stop = time.perf_counter() + seconds

    def verify(slot: int) -> None:
        while time.perf_counter() < stop:
            PASSWORD_HASHER.verify(stored, "bench-password")
            counts[slot] += 1

    workers = [threading.Thread(target=verify, args=(slot,)) for slot in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts) / seconds
