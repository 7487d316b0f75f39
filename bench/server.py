"""Start the service on the bench database, wait until it is ready, measure it, stop it."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx
from common import BENCH_DIR, CUSTOMER, PASSWORD, RESULTS_DIR, TICKETDESK, app_database_url, log

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


@dataclass
class ServerConfig:
    port: int = 8201
    workers: int = 2
    pool_size: int | None = None  # DB_POOL_SIZE; None: the service's default
    log_level: str = "warning"
    extra_env: dict[str, str] = field(default_factory=dict)


def _environment(config: ServerConfig) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": app_database_url(),
        "JWT_KEY": secrets.token_hex(32),
        "LOG_LEVEL": config.log_level,
        # The load runs measure the service, not its rate limits (thousands of logins a
        # minute from one address and one account would be refused).
        "RATE_LIMITS": "false",
        **config.extra_env,
    }
    if config.pool_size is not None:
        env["DB_POOL_SIZE"] = str(config.pool_size)
    return env


def start_logged(
    command: list[str], cwd: Path, env: dict[str, str], log_path: Path
) -> subprocess.Popen[bytes]:
    """`command` in a process group of its own, its output appended to `log_path` under a
    line saying when and what started."""
    with log_path.open("ab") as log_file:
        log_file.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {command}\n".encode())
        log_file.flush()
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


class Server:
    """`ticketdesk serve` in its own process group; a context manager that always stops it."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.base_url = f"http://127.0.0.1:{config.port}"
        self.log_path: Path = RESULTS_DIR / f"server-{config.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The supervisor's pid: the root of the process tree whose CPU the runs measure."""
        return self.process.pid if self.process is not None else None

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        command = [
            str(TICKETDESK),
            "serve",
            "--port",
            str(self.config.port),
            "--workers",
            str(self.config.workers),
            "--no-migrate",
        ]
        # The bench directory has no .env: only the variables given here apply.
        self.process = start_logged(command, BENCH_DIR, _environment(self.config), self.log_path)
        self._wait_ready()
        log(f"server up on port {self.config.port} with {self.config.workers} worker(s)")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the server exited; see {self.log_path}")
            if self._ready():
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the server was not ready in {READY_TIMEOUT_S:.0f}s")

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def settle(self) -> float:
        """Wait until requests queued by the last run are done; returns the seconds waited."""
        return settle(f"{self.base_url}/healthz")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        pgid = self.process.pid  # its own session: the group id is its pid
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.process.wait()
        self._reap_group(pgid)

    @staticmethod
    def _reap_group(pgid: int) -> None:
        """Workers left in the group after the supervisor exited are killed too."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)

    def memory(self) -> list[dict[str, object]]:
        """Resident memory of the supervisor and every process below it, in KiB."""
        if self.process is None:
            return []
        return [process_memory(pid) for pid in [self.process.pid, *descendants(self.process.pid)]]

    def login(self, email: str = CUSTOMER.email, password: str = PASSWORD) -> str:
        response = httpx.post(
            f"{self.base_url}/login", json={"email": email, "password": password}, timeout=30
        )
        response.raise_for_status()
        token: str = response.json()["token"]
        return token


def settle(url: str, timeout_s: float = 30, fast_s: float = 0.05, in_a_row: int = 5) -> float:
    """Wait until a server has done what the last run queued: the URL answers fast again
    (whatever the status), several times in a row. Returns the seconds waited."""
    started = time.monotonic()
    fast = 0
    while fast < in_a_row and time.monotonic() - started < timeout_s:
        probe_start = time.monotonic()
        try:
            httpx.get(url, timeout=timeout_s)
        except httpx.HTTPError:
            fast = 0
            continue
        fast = fast + 1 if time.monotonic() - probe_start < fast_s else 0
        time.sleep(0.1)
    return time.monotonic() - started


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def descendants(root: int) -> list[int]:
    parents = {
        int(entry.name): _parent_of(int(entry.name))
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit()
    }
    found: list[int] = []
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        children = sorted(pid for pid, ppid in parents.items() if ppid == parent)
        found.extend(children)
        frontier.extend(children)
    return found


def process_memory(pid: int) -> dict[str, object]:
    """VmRSS (now) and VmHWM (peak) from /proc/<pid>/status."""
    info: dict[str, object] = {"pid": pid}
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return info
    info["command"] = cmdline.strip()[:120]
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            info[f"{key.lower()}_kib"] = int(value.split()[0])
    return info
