"""django-helpdesk beside ticketdesk: equivalent browser pages and an API reply, in one run.

    .venv/bin/python bench/run.py --peer django-helpdesk --duration 10     # the comparison
    .venv/bin/python bench/django_helpdesk.py --serve    # only set it up and serve it (Ctrl-C)

What it fetches: from PyPI, with the pip of a virtual environment of its own (`--peer-dir`,
default /tmp/ticketdesk-bench-django-helpdesk, outside the repository), exactly the
packages of `PACKAGES` below: django-helpdesk 2.6.1, Django 5.2.20 (the Django it pulls
in), Django REST framework, its other dependencies as pinned, gunicorn 27.0.1 and
psycopg 3.3.9 (binary). Nothing of it is copied into the repository; the directory is kept
for the next run (a stamp of the pins says whether it is complete) and `--peer-clean`
removes it afterwards.

It writes a minimal Django project there from bench/django_helpdesk/ (settings with DEBUG
off, the help desk, Django's admin and sessions, Django REST framework with session and
basic authentication, mail rendered but not sent), recreates the PostgreSQL database
`helpdesk_bench`, migrates it, loads the comparison's data set through the ORM
(bench/django_helpdesk/load.py) and serves it with gunicorn: `--workers` (2) sync workers,
Django's usual deployment (one request at a time per worker, no keep-alive), each with one
persistent database connection, on 127.0.0.1:8207. ticketdesk runs beside it on
127.0.0.1:8206 on the database `ticketdesk_bench_peer`, recreated, migrated and filled with
the same data set through its API by compare.py's `populate`. Both servers are stopped at
the end, also on errors and Ctrl-C. bench/README.md ("Beside django-helpdesk") says what each
scenario compares.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cpu
import httpx
import loadgen
from common import (
    BENCH_DIR,
    LUA_DIR,
    PASSWORD,
    PG_HOST,
    PG_PORT,
    PG_USER,
    RESULTS_DIR,
    dsn,
    log,
)
from compare import (
    CUSTOMERS,
    MESSAGES_PER_TICKET,
    READER,
    REQUEST_TEXT,
    RESPONSE_TEXT,
    STAFF_EMAIL,
    TICKET_TEXT,
    TICKETS_PER_CUSTOMER,
    TOPIC,
    WRITER,
    Side,
    customer_email,
    populate,
    shape,
)
from compare import TICKETDESK as TICKETDESK_NAME
from compare import login as ticketdesk_login
from generate import migrate, recreate_database
from loadgen import Load, WrkResult
from measure import Plan, describe, summarize
from server import Server, ServerConfig, descendants, process_memory, settle, start_logged

NAME = "django-helpdesk"
PACKAGES = (
    "django-helpdesk==2.6.1",
    "Django==5.2.20",
    "djangorestframework==3.18.3",
    "django-cleanup==9.0.0",
    "django-model-utils==5.0.0",
    "email-reply-parser==0.5.12",
    "Markdown==3.11.4",
    "beautifulsoup4==4.15.0",
    "soupsieve==4.1.4",
    "nh3==0.3.8",
    "oauthlib==4.0.1",
    "requests-oauthlib==2.0.0",
    "requests==2.34.2",
    "certifi==2026.10.19.post1",
    "charset-normalizer==3.5.3",
    "idna==3.21",
    "urllib3==2.8.0",
    "asgiref==3.13.0",
    "sqlparse==0.6.1",
    "typing_extensions==4.16.0",
    "gunicorn==27.0.1",
    "psycopg[binary]==3.3.9",
    "psycopg-binary==3.3.9",
)
"""Everything pip installs, pinned: django-helpdesk and its dependencies as resolved with
Django 5.2 (the release it requires at least), gunicorn and the PostgreSQL driver."""
DEFAULT_DIR = Path("/tmp/ticketdesk-bench-django-helpdesk")
PROJECT_FILES = BENCH_DIR / "django_helpdesk"
HELPDESK_DB = "helpdesk_bench"
PEER_DB = "ticketdesk_bench_peer"
TICKETDESK_PORT = 8206
HELPDESK_PORT = 8207
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
STAFF_USERNAME = "compare-staff"  # as compare.populate registers staff
REPLY_TEXT = "Thanks for your patience: a fix is on its way and should reach you today."


def customer_username(number: int) -> str:
    return f"customer{number:02d}"  # as compare.populate registers customers


# ---- the peer's environment and project ---------------------------------------------------


@dataclass(frozen=True)
class Peer:
    """Where the peer's virtual environment and project live."""

    directory: Path

    @property
    def venv(self) -> Path:
        return self.directory / "venv"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def project(self) -> Path:
        return self.directory / "project"

    @property
    def stamp(self) -> Path:
        return self.venv / "bench-packages.txt"

    def environment(self, secret_key: str = "") -> dict[str, str]:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "helpdesk_site.settings",
            "PYTHONPATH": str(self.project),
            "HELPDESK_BENCH_SECRET_KEY": secret_key or secrets.token_urlsafe(40),
            "HELPDESK_BENCH_DB": HELPDESK_DB,
            "HELPDESK_BENCH_PG_HOST": PG_HOST,
            "HELPDESK_BENCH_PG_PORT": str(PG_PORT),
            "HELPDESK_BENCH_PG_USER": PG_USER,
        }


