"""wrk runs: one request shape, fixed connections, and the figures report.lua prints."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import asdict, dataclass
from typing import Any

import cpu
from common import LUA_DIR

RESULT_PREFIX = "BENCH_RESULT "


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: str | None = None
    token: str | None = None


@dataclass(frozen=True)
class Load:
    connections: int
    duration_s: int
    threads: int = 2
    timeout_s: int = 10


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: dict[str, int]
    statuses: dict[str, int]
    loadavg: list[float]  # /proc/loadavg (1, 5, 15 min) as the run ended: a noise hint
    cpu: dict[str, float | None] | None = None  # cpu.per_request() over the run

    def cpu_us(self, key: str) -> float | None:
        """server_us_per_req or pg_us_per_req; None when not measured."""
        return self.cpu.get(key) if self.cpu else None

    @property
    def errors(self) -> int:
        """Answers other than 2xx, plus connect, read, write and timeout errors."""
        return self.non_2xx + sum(self.socket_errors.values())

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "errors": self.errors}


def parse(raw: dict[str, Any]) -> WrkResult:
    latency = raw["latency_us"]
    statuses = {str(code): int(count) for code, count in raw["statuses"].items()}
    duration_s = raw["duration_us"] / 1e6
    requests = int(raw["requests"])

    def ms(key: str) -> float:
        return round(float(latency[key]) / 1000, 3)

    return WrkResult(
        requests=requests,
        duration_s=round(duration_s, 3),
        rps=round(requests / duration_s, 1) if duration_s else 0.0,
        p50_ms=ms("p50"),
        p90_ms=ms("p90"),
        p99_ms=ms("p99"),
        mean_ms=ms("mean"),
        max_ms=ms("max"),
        non_2xx=sum(n for code, n in statuses.items() if not code.startswith("2")),
        socket_errors={key: int(value) for key, value in raw["socket_errors"].items()},
        statuses=statuses,
        loadavg=loadavg(),
    )


def loadavg() -> list[float]:
    with open("/proc/loadavg") as file:
        return [float(value) for value in file.read().split()[:3]]


def command(base_url: str, request: Request, load: Load) -> list[str]:
    threads = max(1, min(load.threads, load.connections))
    return [
        "wrk",
        f"--threads={threads}",
        f"--connections={load.connections}",
        f"--duration={load.duration_s}s",
        f"--timeout={load.timeout_s}s",
        f"--script={LUA_DIR / 'request.lua'}",
        base_url + request.path,
    ]


def start(base_url: str, request: Request, load: Load) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "BENCH_METHOD": request.method,
        "BENCH_BODY": request.body or "",
        "BENCH_TOKEN": request.token or "",
    }
    return subprocess.Popen(
        command(base_url, request, load),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def collect(process: subprocess.Popen[str]) -> WrkResult:
    stdout, stderr = process.communicate()
    for line in stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return parse(json.loads(line[len(RESULT_PREFIX) :]))
    raise RuntimeError(f"wrk printed no result (exit {process.returncode}): {stderr}{stdout}")


def run(
    base_url: str,
    request: Request,
    load: Load,
    server_pid: int | None = None,
    with_cpu: bool = True,
) -> WrkResult:
    """One wrk run; with_cpu adds the CPU per request of the process tree under server_pid
    (when given) and of PostgreSQL, from just before wrk starts to just after it exits."""
    before = cpu.sample(server_pid) if with_cpu else None
    result = collect(start(base_url, request, load))
    if before is not None:
        result.cpu = cpu.per_request(before, cpu.sample(server_pid), result.requests)
    return result
