"""The raw-PostgreSQL ceiling: a scenario's captured statements replayed by pgbench."""

from __future__ import annotations

import re
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from common import BENCH_DB, PG_HOST, PG_PORT, PG_USER, PGBENCH_DIR

DEFINE = re.compile(r"^-- define (\w+)=(.*)$")
FIGURES = {
    "tps": re.compile(r"^tps = ([\d.]+) \(without initial connection time\)", re.MULTILINE),
    "latency_ms": re.compile(r"^latency average = ([\d.]+) ms", re.MULTILINE),
    "transactions": re.compile(r"^number of transactions actually processed: (\d+)", re.MULTILINE),
    "failed": re.compile(r"^number of failed transactions: (\d+)", re.MULTILINE),
}


@dataclass
class PgbenchResult:
    tps: float
    latency_ms: float
    transactions: int
    failed: int

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def script_path(name: str, directory: Path = PGBENCH_DIR) -> Path:
    return directory / f"{name}.sql"


def defines(script: Path) -> list[str]:
    """The script's `-- define name=value` lines as pgbench -D options."""
    options = []
    for line in script.read_text().splitlines():
        match = DEFINE.match(line)
        if match:
            options += ["-D", f"{match[1]}={match[2]}"]
    return options


def command(script: Path, connections: int, duration_s: int, threads: int = 2) -> list[str]:
    return [
        "pgbench",
        "-n",
        "-M",
        "prepared",
        "-c",
        str(connections),
        "-j",
        str(max(1, min(threads, connections))),
        "-T",
        str(duration_s),
        "-h",
        PG_HOST,
        "-p",
        str(PG_PORT),
        "-U",
        PG_USER,
        "-f",
        str(script),
        *defines(script),
        BENCH_DB,
    ]


def parse(output: str) -> PgbenchResult:
    found = {}
    for key, pattern in FIGURES.items():
        match = pattern.search(output)
        found[key] = match[1] if match else "0"
    return PgbenchResult(
        tps=round(float(found["tps"]), 1),
        latency_ms=float(found["latency_ms"]),
        transactions=int(found["transactions"]),
        failed=int(found["failed"]),
    )


def run(script: Path, connections: int, duration_s: int) -> PgbenchResult:
    done = subprocess.run(
        command(script, connections, duration_s), capture_output=True, text=True, check=False
    )
    if done.returncode != 0 or "tps = " not in done.stdout:
        raise RuntimeError(f"pgbench {script.name} failed: {done.stderr.strip()[-2000:]}")
    return parse(done.stdout)
