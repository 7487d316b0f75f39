"""A PostgreSQL server of the tests' own, in a temporary directory, to stop and start at will.

Outage tests stop the database under a running service; they must never do that to a
shared server. `initdb` and `postgres` refuse to run as root: as root, they run as the
`postgres` OS user, in a directory that user owns.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

from sqlalchemy.engine import URL

PG_BINDIR = Path(os.environ.get("TEST_PG_BINDIR", "/usr/lib/postgresql/15/bin"))
PORTS = range(8750, 8800)
DATABASE = "ticketdesk"
PREFIX = "ticketdesk-pg-"
OWNER_FILE = "owner.pid"  # the test run's process, which removes the server when it ends


def free_port(ports: range) -> int:
    """A port of `ports` nobody listens on now, among this worker's share of them."""
    for port in worker_share(ports):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")


def worker_share(ports: range) -> range:
    """Under pytest-xdist, worker gwN of W takes every W-th port of `ports` from the N-th on.
    Workers probe for free ports at the same moment, and one worker's dead address must not
    become another's server: disjoint shares rule both out."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        return ports
    count = int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    return ports[int(worker.removeprefix("gw")) :: count]


class ThrowawayPostgres:
    def __init__(self, root: Path | None = None) -> None:
        self._as_postgres = os.geteuid() == 0
        if root is None:
            remove_abandoned()
            root = Path(tempfile.mkdtemp(prefix=PREFIX))
            (root / OWNER_FILE).write_text(str(os.getpid()))
            if self._as_postgres:
                owner = pwd.getpwnam("postgres")
                os.chown(root, owner.pw_uid, owner.pw_gid)
        self.root = root
        self.port = free_port(PORTS)
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"

    @property
    def url(self) -> URL:
        return URL.create(
            "postgresql+asyncpg",
            username="postgres",
            host="127.0.0.1",
            port=self.port,
            database=DATABASE,
        )

    def _run(self, program: str, *args: str) -> None:
        command = [str(PG_BINDIR / program), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(
            command, cwd=self.root, capture_output=True, text=True, timeout=60, check=False
        )
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{program} failed: {result.stdout}{result.stderr}{log}")

    def init(self) -> None:
        self._run(
            "initdb",
            "--pgdata",
            str(self.data),
            "--username",
            "postgres",
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--no-sync",
        )
        self.start()
        self._run("createdb", "--host", "127.0.0.1", "--port", str(self.port), DATABASE)

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories="
            " -c fsync=off"  # commits stay synchronous: a stop must not lose one
        )
        self._run(
            "pg_ctl", "--pgdata", str(self.data), "--log", str(self.log), "-o", options,
            "--wait", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """`fast`: sessions are ended and the server stops, as an orderly restart would."""
        self._run("pg_ctl", "--pgdata", str(self.data), "--mode", mode, "--wait", "stop")

    def freeze(self) -> None:
        """Stop the server and its sessions where they are (SIGSTOP): it neither answers nor
        refuses, like a hung machine."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        subprocess.run(["pkill", "-STOP", "-P", str(pid)], check=False)
        os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGCONT)
        subprocess.run(["pkill", "-CONT", "-P", str(pid)], check=False)

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def destroy(self) -> None:
        if self.running():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def remove_abandoned() -> None:
    """Servers left by test runs that were killed before they could remove them."""
    for root in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        try:
            owner = int((root / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        if not _alive(owner):
            with contextlib.suppress(RuntimeError):  # not ours to worry about, then
                ThrowawayPostgres(root).destroy()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
