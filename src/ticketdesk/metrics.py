"""What the service counts for Prometheus (served by GET /metrics, `system.py`).

`ticketdesk serve` runs several worker processes: each writes its counts to memory-mapped
files in PROMETHEUS_MULTIPROC_DIR (set by the command before the workers start), and a
scrape of any worker reads them all. Without it (tests, one process), the counts live in
this process's registry.
"""

from __future__ import annotations

import os
import resource
from functools import cache

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter(
    "ticketdesk_http_requests_total",
    "Requests answered, by method, route template and status",
    ["method", "route", "status"],
)
DURATION = Histogram(
    "ticketdesk_http_request_duration_seconds",
    "Time from a request's arrival to its answer, by method and route template",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
POOL_IN_USE = Gauge(
    "ticketdesk_db_connections_in_use",
    "Database connections lent to requests and jobs, all processes together",
    multiprocess_mode="livesum",
)
POOL_WAITING = Gauge(
    "ticketdesk_db_connections_waiting",
    "Requests waiting for a free database connection (PostgreSQL), all processes together",
    multiprocess_mode="livesum",
)
RATE_LIMITED = Counter(
    "ticketdesk_rate_limit_rejections_total", "Requests refused with 429, by rule", ["rule"]
)
JOB_FAILURES = Counter(
    "ticketdesk_job_failures_total",
    "Failed job attempts, by kind, and whether the job was given up",
    ["kind", "final"],
)
MEMORY = Gauge(
    "ticketdesk_process_resident_memory_bytes",
    "Resident memory of each process, by pid",
    multiprocess_mode="liveall",
)


@cache
def _requests(method: str, route: str, status: int) -> Counter:
    return REQUESTS.labels(method, route, str(status))


@cache
def _duration(method: str, route: str) -> Histogram:
    return DURATION.labels(method, route)


def record_request(method: str, route: str, status: int, seconds: float) -> None:
    """One answered request. Labelled children are kept (their lookup is the costly part);
    routes are templates, so there are only so many of them."""
    _requests(method, route, status).inc()
    _duration(method, route).observe(seconds)


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def record_memory() -> None:
    """This process's resident memory now."""
    try:
        with open("/proc/self/statm") as statm:
            resident = int(statm.read().split()[1]) * _PAGE_SIZE
    except OSError:  # not Linux: the peak is what there is
        resident = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    MEMORY.set(resident)


JOB_STATES = ("queued", "running", "failed", "done")


def queue_registry(
    counts: dict[str, int], lanes: dict[str, dict[str, int]], endpoints: dict[str, int]
) -> CollectorRegistry:
    """The delivery queue, as the database has it now (the same from every process): jobs by
    state; each lane's (kind's) queued and running jobs; webhook endpoints by state."""
    registry = CollectorRegistry()
    jobs = Gauge(
        "ticketdesk_jobs", "Jobs (mail, webhook calls) by state", ["state"], registry=registry
    )
    for state in JOB_STATES:
        jobs.labels(state).set(counts.get(state, 0))
    lane = Gauge(
        "ticketdesk_lane_jobs",
        "Unfinished jobs of each lane (mail, webhook), queued or running",
        ["lane", "state"],
        registry=registry,
    )
    for kind, states in lanes.items():
        for state, count in states.items():
            lane.labels(kind, state).set(count)
    webhooks = Gauge(
        "ticketdesk_webhook_endpoints",
        "Webhook endpoints: active, paused after failing, disabled",
        ["state"],
        registry=registry,
    )
    for state, count in endpoints.items():
        webhooks.labels(state).set(count)
    return registry


def is_multiprocess() -> bool:
    return MULTIPROCESS_DIR in os.environ


def exposition(extra: CollectorRegistry | None = None) -> bytes:
    """Every process's counts, in Prometheus's text format, and `extra` after them."""
    record_memory()
    if is_multiprocess():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    return text + (generate_latest(extra) if extra is not None else b"")


def process_ended() -> None:
    """This worker is stopping: its live gauges leave the sums."""
    if is_multiprocess():
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
