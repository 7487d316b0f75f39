"""serve's supervisor starts a new worker process as soon as one dies, whatever the dead one
was doing: the service is never left a worker short for long."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import JWT_KEY
from throwaway_postgres import free_port

pytestmark = pytest.mark.slow

SERVE_PORTS = range(8700, 8750)
REPLACED_WITHIN_S = 10.0  # the supervisor's health check waits up to 30 s for an answer
WORKERS = 2


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in command:
            found.append(int(entry.name))
    return sorted(found)


def _workers_besides(server: subprocess.Popen[bytes], gone: set[int], within: float) -> list[int]:
    """The supervisor's worker processes once there are WORKERS of them, none of `gone`."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        workers = _children(server.pid)
        if len(workers) == WORKERS and not gone & set(workers):
            return workers
        time.sleep(0.05)
    raise AssertionError(f"workers after {within} s: {_children(server.pid)}, gone: {gone}")


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _answering(port: int) -> None:
    """Until the service answers (a loaded machine may take a moment); at most a minute."""
    deadline = time.monotonic() + 60
    while not _answers(port):
        assert time.monotonic() < deadline, "the service stopped answering"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def serving(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """`ticketdesk serve` with two workers on SQLite: the supervisor, and its port."""
    tmp_path = tmp_path_factory.mktemp("supervisor")
    port = free_port(SERVE_PORTS)
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_URL", "DB_", "JWT_", "SERVER_", "SHUTDOWN_"))
    }
    environment.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'supervisor.db'}", JWT_KEY=JWT_KEY, LOG_LEVEL="info"
    )
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "ticketdesk", "serve", "--workers", str(WORKERS), "--port",
         str(port)],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=environment,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (_answers(port) and len(_children(server.pid)) == WORKERS):
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield server, port
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        for orphan in _children(server.pid):
            os.kill(orphan, signal.SIGKILL)
        log.close()


def test_a_killed_worker_is_replaced(serving: tuple[subprocess.Popen[bytes], int]) -> None:
    server, port = serving
    victim = _children(server.pid)[-1]
    os.kill(victim, signal.SIGKILL)
    workers = _workers_besides(server, {victim}, within=REPLACED_WITHIN_S)
    assert victim not in workers
    _answering(port)


def test_a_worker_killed_while_the_supervisor_waits_on_its_health_check_is_replaced_at_once(
    serving: tuple[subprocess.Popen[bytes], int],
) -> None:
    # A stopped worker cannot answer the health check the supervisor sends every half
    # second; the supervisor waits for its answer, and the worker dies meanwhile (as one
    # too busy to answer and then killed by the OOM killer would).
    server, port = serving
    victim = _children(server.pid)[-1]
    os.kill(victim, signal.SIGSTOP)
    time.sleep(2)
    os.kill(victim, signal.SIGKILL)
    workers = _workers_besides(server, {victim}, within=REPLACED_WITHIN_S)
    assert victim not in workers
    _answering(port)
