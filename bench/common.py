"""Shared settings of the benchmark: where things are, the bench database, the known accounts."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
VENV_BIN = REPO_DIR / ".venv" / "bin"
TICKETDESK = VENV_BIN / "ticketdesk"
LUA_DIR = BENCH_DIR / "lua"
PGBENCH_DIR = BENCH_DIR / "pgbench"
RESULTS_DIR = BENCH_DIR / "results"

PG_HOST = os.environ.get("BENCH_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BENCH_PG_PORT", "5432"))
PG_USER = os.environ.get("BENCH_PG_USER", "postgres")
BENCH_DB = "ticketdesk_bench"
# Connected to only to drop and create the bench database.
MAINTENANCE_DB = "template1"

PASSWORD = "bench-password-2718"
EMAIL_DOMAIN = "bench.ticketdesk.io"


@dataclass(frozen=True)
class Account:
    role: str
    user_id: int
    email: str


SUPERUSER = Account("superuser", 1, f"admin@{EMAIL_DOMAIN}")
STAFF = Account("staff", 2, f"staff@{EMAIL_DOMAIN}")
CUSTOMER = Account("customer", 3, f"customer@{EMAIL_DOMAIN}")
ACCOUNTS = {account.role: account for account in (SUPERUSER, STAFF, CUSTOMER)}


def dsn(database: str = BENCH_DB) -> str:
    """A libpq-style URL, as asyncpg takes it."""
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


def app_database_url() -> str:
    """DATABASE_URL for the service: it picks the async driver itself."""
    return dsn(BENCH_DB)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def human(count: float) -> str:
    """1234567 -> '1.23M'."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(count) >= limit:
            return f"{count / limit:.2f}{suffix}"
    return f"{count:.0f}"


def duration_text(seconds: float) -> str:
    seconds = max(0, int(seconds))
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


class Progress:
    """A one-line text progress bar on stderr: done/total, rate, ETA."""

    WIDTH = 30

    def __init__(self, label: str, total: int, unit: str = "rows") -> None:
        self.label = label
        self.total = max(total, 1)
        self.unit = unit
        self.done = 0
        self.started = time.monotonic()
        self._last_draw = 0.0

    def advance(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._last_draw >= 0.2 or self.done >= self.total:
            self._last_draw = now
            self._draw(now)

    def finish(self) -> float:
        elapsed = time.monotonic() - self.started
        self._draw(time.monotonic())
        sys.stderr.write("\n")
        sys.stderr.flush()
        return elapsed

    def _draw(self, now: float) -> None:
        elapsed = max(now - self.started, 1e-6)
        share = min(self.done / self.total, 1.0)
        filled = int(share * self.WIDTH)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        line = (
            f"\r{self.label:<10} [{bar}] {share:6.1%} {human(self.done)}/{human(self.total)} "
            f"{self.unit}  {human(rate)} {self.unit}/s  ETA {duration_text(eta)}  "
            f"elapsed {duration_text(elapsed)} "
        )
        sys.stderr.write(line)
        sys.stderr.flush()
