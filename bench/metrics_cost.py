"""What the metrics cost a request: the counts one request makes, timed in a loop.

Run with the workers' setting (PROMETHEUS_MULTIPROC_DIR: counts in memory-mapped files):
    PROMETHEUS_MULTIPROC_DIR=$(mktemp -d) .venv/bin/python bench/metrics_cost.py
"""

from __future__ import annotations

import os
import statistics
import time

from ticketdesk.metrics import POOL_IN_USE, record_request

ROUNDS = 7
CALLS = 100_000


def per_request_us() -> float:
    started = time.perf_counter()
    for _ in range(CALLS):
        POOL_IN_USE.inc()  # a connection lent...
        POOL_IN_USE.dec()  # ...and given back
        record_request("GET", "/tickets/{ticket_id}", 200, 0.0031)
    return (time.perf_counter() - started) / CALLS * 1e6


def main() -> None:
    mode = "multiprocess" if "PROMETHEUS_MULTIPROC_DIR" in os.environ else "one process"
    figures = [per_request_us() for _ in range(ROUNDS)]
    print(
        f"metrics per request ({mode}): median {statistics.median(figures):.2f} µs, "
        f"min {min(figures):.2f}, max {max(figures):.2f} over {ROUNDS} rounds of {CALLS}"
    )


if __name__ == "__main__":
    main()