def install(peer: Peer) -> None:
    """The virtual environment with PACKAGES, unless it is there already."""
    wanted = "\n".join(PACKAGES) + "\n"
    if peer.stamp.exists() and peer.stamp.read_text() == wanted:
        log(f"{NAME}: using the environment in {peer.venv}")
        return
    if peer.directory.resolve().is_relative_to(BENCH_DIR.parent.resolve()):
        raise SystemExit(f"{peer.directory}: the peer's directory must be outside the repository")
    log(f"{NAME}: installing {', '.join(PACKAGES)} into {peer.venv}")
    shutil.rmtree(peer.venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(peer.venv)], check=True)
    pip = [str(peer.python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, *PACKAGES], check=True, stdout=sys.stderr)
    peer.stamp.write_text(wanted)


def write_project(peer: Peer) -> None:
    """helpdesk_site/{settings,urls,wsgi}.py and load.py from bench/django_helpdesk/."""
    package = peer.project / "helpdesk_site"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    for name in ("settings.py", "urls.py", "wsgi.py"):
        shutil.copyfile(PROJECT_FILES / name, package / name)
    shutil.copyfile(PROJECT_FILES / "load.py", peer.project / "load.py")


def django_admin(peer: Peer, *argv: str) -> None:
    command = [str(peer.python), "-m", "django", *argv]
    subprocess.run(command, cwd=peer.project, env=peer.environment(), check=True, stdout=sys.stderr)


def load_spec() -> dict[str, Any]:
    """The comparison's data set (compare.py's shape, addresses, names and texts)."""
    return {
        "password": PASSWORD,
        "staff": {"username": STAFF_USERNAME, "email": STAFF_EMAIL},
        "customers": [
            {"username": customer_username(n), "email": customer_email(n)}
            for n in range(1, CUSTOMERS + 1)
        ],
        "tickets_per_customer": TICKETS_PER_CUSTOMER,
        "messages_per_ticket": MESSAGES_PER_TICKET,
        "topic": TOPIC,
        "ticket_text": TICKET_TEXT,
        "request_text": REQUEST_TEXT,
        "response_text": RESPONSE_TEXT,
    }


@dataclass(frozen=True)
class HelpdeskTargets:
    queue: str
    read_ticket: int  # the reading customer's second ticket, as compare's messages_ticket
    post_ticket: int  # the writing customer's first ticket


