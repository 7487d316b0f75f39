"""CPU time per request: the server's process tree and PostgreSQL's processes, from /proc.

A process's time is utime + stime from /proc/<pid>/stat, plus cutime + cstime: the time of
its children that have exited and been reaped. A PostgreSQL backend that ends during a run
(a client that closes its connection) so moves its time into the postmaster's cutime/cstime
instead of disappearing, and the sum over the living processes stays continuous.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from server import descendants

CLK_TCK = os.sysconf("SC_CLK_TCK")
POSTGRES_COMM = "postgres"


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name: [0] is field 3 (state)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def process_ticks(pid: int) -> int:
    """utime + stime + cutime + cstime (fields 14-17) of one process, in clock ticks."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0
    return sum(int(value) for value in fields[11:15])


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def postgres_pids() -> list[int]:
    """Every process whose name starts with "postgres": the postmaster and its children."""
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and _comm(int(entry.name)).startswith(POSTGRES_COMM)
    ]


def tree_ticks(root: int) -> int:
    return sum(process_ticks(pid) for pid in [root, *descendants(root)])


@dataclass(frozen=True)
class Sample:
    server_ticks: int | None  # None: no server pid known
    pg_ticks: int


def sample(server_pid: int | None) -> Sample:
    return Sample(
        server_ticks=tree_ticks(server_pid) if server_pid else None,
        pg_ticks=sum(process_ticks(pid) for pid in postgres_pids()),
    )


def per_request(before: Sample, after: Sample, requests: int) -> dict[str, float | None]:
    """CPU µs per completed request of the server tree and of PostgreSQL over one run."""

    def us(ticks: int) -> float:
        return round(ticks / CLK_TCK * 1e6 / requests, 1)

    server = None
    if before.server_ticks is not None and after.server_ticks is not None:
        server = after.server_ticks - before.server_ticks
    pg = after.pg_ticks - before.pg_ticks
    return {
        "server_cpu_s": round(server / CLK_TCK, 2) if server is not None else None,
        "pg_cpu_s": round(pg / CLK_TCK, 2),
        "server_us_per_req": us(server) if server is not None and requests else None,
        "pg_us_per_req": us(pg) if requests else None,
    }