def prepare(peer: Peer) -> tuple[HelpdeskTargets, dict[str, Any]]:
    """Install, write the project, recreate and migrate its database, load the data set."""
    started = time.monotonic()
    install(peer)
    write_project(peer)
    asyncio.run(recreate_database(HELPDESK_DB))
    django_admin(peer, "migrate", "--noinput", "--verbosity", "0")
    migrated = time.monotonic()
    done = subprocess.run(
        [str(peer.python), "load.py"],
        cwd=peer.project,
        env=peer.environment(),
        input=json.dumps(load_spec()),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"{NAME}: loading the data set failed:\n{done.stderr}")
    made = json.loads(done.stdout)
    tickets = made["tickets"]
    targets = HelpdeskTargets(
        queue=made["queue"],
        read_ticket=tickets[customer_email(READER)][1],
        post_ticket=tickets[customer_email(WRITER)][0],
    )
    timings = {
        "migrate_s": round(migrated - started, 2),
        "load_s": round(time.monotonic() - migrated, 2),
    }
    log(f"{NAME}: {made['counts']} loaded in {timings['load_s']:.1f}s")
    return targets, {"counts": made["counts"], "timings": timings, "targets": vars(targets)}


class Gunicorn:
    """gunicorn serving the peer in its own process group; a context manager that stops it."""

    def __init__(self, peer: Peer, port: int, workers: int, worker_class: str) -> None:
        self.peer = peer
        self.port = port
        self.workers = workers
        self.worker_class = worker_class
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = RESULTS_DIR / f"server-{port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def __enter__(self) -> Gunicorn:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        command = [
            str(self.peer.venv / "bin" / "gunicorn"),
            "helpdesk_site.wsgi:application",
            f"--bind=127.0.0.1:{self.port}",
            f"--workers={self.workers}",
            f"--worker-class={self.worker_class}",
            "--log-level=warning",
        ]
        self.process = start_logged(
            command, self.peer.project, self.peer.environment(), self.log_path
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        log(f"{NAME}: gunicorn up on port {self.port}, {self.workers} {self.worker_class} workers")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def probe_url(self) -> str:
        return f"{self.base_url}/helpdesk/login/"

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.probe_url, timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn was not ready in {READY_TIMEOUT_S:.0f}s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        pgid = self.process.pid
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


# ---- signing in ----------------------------------------------------------------------------

CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@dataclass(frozen=True)
class DjangoSession:
    sessionid: str
    csrftoken: str

    def headers(self, *, writes: bool = False) -> dict[str, str]:
        found = {"Cookie": f"sessionid={self.sessionid}; csrftoken={self.csrftoken}"}
        if writes:
            found["X-CSRFToken"] = self.csrftoken
        return found


def django_login(base_url: str, username: str) -> DjangoSession:
    """Sign in through the help desk's login form, as a browser does."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        page = client.get("/helpdesk/login/")
        page.raise_for_status()
        match = CSRF_FIELD.search(page.text)
        if match is None:
            raise RuntimeError(f"{NAME}: the login page has no CSRF field")
        form = {
            "username": username,
            "password": PASSWORD,
            "csrfmiddlewaretoken": match.group(1),
            "next": "/helpdesk/",
        }
        answer = client.post("/helpdesk/login/", data=form)
        if answer.status_code != 302 or "sessionid" not in client.cookies:
            raise RuntimeError(f"{NAME}: signing in as {username} failed ({answer.status_code})")
        return DjangoSession(client.cookies["sessionid"], client.cookies["csrftoken"])


def ticketdesk_tokens(base_url: str) -> dict[str, str]:
    async def fetch() -> dict[str, str]:
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
            return {
                "staff": await ticketdesk_login(client, STAFF_EMAIL),
                "reader": await ticketdesk_login(client, customer_email(READER)),
            }

    return asyncio.run(fetch())


# ---- what is sent ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One side's request(s) of a scenario; with several paths, a run sends them in turn and
    one view is all of them."""

    method: str
    paths: tuple[str, ...]
    headers: dict[str, str]
    body: str | None = None
    expected_status: int = 200
    expected: tuple[str, ...] = ()  # texts the answer must contain
    check: Callable[[httpx.Response], str | None] | None = None  # a further check: an error

    @property
    def requests_per_view(self) -> int:
        return len(self.paths)

    def describe(self) -> str:
        return " + ".join(f"{self.method} {path}" for path in self.paths)


@dataclass(frozen=True)
class PeerScenario:
    name: str
    title: str
    writes: bool
    calls: dict[str, Call]  # by side name


@dataclass
class Contender:
    """A running server of one side, its pid (for CPU) and how to wait until it is idle."""

    name: str
    base_url: str
    pid: int | None
    probe_url: str


def datatable_check(response: httpx.Response) -> str | None:
    rows = response.json()
    if len(rows.get("data", [])) != 50 or rows.get("recordsTotal", 0) < 50:
        return f"the ticket table has {len(rows.get('data', []))} rows"
    return None


def datatable_path(base_url: str, session: DjangoSession) -> str:
    """The address the ticket list's table loads its rows from, as the page names it."""
    page = httpx.get(f"{base_url}/helpdesk/tickets/", headers=session.headers(), timeout=30)
    found = re.search(r"/helpdesk/datatables_ticket_list/([A-Za-z0-9+/=_-]+)", page.text)
    if page.status_code != 200 or found is None:
        raise RuntimeError(f"{NAME}: the ticket list names no table address ({page.status_code})")
    return f"{found.group(0)}?draw=1&start=0&length=50"


def scenarios(
    helpdesk: Contender, targets: HelpdeskTargets, ticketdesk: Contender, ids: dict[str, int]
) -> list[PeerScenario]:
    staff = django_login(helpdesk.base_url, STAFF_USERNAME)
    reader = django_login(helpdesk.base_url, customer_username(READER))
    tokens = ticketdesk_tokens(ticketdesk.base_url)
    as_staff = {"Cookie": f"token={tokens['staff']}"}
    as_reader = {"Cookie": f"token={tokens['reader']}"}
    thread = (TOPIC.format(number=2), TICKET_TEXT, REQUEST_TEXT, RESPONSE_TEXT)
    public_id = f"{targets.queue}-{targets.read_ticket}"
    reader_email = customer_email(READER).replace("@", "%40")
    td, dh = TICKETDESK_NAME, NAME
    return [
        PeerScenario(
            "agent_ticket",
            "an agent opens a ticket and its messages",
            False,
            {
                td: Call("GET", (f"/app/tickets/{ids['read_ticket']}",), as_staff, expected=thread),
                dh: Call(
                    "GET",
                    (f"/helpdesk/tickets/{targets.read_ticket}/",),
                    staff.headers(),
                    expected=thread,
                ),
            },
        ),
        PeerScenario(
            "agent_queue",
            "an agent's open tickets, 50 rows",
            False,
            {
                td: Call("GET", ("/app/queue",), as_staff, expected=(TOPIC.format(number=20),)),
                dh: Call(
                    "GET",
                    ("/helpdesk/tickets/", datatable_path(helpdesk.base_url, staff)),
                    staff.headers(),
                    expected=("ticketTable",),
                    check=lambda r: datatable_check(r) if "datatables" in str(r.url) else None,
                ),
            },
        ),
        PeerScenario(
            "customer_ticket",
            "a customer views their ticket",
            False,
            {
                td: Call(
                    "GET", (f"/app/tickets/{ids['read_ticket']}",), as_reader, expected=thread
                ),
                dh: Call(
                    "GET",
                    (f"/helpdesk/view/?ticket={public_id}&email={reader_email}",),
                    reader.headers(),
                    expected=thread,
                ),
            },
        ),
        PeerScenario(
            "agent_reply",
            "an agent posts a reply through the API",
            True,
            {
                td: Call(
                    "POST",
                    (f"/tickets/{ids['post_ticket']}/messages",),
                    as_staff,
                    body=json.dumps({"text": REPLY_TEXT}),
                    expected_status=201,
                ),
                dh: Call(
                    "POST",
                    ("/helpdesk/api/followups/",),
                    staff.headers(writes=True),
                    body=json.dumps(
                        {"ticket": targets.post_ticket, "comment": REPLY_TEXT, "public": True}
                    ),
                    expected_status=201,
                ),
            },
        ),
    ]


def verify(side: Contender, scenario: PeerScenario) -> list[int]:
    """Each request answers as expected before anything is measured: never a sign-in
    redirect or an error page. Returns the sizes of the answers' bodies."""
    call = scenario.calls[side.name]
    sizes = []
    for path in call.paths:
        headers = dict(call.headers)
        if call.body is not None:
            headers["Content-Type"] = "application/json"
        response = httpx.request(
            call.method, side.base_url + path, headers=headers, content=call.body, timeout=30
        )
        problem = None
        if response.status_code != call.expected_status:
            problem = f"answered {response.status_code}, not {call.expected_status}"
        else:
            missing = [text for text in call.expected if text not in response.text]
            if missing and "datatables" not in path:
                problem = f"the answer lacks {missing}"
            elif call.check is not None:
                problem = call.check(response)
        if problem:
            raise SystemExit(
                f"{side.name} {scenario.name}: {call.method} {path} {problem}: "
                f"{response.text[:300]!r}"
            )
        sizes.append(len(response.content))
    return sizes


# ---- the load runs ---------------------------------------------------------------------------


def wrk_run(side: Contender, call: Call, load: Load) -> WrkResult:
    """One wrk run of bench/lua/peer.lua, with the CPU per request of both trees."""
    threads = max(1, min(load.threads, load.connections))
    command = [
        "wrk",
        f"--threads={threads}",
        f"--connections={load.connections}",
        f"--duration={load.duration_s}s",
        f"--timeout={load.timeout_s}s",
        f"--script={LUA_DIR / 'peer.lua'}",
        side.base_url + call.paths[0],
    ]
    env = {
        **os.environ,
        "BENCH_METHOD": call.method,
        "BENCH_PATHS": "\n".join(call.paths),
        "BENCH_HEADERS": "\n".join(f"{name}: {value}" for name, value in call.headers.items()),
        "BENCH_BODY": call.body or "",
    }
    settle(side.probe_url)
    before = cpu.sample(side.pid)
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    result = loadgen.collect(process)
    result.cpu = cpu.per_request(before, cpu.sample(side.pid), result.requests)
    return result


def per_view(median: dict[str, Any], requests_per_view: int) -> dict[str, Any]:
    """Medians per view: a view of n requests is n times the CPU and 1/n the rate."""
    if requests_per_view == 1:
        return median
    scaled = dict(median)
    scaled["rps"] = round(median["rps"] / requests_per_view, 1)
    for key in ("server_us_per_req", "pg_us_per_req"):
        if median.get(key) is not None:
            scaled[key] = round(median[key] * requests_per_view, 1)
    return scaled


def measure_pair(scenario: PeerScenario, sides: list[Contender], plan: Plan) -> dict[str, Any]:
    """`plan.repeat` rounds, each a warm-up and a measured run per side, the order
    alternating per round (A B, B A, ...)."""
    log(f"{scenario.name}: {scenario.title}")
    found: dict[str, dict[str, Any]] = {}
    for side in sides:
        call = scenario.calls[side.name]
        found[side.name] = {
            "requests": call.describe(),
            "requests_per_view": call.requests_per_view,
            "warmups": [],
            "runs": [],
        }
    order: list[str] = []
    for number in range(1, plan.repeat + 1):
        for side in sides if number % 2 else list(reversed(sides)):
            call = scenario.calls[side.name]
            if plan.warmup_s > 0:
                warmup = wrk_run(side, call, plan.load(duration_s=plan.warmup_s))
                found[side.name]["warmups"].append(warmup.to_json())
            result = wrk_run(side, call, plan.load())
            found[side.name]["runs"].append(result)
            order.append(side.name)
            log(f"  round {number} {side.name:>15}: {describe(result)}")
    for side in sides:
        runs: list[WrkResult] = found[side.name]["runs"]
        raw = summarize(runs)
        found[side.name]["median_requests"] = raw
        found[side.name]["median"] = per_view(raw, found[side.name]["requests_per_view"])
        found[side.name]["runs"] = [run.to_json() for run in runs]
    ours = found[TICKETDESK_NAME]["median"]["rps"]
    theirs = found[NAME]["median"]["rps"]
    return {
        "title": scenario.title,
        "writes": scenario.writes,
        "order": order,
        "sides": found,
        "ratio": round(ours / theirs, 3) if theirs else None,
    }


def memory_of(pid: int | None) -> list[dict[str, object]]:
    return [process_memory(p) for p in [pid, *descendants(pid)]] if pid else []


def fresh_ticketdesk_database() -> None:
    """ticketdesk's own database for this comparison, empty, with the service's schema."""
    asyncio.run(recreate_database(PEER_DB))
    migrate(PEER_DB)


SCENARIO_NAMES = ("agent_ticket", "agent_queue", "customer_ticket", "agent_reply")


def compare(
    peer: Peer,
    plan: Plan,
    workers: int,
    pool_size: int | None,
    only: list[str] | None = None,
    worker_class: str = "sync",
) -> dict[str, Any]:
    """Both data sets, both servers, every scenario in ABBA rounds; both servers stopped."""
    targets, helpdesk_data = prepare(peer)
    fresh_ticketdesk_database()
    staff_token = secrets.token_urlsafe(24)
    config = ServerConfig(
        port=TICKETDESK_PORT,
        workers=workers,
        pool_size=pool_size,
        extra_env={"DATABASE_URL": dsn(PEER_DB), "STAFF_TOKEN": staff_token},
    )
    results: dict[str, Any] = {
        "peer": NAME,
        "packages": list(PACKAGES),
        "shape": shape(),
        "servers": {
            NAME: f"gunicorn, {workers} {worker_class} workers, port {HELPDESK_PORT}, "
            f"database {HELPDESK_DB}",
            TICKETDESK_NAME: f"ticketdesk serve, {workers} workers, port {TICKETDESK_PORT}, "
            f"database {PEER_DB}",
        },
    }
    with (
        Gunicorn(peer, HELPDESK_PORT, workers, worker_class) as gunicorn,
        Server(config) as server,
    ):
        base = server.base_url
        side = Side(TICKETDESK_NAME, base, server.pid, staff_token, f"{base}/healthz")
        ticketdesk_data = asyncio.run(populate(side))
        assert side.targets is not None
        ids = {"read_ticket": side.targets.messages_ticket, "post_ticket": side.targets.post_ticket}
        results["datasets"] = {NAME: helpdesk_data, TICKETDESK_NAME: ticketdesk_data}
        helpdesk = Contender(NAME, gunicorn.base_url, gunicorn.pid, gunicorn.probe_url)
        ticketdesk = Contender(TICKETDESK_NAME, base, server.pid, f"{base}/healthz")
        sides = [ticketdesk, helpdesk]
        chosen = [
            s for s in scenarios(helpdesk, targets, ticketdesk, ids) if not only or s.name in only
        ]
        results["answer_bytes"] = {
            s.name: {contender.name: verify(contender, s) for contender in sides} for s in chosen
        }
        results["memory_idle"] = {c.name: memory_of(c.pid) for c in sides}
        results["scenarios"] = {s.name: measure_pair(s, sides, plan) for s in chosen}
        results["memory"] = {c.name: memory_of(c.pid) for c in sides}
    return results


# ---- the table -------------------------------------------------------------------------------


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _cpu(median: dict[str, Any]) -> str:
    server, pg = median.get("server_us_per_req"), median.get("pg_us_per_req")
    return f"{_number(server, 0)} / {_number(pg, 0)}"


def markdown(found: dict[str, Any]) -> str:
    """The comparison as a markdown table, with what each scenario sent under it."""
    td, dh = TICKETDESK_NAME, NAME
    headers = [
        "scenario",
        f"{dh} req/s",
        f"{td} req/s",
        "ratio",
        f"p99 ms {dh} / {td}",
        f"CPU µs/req {dh} server / PG",
        f"CPU µs/req {td} server / PG",
        f"errors {dh} / {td}",
    ]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    notes = []
    for name, result in found["scenarios"].items():
        theirs, ours = result["sides"][dh], result["sides"][td]
        row = [
            name,
            _number(theirs["median"]["rps"]),
            _number(ours["median"]["rps"]),
            _number(result["ratio"], 2),
            f"{_number(theirs['median']['p99_ms'])} / {_number(ours['median']['p99_ms'])}",
            _cpu(theirs["median"]),
            _cpu(ours["median"]),
            f"{theirs['median']['errors']} / {ours['median']['errors']}",
        ]
        lines.append("| " + " | ".join(row) + " |")
        for side_name, side in ((dh, theirs), (td, ours)):
            sizes = found.get("answer_bytes", {}).get(name, {}).get(side_name, [])
            size_text = " + ".join(f"{size:,}" for size in sizes)
            notes.append(f"- {name}, {side_name}: {side['requests']} ({size_text} bytes)")
            if side["requests_per_view"] > 1:
                raw = side["median_requests"]
                notes.append(
                    f"  ({side['requests_per_view']} requests a view: req/s and CPU are per "
                    f"view; per request {raw['rps']:,.1f} req/s, p99 of the requests)"
                )
            if side["median"]["errors"]:
                notes.append(f"  errors: statuses {side['median']['statuses']}")
    rounds = len(next(iter(found["scenarios"].values()))["order"]) // 2 if notes else 0
    memory = [
        f"{side} {sum(int(p.get('vmrss_kib', 0)) for p in processes) / 1024:.1f} MiB"
        for side, processes in found.get("memory", {}).items()
    ]
    footer = [
        "",
        f"Medians of {rounds} round(s), the two alternating (ABBA); ratio: {td} req/s ÷ {dh} "
        "req/s. CPU: the server's process tree and all PostgreSQL processes over the run ÷ "
        "completed requests. Errors: non-2xx answers and socket errors, all runs.",
        f"Servers: {found['servers'][dh]}; {found['servers'][td]}.",
        "RSS after the load: " + ", ".join(memory),
        "",
        *notes,
    ]
    return "\n".join(lines + footer)


# ---- standalone: set up and serve ------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peer-dir", type=Path, default=DEFAULT_DIR, help="its environment")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (2)")
    parser.add_argument("--worker-class", default="sync", help="gunicorn worker class (sync)")
    parser.add_argument("--serve", action="store_true", help="serve until Ctrl-C")
    args = parser.parse_args()
    peer = Peer(args.peer_dir)
    _, data = prepare(peer)
    print(json.dumps(data, indent=2))
    if args.serve:
        signal.signal(signal.SIGTERM, _interrupt)
        with Gunicorn(peer, HELPDESK_PORT, args.workers, args.worker_class) as gunicorn:
            log(
                f"{gunicorn.base_url}/helpdesk/ (staff {STAFF_USERNAME}, customers "
                f"customer01..{CUSTOMERS:02d}, password {PASSWORD}); Ctrl-C stops it"
            )
            with contextlib.suppress(KeyboardInterrupt):
                while gunicorn.process is not None and gunicorn.process.poll() is None:
                    time.sleep(1)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def removed_afterwards(peer: Peer, remove: bool) -> Iterator[None]:
    """The peer's directory is removed at the end when asked (--peer-clean)."""
    try:
        yield
    finally:
        if remove:
            shutil.rmtree(peer.directory, ignore_errors=True)
            log(f"{NAME}: removed {peer.directory}")


if __name__ == "__main__":
    main()
