"""A soak with faults: a help desk's mixed traffic for half an hour on PostgreSQL, while one
of serve's worker processes is SIGKILLed every few minutes and the database is restarted
once; then a check that nothing acknowledged was lost and nothing was sent twice.

Not a timed test: it is run once and its report read. It drives only what operators and
clients see: the HTTP API, the `ticketdesk` commands (migrate, create-superuser, serve,
mail-in), mail to an SMTP server of its own and webhook calls to receivers of its own. SQL
only reads, to verify. So it keeps working while the code behind those surfaces changes.

    .venv/bin/python bench/soak.py --minutes 30     # the soak (about 40 minutes in all)
    .venv/bin/python bench/soak.py --minutes 4      # a trial

The report (markdown) goes to stdout, progress to stderr, and everything measured, with the
server's log, to bench/results/soak-<UTC timestamp>/. The exit status is 1 when a check
failed. See bench/README.md, "Soak".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import email.utils
import itertools
import json
import os
import random
import re
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from common import REPO_DIR, RESULTS_DIR, TICKETDESK, log
from server import descendants
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

sys.path.insert(0, str(REPO_DIR / "tests"))
from throwaway_postgres import ThrowawayPostgres  # a helper of the tests

DOMAIN = "soak.ticketdesk.io"  # the people's addresses
SUPPORT = "support@desk.ticketdesk.io"  # the service's, a domain apart
PASSWORD = "soak-password-31415"
EVENT_KINDS = ["created", "status", "assignee", "priority", "message", "note", "rating"]
PRIORITIES = ["low", "normal", "high", "urgent"]
TICKET_IN_SUBJECT = re.compile(r"\[#(\d+)\]")

PASSED_ON = ("PATH", "HOME", "PYTHONPATH", "TMPDIR")  # the rest of the environment is ours
RESET_ACCOUNTS = 5  # reset requests take turns over these accounts
RESET_DEADLINE_S = 60.0  # a reset mail must be out this soon after the request
RESTART_GRACE_S = 10.0  # 503s are expected from the stop until this long after the start
KILL_GRACE_S = 5.0  # transport errors this soon after a kill are the kill's
REPLACE_TIMEOUT_S = 90.0  # the supervisor must have started a new worker by then
RSS_EVERY_S = 20.0
RSS_FLAT_SHARE = 0.10  # a survivor may grow this much over the second half of the run...
RSS_FLAT_KIB = 16 * 1024  # ...or this many KiB, whichever is larger
WRITE_ATTEMPTS = 4  # a write whose answer was lost, or a 503, is sent again (same key)
STREAM_READ_TIMEOUT_S = 45.0  # a stream sends a comment every 15 quiet seconds


# --- options -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    minutes: float
    workers: int
    customers: int
    agents: int
    streams: int
    customer_think_s: float
    agent_think_s: float
    reset_every_s: float
    mail_in_every_s: float
    kill_every_s: float
    restart_at_s: float
    drain_s: float
    redis_url: str
    log_level: str
    settings: tuple[tuple[str, str], ...]
    seed: int

    @property
    def duration_s(self) -> float:
        return self.minutes * 60


def _setting(parser: argparse.ArgumentParser, item: str) -> tuple[str, str]:
    name, equals, value = item.partition("=")
    if not equals or not name:
        parser.error(f"--set {item}: NAME=VALUE")
    return name, value


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--minutes", type=float, default=30.0, help="traffic time (default 30)")
    add("--workers", type=int, default=2, help="serve's worker processes (default 2)")
    add("--customers", type=int, default=40, help="customers signed in (default 40)")
    add("--agents", type=int, default=4, help="agents at work (default 4)")
    add("--streams", type=int, default=200, help="open GET /events/stream (default 200)")
    add("--customer-think", type=float, default=3.0, help="mean s between a customer's requests")
    add("--agent-think", type=float, default=0.8, help="mean s between an agent's requests")
    add("--reset-every", type=float, default=20.0, help="s between password resets (20)")
    add("--mail-in-every", type=float, default=15.0, help="s between mails in (15)")
    add(
        "--kill-every",
        type=float,
        default=None,
        help="s between worker SIGKILLs (default: a sixth of the run, 300 s for 30 minutes)",
    )
    add(
        "--restart-at",
        type=float,
        default=None,
        help="s into the run PostgreSQL restarts (default: between the 3rd and 4th kill)",
    )
    add("--drain", type=float, default=300.0, help="most s to wait for deliveries at the end")
    add("--redis-url", default="redis://127.0.0.1:6379/0", help="REDIS_URL (own key prefix)")
    add("--log-level", default="warning", help="serve's LOG_LEVEL (info: every request)")
    add(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting of the service (repeat), e.g. --set TOKEN_LIFETIME_MINUTES=5",
    )
    add("--seed", type=int, default=1, help="the traffic's random seed")
    args = parser.parse_args(argv)
    duration = args.minutes * 60
    kill_every = args.kill_every or duration / 6
    restart_at = args.restart_at if args.restart_at is not None else 3.5 * kill_every
    return Options(
        minutes=args.minutes,
        workers=args.workers,
        customers=args.customers,
        agents=args.agents,
        streams=args.streams,
        customer_think_s=args.customer_think,
        agent_think_s=args.agent_think,
        reset_every_s=args.reset_every,
        mail_in_every_s=args.mail_in_every,
        kill_every_s=kill_every,
        restart_at_s=restart_at,
        drain_s=args.drain,
        redis_url=args.redis_url,
        log_level=args.log_level,
        settings=tuple(_setting(parser, item) for item in args.set),
        seed=args.seed,
    )


# --- the clock and the tally of answers ----------------------------------------------------


class Clock:
    """Seconds since the traffic began (negative while setting up)."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def start(self) -> None:
        self.started = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.started

    def at(self, moment: float) -> float:
        """A time.monotonic() reading, on this clock."""
        return moment - self.started


@dataclass
class Window:
    start: float
    end: float

    def holds(self, moment: float) -> bool:
        return self.start <= moment <= self.end


@dataclass
class Faults:
    """What was done to the service, and when (on the clock)."""

    kills: list[dict[str, Any]] = field(default_factory=list)
    restarts: list[Window] = field(default_factory=list)

    def in_restart(self, moment: float) -> bool:
        return any(window.holds(moment) for window in self.restarts)

    def after_kill(self, moment: float) -> bool:
        return any(0 <= moment - kill["at"] <= KILL_GRACE_S for kill in self.kills)


@dataclass
class Tally:
    """Every answer by route and status, and the ones that need a look."""

    clock: Clock
    faults: Faults
    statuses: Counter[tuple[str, str]] = field(default_factory=Counter)
    server_errors: list[dict[str, Any]] = field(default_factory=list)
    transport_errors: list[dict[str, Any]] = field(default_factory=list)

    def answered(self, route: str, response: httpx.Response) -> None:
        """A response whose body was read (the error answers' bodies are kept)."""
        self.statuses[(route, str(response.status_code))] += 1
        if response.status_code >= 500:
            self.server_errors.append(
                {"at": round(self.clock.now(), 2), "route": route,
                 "status": response.status_code, "detail": response.text[:200]}
            )  # fmt: skip

    def failed(self, route: str, error: BaseException) -> None:
        kind = type(error).__name__
        self.statuses[(route, kind)] += 1
        self.transport_errors.append(
            {"at": round(self.clock.now(), 2), "route": route, "kind": kind}
        )

    def unexpected_5xx(self) -> list[dict[str, Any]]:
        """5xx answers other than 503s while the database restarted."""
        return [
            error
            for error in self.server_errors
            if not (error["status"] == 503 and self.faults.in_restart(error["at"]))
        ]


# --- the receivers: SMTP, a healthy webhook endpoint, a dead one ---------------------------


@dataclass(frozen=True)
class ReceivedMail:
    recipient: str
    message_id: str | None
    subject: str
    reply_to: str | None
    arrived: float  # time.monotonic()


class MailSink:
    """An SMTP server (aiosmtpd, in a thread of its own) that keeps every mail's envelope
    recipient, Message-ID, subject, Reply-To and arrival time."""

    def __init__(self) -> None:
        self.mails: list[ReceivedMail] = []
        self.reply_addresses: dict[int, str] = {}  # ticket id -> the Reply-To its mail gave
        self.lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())

    @property
    def port(self) -> int:
        return int(self.controller.port)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        arrived = time.monotonic()
        assert isinstance(envelope.content, bytes)
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        subject = str(message.get("Subject", ""))
        message_id = message.get("Message-ID")
        reply_to = message.get("Reply-To")
        reply_address = email.utils.parseaddr(str(reply_to))[1] if reply_to else None
        with self.lock:
            for recipient in envelope.rcpt_tos:
                self.mails.append(
                    ReceivedMail(
                        recipient.lower(),
                        str(message_id).strip() if message_id else None,
                        subject,
                        reply_address,
                        arrived,
                    )
                )
            found = TICKET_IN_SUBJECT.search(subject)
            if found and reply_address:
                self.reply_addresses[int(found.group(1))] = reply_address
        return "250 OK"

    def to(self, recipient: str) -> list[ReceivedMail]:
        with self.lock:
            return [mail for mail in self.mails if mail.recipient == recipient]

    def reply_address(self, ticket_id: int) -> str | None:
        with self.lock:
            return self.reply_addresses.get(ticket_id)

    def snapshot(self) -> list[ReceivedMail]:
        with self.lock:
            return list(self.mails)


@dataclass(frozen=True)
class Delivery:
    webhook_id: str
    event_id: int | None
    verified: bool
    arrived: float


class Receiver:
    """A webhook endpoint on a free loopback port; `_serve` handles each connection."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class HealthyReceiver(Receiver):
    """A webhook endpoint that answers 204 at once and keeps every call, checked with the
    Standard Webhooks library against the endpoint's secret."""

    def __init__(self) -> None:
        super().__init__()
        self.secret: str | None = None
        self.deliveries: list[Delivery] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, ValueError):
            while True:  # a kept-alive connection carries several calls
                head = await reader.readuntil(b"\r\n\r\n")
                headers = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name:
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self._record(headers, body)
                writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        writer.close()

    def _record(self, headers: dict[str, str], body: bytes) -> None:
        verified = False
        event_id = None
        if self.secret is not None:
            try:
                call = Webhook(self.secret).verify(body, headers)
                verified = True
                event_id = int(call["data"]["id"])
            except (WebhookVerificationError, KeyError, TypeError, ValueError):
                verified = False
        self.deliveries.append(
            Delivery(headers.get("webhook-id", ""), event_id, verified, time.monotonic())
        )

    def event_ids(self) -> Counter[int]:
        return Counter(d.event_id for d in self.deliveries if d.event_id is not None)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


class DeadReceiver(Receiver):
    """An endpoint that takes the connection and the request, and never answers."""

    def __init__(self) -> None:
        super().__init__()
        self.connections = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass
        writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- the service under test ----------------------------------------------------------------


class Service:
    """A private PostgreSQL, and `ticketdesk serve` on it with N workers, in one run
    directory (its log, its data directory, no .env)."""

    def __init__(self, options: Options, run_dir: Path, smtp_port: int) -> None:
        self.options = options
        self.run_dir = run_dir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.staff_token = secrets.token_urlsafe(32)
        self.jwt_key = secrets.token_hex(32)
        self.rate_limit_prefix = f"soak-{secrets.token_hex(4)}"
        self.smtp_port = smtp_port
        self.pg = ThrowawayPostgres()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = run_dir / "server.log"

    @property
    def dsn(self) -> str:
        url = self.pg.url.set(drivername="postgresql")
        return str(url.render_as_string(hide_password=False))

    def environment(self) -> dict[str, str]:
        lax = {  # rate limits stay on, counted in Redis, with room for this traffic
            "RATE_LIMIT_LOGIN_PER_IP": "1000/minute",
            "RATE_LIMIT_LOGIN_PER_ACCOUNT": "100/minute",
            "RATE_LIMIT_REGISTER_PER_IP": "1000/hour",
            "RATE_LIMIT_WRITES_PER_USER": "600/minute",
            "RATE_LIMIT_PASSWORD_RESET": "1000/hour",
            "RATE_LIMIT_PASSWORD_RESET_PER_IP": "10000/hour",
        }
        passed = {name: os.environ[name] for name in PASSED_ON if name in os.environ}
        return {
            **passed,
            "DATABASE_URL": self.pg.url.render_as_string(hide_password=False),
            "JWT_KEY": self.jwt_key,
            "STAFF_TOKEN": self.staff_token,
            "LOG_LEVEL": self.options.log_level,
            "LOG_FORMAT": "json",
            "PUBLIC_URL": self.base_url,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.smtp_port),
            "SMTP_TLS": "none",
            "MAIL_FROM": f"Soak Support <{SUPPORT}>",
            "WEBHOOK_ALLOW_PRIVATE": "true",
            "REDIS_URL": self.options.redis_url,
            "RATE_LIMIT_PREFIX": self.rate_limit_prefix,
            "DATA_DIR": str(self.run_dir / "data"),
            "SHUTDOWN_TIMEOUT": "10",
            **lax,
            **dict(self.options.settings),
        }

    def _command(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [str(TICKETDESK), *args],
            input=stdin,
            env=self.environment(),
            cwd=self.run_dir,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"ticketdesk {args[0]} failed: {done.stdout}{done.stderr}")
        return done.stdout

    def prepare(self, admin_email: str) -> None:
        """The database, its schema and the superuser: what an operator does first."""
        self.pg.init()
        self._command("migrate")
        self._command(
            "create-superuser", "--email", admin_email, "--username", "admin",
            "--password-stdin", stdin=PASSWORD + "\n",
        )  # fmt: skip

    def start(self) -> None:
        command = [
            str(TICKETDESK), "serve", "--port", str(self.port),
            "--workers", str(self.options.workers), "--no-migrate",
        ]  # fmt: skip
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                command,
                cwd=self.run_dir,
                env=self.environment(),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited; see {self.log_path}")
            with contextlib.suppress(httpx.HTTPError):
                ready = httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200
                if ready and len(self.workers()) == self.options.workers:
                    return
            time.sleep(0.3)
        raise RuntimeError("serve was not ready in 90 s")

    def workers(self) -> list[int]:
        """serve's worker processes (multiprocessing's spawned children), oldest first."""
        if self.process is None:
            return []
        found = [pid for pid in descendants(self.process.pid) if "spawn_main" in _cmdline(pid)]
        return sorted(found, key=_started)

    def processes(self) -> list[dict[str, str]]:
        """serve's process tree: what each process (and thread) waits on, for a post-mortem."""
        if self.process is None:
            return []
        found = []
        for pid in [self.process.pid, *descendants(self.process.pid)]:
            tasks = (
                sorted(Path(f"/proc/{pid}/task").glob("*")) if Path(f"/proc/{pid}").exists() else []
            )
            waits = []
            for task in tasks:
                with contextlib.suppress(OSError):
                    state = (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
                    waits.append(f"{task.name}:{state}:{(task / 'wchan').read_text()}")
            found.append(
                {"pid": str(pid), "command": _cmdline(pid)[:100], "tasks": " ".join(waits)}
            )
        return found

    def restart_database(self, down_s: float) -> None:
        self.pg.stop("fast")
        time.sleep(down_s)
        for attempt in range(5):
            try:
                self.pg.start()
                return
            except RuntimeError:
                if attempt == 4:
                    raise
                time.sleep(2)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        group = self.process.pid
        os.killpg(group, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            self.process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)

    def destroy(self) -> None:
        self.stop()
        self.pg.destroy()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _started(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


# --- the client side: accounts, answers, what was acknowledged ------------------------------


@dataclass(eq=False)
class Account:
    email: str
    role: str  # customer, agent, superuser, mail (made by mail-in: no password)
    id: int = 0
    token: str = ""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(eq=False)
class Ticket:
    """What the client knows of a ticket. All writes to one ticket go one at a time (its
    lock), so the state here is the database's as long as every answer came back; after a
    lost answer it is read again before the next write."""

    id: int
    author: Account
    status: str = "pending"
    assignee: int | None = None
    priority: str = "normal"
    has_response: bool = False
    rated: bool = False
    rating: int | None = None
    known: bool = True
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class Answer:
    status: int | None  # None: no answer (the connection broke, or it timed out)
    body: Any = None
    uncertain: bool = False  # an earlier attempt of this write may have been done

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Acknowledged:
    """Every write the service acknowledged (2xx with an id), to be found in the database."""

    users: dict[int, str] = field(default_factory=dict)  # id -> email
    tickets: dict[int, tuple[int, str]] = field(default_factory=dict)  # id -> (author, token)
    messages: dict[int, tuple[int, str]] = field(default_factory=dict)  # id -> (ticket, token)
    mail_in: list[tuple[int, str, str]] = field(default_factory=list)  # (ticket, token, sender)
    changes: Counter[tuple[int, str, int]] = field(default_factory=Counter)
    sent_tokens: set[str] = field(default_factory=set)  # every token sent, answered or not


class Api:
    """httpx against the service: every answer tallied; a lost token is renewed by login."""

    def __init__(self, base_url: str, tally: Tally) -> None:
        self.tally = tally
        self.client = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(30.0, connect=5.0),
            # A kept-alive connection is dropped before uvicorn closes it (idle 5 s): a request
            # sent on one as the server closes it would get no answer, through no fault.
            limits=httpx.Limits(
                max_connections=64, max_keepalive_connections=32, keepalive_expiry=3.0
            ),
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def once(
        self,
        route: str,
        method: str,
        path: str,
        *,
        account: Account | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Answer:
        """One request; a 401 for an expired or revoked token signs in again and retries."""
        for _ in range(2):
            sent = dict(headers or {})
            token = account.token if account is not None else ""
            if token:
                sent["Authorization"] = f"Bearer {token}"
            try:
                response = await self.client.request(
                    method, path, json=body, headers=sent, params=params
                )
            except httpx.HTTPError as exc:
                self.tally.failed(route, exc)
                return Answer(None)
            self.tally.answered(route, response)
            if response.status_code == 401 and account is not None:
                await self.login(account, stale=token)
                continue
            try:
                parsed = response.json() if response.content else None
            except ValueError:
                parsed = None
            return Answer(response.status_code, parsed)
        return Answer(401)

    async def write(
        self,
        route: str,
        method: str,
        path: str,
        *,
        account: Account,
        body: Any,
        idempotent: bool = False,
    ) -> Answer:
        """A write, sent again while its answer is lost or a 503 (with the same
        Idempotency-Key when the route takes one). `uncertain`: an attempt may have been
        done although the last answer says otherwise."""
        headers = {"Idempotency-Key": uuid.uuid4().hex} if idempotent else {}
        uncertain = False
        for attempt in range(WRITE_ATTEMPTS):
            answer = await self.once(route, method, path, account=account, body=body,
                                     headers=headers)  # fmt: skip
            if answer.status is not None and answer.status != 503 and answer.status < 500:
                answer.uncertain = uncertain and not answer.ok
                return answer
            uncertain = True
            await asyncio.sleep(1.0 + attempt)
        return Answer(None, uncertain=True)

    async def login(self, account: Account, stale: str = "") -> None:
        """Sign in again, once for all who found the same token stale."""
        async with account.lock:
            if account.token and account.token != stale:
                return
            for _ in range(30):
                answer = await self.once(
                    "POST /login", "POST", "/login",
                    body={"email": account.email, "password": PASSWORD},
                )  # fmt: skip
                if answer.ok:
                    account.token = answer.body["token"]
                    return
                await asyncio.sleep(2)
            raise RuntimeError(f"{account.email} could not sign in")


def new_token() -> str:
    return uuid.uuid4().hex[:12]


# --- the desk: the traffic ----------------------------------------------------------------


class Desk:
    """The people at work, the tickets they know of, and what the service acknowledged."""

    def __init__(
        self, options: Options, api: Api, service: Service, sink: MailSink, clock: Clock
    ) -> None:
        self.options = options
        self.api = api
        self.service = service
        self.sink = sink
        self.clock = clock
        self.rng = random.Random(options.seed)
        self.admin = Account(f"admin@{DOMAIN}", "superuser")
        self.agents: list[Account] = []
        self.customers: list[Account] = []
        self.forgetful = [
            Account(f"forgetful{n}@{DOMAIN}", "customer") for n in range(RESET_ACCOUNTS)
        ]
        self.tickets: dict[int, Ticket] = {}
        self.acknowledged = Acknowledged()
        self.stopping = asyncio.Event()  # the traffic ends
        self.streams_stop = asyncio.Event()  # the streams end (after the drain)
        self.script_errors: Counter[str] = Counter()
        self.resets: list[dict[str, Any]] = []
        self.mail_in_outcomes: Counter[str] = Counter()
        self.mail_in_failures: list[dict[str, Any]] = []  # refusals, with what mail-in said
        self.stream_stats: Counter[str] = Counter()
        self.stream_last: dict[int, int] = {}
        self.healthy_webhook_id = 0
        self.dead_webhook_id = 0
        self._mail_senders = 0

    # setting up

    async def register(self, account: Account, *, staff: bool = False) -> None:
        headers = {"Authorization": f"Bearer {self.service.staff_token}"} if staff else {}
        name = account.email.partition("@")[0]
        body = {"email": account.email, "password": PASSWORD, "username": name}
        if staff:
            body["isStaff"] = True  # type: ignore[assignment]
        answer = await self.api.once("POST /users", "POST", "/users", body=body, headers=headers)
        if answer.status != 201:
            raise RuntimeError(f"registering {account.email}: {answer.status} {answer.body}")
        account.id = int(answer.body["id"])
        self.acknowledged.users[account.id] = account.email

    async def set_up(self, healthy: HealthyReceiver, dead: DeadReceiver) -> None:
        await self.api.login(self.admin)
        answer = await self.api.once("GET /users/me", "GET", "/users/me", account=self.admin)
        self.admin.id = int(answer.body["id"])
        self.agents = [Account(f"agent{n}@{DOMAIN}", "agent") for n in range(self.options.agents)]
        self.customers = [
            Account(f"customer{n}@{DOMAIN}", "customer") for n in range(self.options.customers)
        ]
        for agent in self.agents:
            await self.register(agent, staff=True)
        for customer in [*self.customers, *self.forgetful]:
            await self.register(customer)
        # Everyone signs in at once, as on a Monday morning: each worker's password-hashing
        # threads take their memory now, not first when the tokens expire late in the run.
        await asyncio.gather(*(self.api.login(a) for a in [*self.agents, *self.customers]))
        for receiver, name in ((healthy, "healthy"), (dead, "dead")):
            answer = await self.api.once(
                "POST /webhooks", "POST", "/webhooks", account=self.admin,
                body={"url": receiver.url, "events": EVENT_KINDS},
            )  # fmt: skip
            if answer.status != 201:
                raise RuntimeError(f"the {name} webhook: {answer.status} {answer.body}")
            if receiver is healthy:
                healthy.secret = answer.body["secret"]
                self.healthy_webhook_id = int(answer.body["id"])
            else:
                self.dead_webhook_id = int(answer.body["id"])

    # reading a ticket again after a lost answer

    async def resync(self, ticket: Ticket) -> bool:
        agent = self.agents[0]
        route = "GET /tickets/{id}"
        answer = await self.api.once(route, "GET", f"/tickets/{ticket.id}", account=agent)
        if answer.status == 404:  # its creation was never acknowledged nor done
            self.tickets.pop(ticket.id, None)
            return False
        if not answer.ok:
            return False
        body = answer.body
        ticket.status = body["status"]
        ticket.assignee = body.get("assignee_id")
        ticket.priority = body.get("priority", "normal")
        rating = body.get("rating")
        ticket.rated = rating is not None
        ticket.rating = rating["score"] if rating else None
        messages = await self.api.once(
            "GET /tickets/{id}/messages", "GET", f"/tickets/{ticket.id}/messages",
            account=agent, params={"limit": 100},
        )  # fmt: skip
        if not messages.ok:
            return False
        ticket.has_response = any(m["type"] == "response" for m in messages.body)
        ticket.known = True
        return True

    def _settle(self, ticket: Ticket, answer: Answer) -> bool:
        """After a write: True when it was acknowledged; a doubt makes the ticket unknown."""
        if answer.uncertain or answer.status is None:
            ticket.known = False
        return answer.ok

    # customers

    def _own(self, customer: Account) -> list[Ticket]:
        return [t for t in self.tickets.values() if t.author is customer]

    async def customer_works(self, customer: Account) -> None:
        while not self.stopping.is_set():
            await self._pause(self.options.customer_think_s)
            await self._guarded(self.customer_step(customer))

    async def _guarded(self, step: Awaitable[None]) -> None:
        """A mistake of this script is counted and shown, and the traffic goes on."""
        try:
            await step
        except Exception as exc:  # noqa: BLE001 - shown in the report, not hidden
            kind = f"{type(exc).__name__}: {str(exc)[:100]}"
            if not self.script_errors[kind]:
                log(f"{self.clock.now():7.1f}s the script erred: {kind}")
            self.script_errors[kind] += 1

    async def customer_step(self, customer: Account) -> None:
        own = self._own(customer)
        roll = self.rng.random()
        if roll < 0.06 or not own:
            await self.open_ticket(customer)
        elif roll < 0.20:
            await self.customer_writes(self.rng.choice(own[-20:]))
        elif roll < 0.21:
            await self.cancel(self.rng.choice(own))
        elif roll < 0.25:
            resolved = [t for t in own if t.status == "resolved" and not t.rated]
            if resolved:
                await self.rate(self.rng.choice(resolved))
        elif roll < 0.65:
            await self.api.once("GET /tickets", "GET", "/tickets", account=customer,
                                params={"limit": 20, "sort": "-updated_at"})  # fmt: skip
        else:
            ticket = self.rng.choice(own)
            await self.api.once(
                "GET /tickets/{id}/messages", "GET", f"/tickets/{ticket.id}/messages",
                account=customer,
            )  # fmt: skip

    async def _pause(self, mean_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.rng.expovariate(1 / mean_s)):
                await self.stopping.wait()

    async def open_ticket(self, customer: Account) -> None:
        token = new_token()
        self.acknowledged.sent_tokens.add(token)
        body = {"topic": f"soak {token[:6]}", "text": f"Something broke again. [soak:{token}]"}
        answer = await self.api.write("POST /tickets", "POST", "/tickets", account=customer,
                                      body=body, idempotent=True)  # fmt: skip
        if answer.ok:
            ticket_id = int(answer.body["id"])
            self.tickets[ticket_id] = Ticket(ticket_id, customer)
            self.acknowledged.tickets[ticket_id] = (customer.id, token)
            self.acknowledged.changes[(ticket_id, "created", customer.id)] += 1

    async def customer_writes(self, ticket: Ticket) -> None:
        async with ticket.lock:
            if not await self._ready(ticket) or ticket.status == "canceled":
                return
            token = new_token()
            self.acknowledged.sent_tokens.add(token)
            answer = await self.api.write(
                "POST /tickets/{id}/messages", "POST", f"/tickets/{ticket.id}/messages",
                account=ticket.author, body={"text": f"Any news? [soak:{token}]"},
                idempotent=True,
            )  # fmt: skip
            if self._settle(ticket, answer):
                self.acknowledged.messages[int(answer.body["id"])] = (ticket.id, token)
                self.acknowledged.changes[(ticket.id, "message", ticket.author.id)] += 1
                if ticket.status in ("resolved", "unresolved"):
                    ticket.status = "pending"  # a customer's message reopens it

    async def cancel(self, ticket: Ticket) -> None:
        async with ticket.lock:
            if not await self._ready(ticket) or ticket.status == "canceled":
                return
            await self._patch(ticket, ticket.author, {"status": "canceled"})

    async def rate(self, ticket: Ticket) -> None:
        async with ticket.lock:
            if not await self._ready(ticket) or ticket.status != "resolved" or ticket.rated:
                return
            score = self.rng.randint(1, 5)
            answer = await self.api.write(
                "POST /tickets/{id}/rating", "POST", f"/tickets/{ticket.id}/rating",
                account=ticket.author, body={"score": score, "comment": "soak"},
            )  # fmt: skip
            if self._settle(ticket, answer):
                ticket.rated, ticket.rating = True, score
                self.acknowledged.changes[(ticket.id, "rating", ticket.author.id)] += 1

    async def _ready(self, ticket: Ticket) -> bool:
        return ticket.known or await self.resync(ticket)

    async def _patch(self, ticket: Ticket, who: Account, change: dict[str, Any]) -> None:
        """One field at a time, so each acknowledged change is one event."""
        answer = await self.api.write("PATCH /tickets/{id}", "PATCH", f"/tickets/{ticket.id}",
                                      account=who, body=change)  # fmt: skip
        if not self._settle(ticket, answer):
            return
        ((name, value),) = change.items()
        kind = {"assignee_id": "assignee"}.get(name, name)
        self.acknowledged.changes[(ticket.id, kind, who.id)] += 1
        if name == "status":
            ticket.status = value
        elif name == "assignee_id":
            ticket.assignee = value
        else:
            ticket.priority = value

    # agents

    async def agent_works(self, agent: Account) -> None:
        while not self.stopping.is_set():
            await self._pause(self.options.agent_think_s)
            await self._guarded(self.agent_step(agent))

    async def agent_step(self, agent: Account) -> None:
        open_tickets = [t for t in self.tickets.values() if t.status != "canceled"]
        roll = self.rng.random()
        if roll < 0.20 or not open_tickets:
            await self.api.once(
                "GET /tickets (queue)", "GET", "/tickets", account=agent,
                params={"status": ["pending", "unresolved"], "sort": "-updated_at", "limit": 25},
            )  # fmt: skip
            return
        ticket = self.rng.choice(open_tickets[-300:])
        if roll < 0.30:
            await self.api.once("GET /tickets/{id}", "GET", f"/tickets/{ticket.id}",
                                account=agent)  # fmt: skip
        elif roll < 0.55:
            await self.agent_writes(ticket, agent, internal=False)
        elif roll < 0.65:
            await self.agent_writes(ticket, agent, internal=True)
        else:
            await self.agent_changes(ticket, agent)

    async def agent_writes(self, ticket: Ticket, agent: Account, *, internal: bool) -> None:
        async with ticket.lock:
            if not await self._ready(ticket) or ticket.status == "canceled":
                return
            token = new_token()
            self.acknowledged.sent_tokens.add(token)
            text = f"{'Note' if internal else 'We are on it'}. [soak:{token}]"
            answer = await self.api.write(
                "POST /tickets/{id}/messages", "POST", f"/tickets/{ticket.id}/messages",
                account=agent, body={"text": text, "internal": internal}, idempotent=True,
            )  # fmt: skip
            if self._settle(ticket, answer):
                self.acknowledged.messages[int(answer.body["id"])] = (ticket.id, token)
                kind = "note" if internal else "message"
                self.acknowledged.changes[(ticket.id, kind, agent.id)] += 1
                ticket.has_response = ticket.has_response or not internal

    async def agent_changes(self, ticket: Ticket, agent: Account) -> None:
        async with ticket.lock:
            if not await self._ready(ticket) or ticket.status == "canceled":
                return
            roll = self.rng.random()
            if roll < 0.4:
                choices: list[Any] = [a.id for a in self.agents if a.id != ticket.assignee]
                choices += [None] if ticket.assignee is not None else []
                await self._patch(ticket, agent, {"assignee_id": self.rng.choice(choices)})
            elif roll < 0.6:
                choices = [p for p in PRIORITIES if p != ticket.priority]
                await self._patch(ticket, agent, {"priority": self.rng.choice(choices)})
            else:
                targets = ["pending", "unresolved"] + (["resolved"] * 3 if ticket.has_response
                                                       else [])  # fmt: skip
                choices = [s for s in targets if s != ticket.status]
                await self._patch(ticket, agent, {"status": self.rng.choice(choices)})

    # the live streams

    async def stream(self, number: int, client: httpx.AsyncClient) -> None:
        """One agent's event stream, open for the whole run, opened again when it ends."""
        agent = [*self.agents, self.admin][number % (len(self.agents) + 1)]
        last = self.stream_last.get(number, 0)
        route = "GET /events/stream"
        while not self.streams_stop.is_set():
            token = agent.token
            headers = {"Authorization": f"Bearer {token}"}
            if last:
                headers["Last-Event-ID"] = str(last)
            try:
                async with client.stream("GET", "/events/stream", headers=headers) as response:
                    if response.status_code != 200:
                        await response.aread()
                    self.api.tally.answered(route, response)
                    if response.status_code == 401:
                        await self.api.login(agent, stale=token)
                        continue
                    if response.status_code == 200:
                        self.stream_stats["opened"] += 1
                        async for line in response.aiter_lines():
                            if line.startswith("id: "):
                                last = int(line[4:])
                                self.stream_last[number] = last
                                self.stream_stats["events"] += 1
                        self.stream_stats["ended by the service"] += 1
            except httpx.HTTPError as exc:
                self.api.tally.failed(route, exc)
                self.stream_stats[f"broken: {type(exc).__name__}"] += 1
            await asyncio.sleep(1.0 + self.rng.random())

    # password resets

    async def resets_loop(self) -> None:
        """A reset every `reset_every_s`, for each of the forgetful accounts in turn: a mail
        belongs to the latest request of its address (each address asks every 100 s)."""
        for number in itertools.count():
            if self.stopping.is_set():
                return
            account = self.forgetful[number % len(self.forgetful)]
            sent = time.monotonic()
            answer = await self.api.once(
                "POST /password-reset", "POST", "/password-reset", body={"email": account.email}
            )
            self.resets.append(
                {"email": account.email, "sent": sent, "at": self.clock.at(sent),
                 "status": answer.status}
            )  # fmt: skip
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.options.reset_every_s - (time.monotonic() - sent)):
                    await self.stopping.wait()

    # mail in

    async def mail_in_loop(self) -> None:
        while not self.stopping.is_set():
            started = time.monotonic()
            await self._guarded(self.one_mail_in())
            rest = self.options.mail_in_every_s - (time.monotonic() - started)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(rest, 0.1)):
                    await self.stopping.wait()

    async def one_mail_in(self) -> None:
        roll = self.rng.random()
        known = [
            t for t in self.tickets.values()
            if t.status != "canceled" and self.sink.reply_address(t.id)
        ]  # fmt: skip
        twice = self.rng.random() < 0.2  # an MTA that delivers again
        if roll < 0.4 and known:
            ticket = self.rng.choice(known[-200:])
            async with ticket.lock:
                if not await self._ready(ticket) or ticket.status == "canceled":
                    return
                address = self.sink.reply_address(ticket.id)
                assert address is not None
                token = new_token()
                raw = compose(ticket.author.email, address, f"Re: [#{ticket.id}] soak",
                              f"One more thing. [soak:{token}]\n")  # fmt: skip
                outcome, ticket_id = await self.deliver(raw, address, token, twice)
                if outcome == "posted":
                    self.acknowledged.mail_in.append((ticket.id, token, ticket.author.email))
                    if ticket.status in ("resolved", "unresolved"):
                        ticket.status = "pending"
                elif outcome != "refused":
                    ticket.known = False
            return
        if roll < 0.7:
            self._mail_senders += 1
            sender = Account(f"mailer{self._mail_senders}@{DOMAIN}", "mail")
        else:
            sender = self.rng.choice(self.customers)
        token = new_token()
        raw = compose(sender.email, SUPPORT, f"By mail {token[:6]}",
                      f"Hello, my order is late. [soak:{token}]\n")  # fmt: skip
        outcome, ticket_id = await self.deliver(raw, SUPPORT, token, twice)
        if outcome == "opened" and ticket_id is not None:
            self.acknowledged.mail_in.append((ticket_id, token, sender.email))
            if sender.role == "customer":
                self.tickets[ticket_id] = Ticket(ticket_id, sender)

    async def deliver(
        self, raw: bytes, recipient: str, token: str, twice: bool
    ) -> tuple[str, int | None]:
        """`ticketdesk mail-in`, as an MTA runs it: again later while it says 75."""
        self.acknowledged.sent_tokens.add(token)
        outcome, ticket_id = await self._mail_in(raw, recipient)
        if twice and outcome in ("opened", "posted"):
            again, again_id = await self._mail_in(raw, recipient)
            self.mail_in_outcomes[f"delivered again: {again}"] += 1
            if again != "duplicate" or again_id != ticket_id:
                self.mail_in_outcomes["delivered again: not a duplicate"] += 1
        return outcome, ticket_id

    async def _mail_in(self, raw: bytes, recipient: str) -> tuple[str, int | None]:
        for _ in range(30):
            process = await asyncio.create_subprocess_exec(
                str(TICKETDESK), "mail-in", "--recipient", recipient,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=self.service.environment(),
                cwd=self.service.run_dir,
            )  # fmt: skip
            out, err = await process.communicate(raw)
            code = process.returncode
            self.mail_in_outcomes[f"exit {code}"] += 1
            if code == 75:
                await asyncio.sleep(5)
                continue
            if code != 0:
                last_line = err.decode().strip().splitlines()[-1:] or [""]
                self.mail_in_outcomes[f"exit {code}: {last_line[0][:120]}"] += 1
                self.mail_in_failures.append(
                    {"at": self.clock.now(), "exit": code, "stderr": err.decode()[-4000:]}
                )
                return "refused", None
            found = re.match(r"(\w+) ticket #(\d+)", out.decode())
            if found is None:
                return "dropped", None
            return found.group(1), int(found.group(2))
        return "gave up", None


def compose(sender: str, to: str, subject: str, text: str) -> bytes:
    message = EmailMessage()
    message["From"] = f"{sender.partition('@')[0].title()} <{sender}>"
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = email.utils.formatdate()
    message["Message-ID"] = email.utils.make_msgid(domain="mail.example.net")
    message.set_content(text)
    return message.as_bytes()


# --- faults and memory ---------------------------------------------------------------------


@dataclass
class Memory:
    """Resident memory of each worker process, sampled through the run."""

    samples: dict[int, list[tuple[float, int]]] = field(default_factory=dict)
    at_start: set[int] = field(default_factory=set)
    at_end: set[int] = field(default_factory=set)
    seen: dict[int, float] = field(default_factory=dict)

    def sample(self, pids: list[int], moment: float, *, final: bool = False) -> None:
        """RSS of each worker; a new one from its second sighting on (once it has started)."""
        if not self.seen:
            self.at_start = set(pids)
        if final:
            self.at_end = set(pids)
        for pid in pids:
            first = self.seen.setdefault(pid, moment)
            if pid not in self.at_start and moment - first < 5:
                continue
            kib = rss_kib(pid)
            if kib is not None:
                self.samples.setdefault(pid, []).append((moment, kib))


async def memory_loop(desk: Desk, memory: Memory) -> None:
    while not desk.stopping.is_set():
        memory.sample(desk.service.workers(), desk.clock.now())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(RSS_EVERY_S):
                await desk.stopping.wait()


async def faults_loop(desk: Desk, faults: Faults) -> None:
    """SIGKILL the youngest worker every `kill_every_s` (so one survives the whole run, for
    its memory); stop and start PostgreSQL once, at `restart_at_s`."""
    options = desk.options
    plan: list[tuple[float, str]] = []
    moment = options.kill_every_s
    while moment < options.duration_s - 1:
        plan.append((moment, "kill"))
        moment += options.kill_every_s
    if options.restart_at_s < options.duration_s:
        plan.append((options.restart_at_s, "restart"))
    started: list[asyncio.Task[None]] = []
    for moment, what in sorted(plan):
        delay = moment - desk.clock.now()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await desk.stopping.wait()
        if desk.stopping.is_set():
            break
        fault = kill_a_worker if what == "kill" else restart_database
        started.append(asyncio.create_task(fault(desk, faults)))  # they may overlap
    await asyncio.gather(*started)


async def kill_a_worker(desk: Desk, faults: Faults) -> None:
    before = desk.service.workers()
    if not before:
        faults.kills.append({"at": desk.clock.now(), "pid": None, "replaced_after_s": None})
        return
    victim = before[-1]
    kill: dict[str, Any] = {
        "at": desk.clock.now(),
        "pid": victim,
        "replaced_by": None,
        "replaced_after_s": None,
    }
    faults.kills.append(kill)
    os.kill(victim, signal.SIGKILL)
    log(f"{desk.clock.now():7.1f}s SIGKILL worker {victim}")
    deadline = time.monotonic() + REPLACE_TIMEOUT_S
    while time.monotonic() < deadline:
        now = desk.service.workers()
        new = [pid for pid in now if pid not in before]
        if new and len(now) >= desk.options.workers:
            kill["replaced_by"] = new[0]
            kill["replaced_after_s"] = round(desk.clock.now() - kill["at"], 2)
            log(f"{desk.clock.now():7.1f}s worker {new[0]} replaces {victim}")
            return
        await asyncio.sleep(0.25)
    kill["processes"] = desk.service.processes()
    log(f"{desk.clock.now():7.1f}s worker {victim} was not replaced in {REPLACE_TIMEOUT_S:.0f}s")
    log(f"processes: {kill['processes']}")


async def restart_database(desk: Desk, faults: Faults) -> None:
    window = Window(desk.clock.now(), float("inf"))
    faults.restarts.append(window)
    log(f"{window.start:7.1f}s PostgreSQL stops (fast)")
    await asyncio.to_thread(desk.service.restart_database, 5.0)
    started = desk.clock.now()
    window.end = started + RESTART_GRACE_S
    log(f"{started:7.1f}s PostgreSQL is up again ({started - window.start:.1f}s down)")


# --- the run -------------------------------------------------------------------------------


def open_streams(desk: Desk, client: httpx.AsyncClient) -> list[asyncio.Task[None]]:
    return [
        asyncio.create_task(desk.stream(number, client)) for number in range(desk.options.streams)
    ]


async def run_traffic(desk: Desk, faults: Faults, memory: Memory) -> None:
    """The customers, agents, resets, mails in, faults and memory samples, for the run's
    duration; then the requests in flight are let finish."""
    desk.clock.start()
    loops = [
        *(desk.customer_works(c) for c in desk.customers),
        *(desk.agent_works(a) for a in desk.agents),
        desk.resets_loop(),
        desk.mail_in_loop(),
        faults_loop(desk, faults),
        memory_loop(desk, memory),
        progress_loop(desk),
    ]
    tasks = [asyncio.create_task(loop) for loop in loops]
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(desk.options.duration_s):
            await asyncio.gather(*tasks)  # only an error in this script ends them early
    memory.sample(desk.service.workers(), desk.clock.now(), final=True)
    desk.stopping.set()
    log(f"{desk.clock.now():7.1f}s traffic stops; waiting for the requests in flight")
    done, pending = await asyncio.wait(tasks, timeout=90)
    for task in pending:
        task.cancel()
    for task in done:
        error = None if task.cancelled() else task.exception()
        if error is not None:
            raise error


async def progress_loop(desk: Desk) -> None:
    while not desk.stopping.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                await desk.stopping.wait()
        answered = sum(desk.api.tally.statuses.values())
        log(
            f"{desk.clock.now():7.1f}s {answered} answers, {len(desk.tickets)} tickets, "
            f"{len(desk.sink.mails)} mails, {desk.stream_stats['events']} events streamed"
        )


async def drain(desk: Desk, database: Database, healthy: HealthyReceiver) -> dict[str, Any]:
    """Wait (at most `drain_s`) until every event reached the healthy endpoint and no mail
    is waiting; what was still missing at the end."""
    deadline = time.monotonic() + desk.options.drain_s
    started = time.monotonic()
    while True:
        events = await database.event_ids()
        missing = len(set(events) - set(healthy.event_ids()))
        waiting = await database.mail_waiting()
        if (missing == 0 and waiting == 0) or time.monotonic() > deadline:
            break
        await asyncio.sleep(2)
    await asyncio.sleep(2)  # a late duplicate would come now
    return {
        "seconds": round(time.monotonic() - started, 1),
        "events_missing": missing,
        "mail_waiting": waiting,
    }


class Database:
    """SQL reads for the verification, on a connection opened for each question."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    async def rows(self, sql: str) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(self.dsn, timeout=10)
        try:
            return list(await connection.fetch(sql))
        finally:
            await connection.close()

    async def event_ids(self) -> list[int]:
        return [row["id"] for row in await self.rows("SELECT id FROM ticket_events")]

    async def mail_waiting(self) -> int:
        try:
            rows = await self.rows(
                "SELECT count(*) AS n FROM jobs WHERE kind = 'mail' "
                "AND status IN ('queued', 'running')"
            )
        except asyncpg.PostgresError:
            return 0  # the queue's table is not what this script knows: the mails decide
        return int(rows[0]["n"])


# --- verification and report ---------------------------------------------------------------


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


async def verify(
    desk: Desk,
    database: Database,
    healthy: HealthyReceiver,
    faults: Faults,
    memory: Memory,
    drained: dict[str, Any],
) -> tuple[list[Check], dict[str, Any]]:
    checks: list[Check] = []
    figures: dict[str, Any] = {"drain": drained}
    checks.append(await check_writes(desk, database, figures))
    checks.append(await check_stored_once(desk, database, figures))
    checks.append(check_mails_once(desk, figures))
    checks.append(await check_webhooks(database, healthy, figures))
    checks.append(check_resets(desk, figures))
    checks.append(check_replacements(faults, figures))
    checks.append(check_memory(desk, memory, faults, figures))
    checks.append(check_server_errors(desk.api.tally, faults, figures))
    checks.append(await check_mail_jobs(database, figures))
    checks.append(check_mail_in(desk, figures))
    return checks, figures


async def check_writes(desk: Desk, database: Database, figures: dict[str, Any]) -> Check:
    """Every acknowledged write is in the database, and each ticket is as its last
    acknowledged write left it."""
    ack = desk.acknowledged
    users = {r["id"]: r["email"] for r in await database.rows("SELECT id, email FROM users")}
    tickets = {
        r["id"]: r
        for r in await database.rows(
            "SELECT t.id, t.author_id, u.email, t.status, t.assignee_id, t.priority, "
            "t.rating_score FROM tickets t JOIN users u ON u.id = t.author_id"
        )
    }
    messages = {
        r["id"]: (r["ticket_id"], r["token"])
        for r in await database.rows(
            r"SELECT id, ticket_id, substring(text from '\[soak:([0-9a-f]{12})\]') AS token "
            "FROM messages"
        )
    }
    tokens_by_ticket: dict[int, set[str]] = {}
    for ticket_id, token in messages.values():
        tokens_by_ticket.setdefault(ticket_id, set()).add(token)
    events = Counter(
        (r["ticket_id"], r["kind"], r["actor_id"])
        for r in await database.rows("SELECT ticket_id, kind, actor_id FROM ticket_events")
    )
    lost: Counter[str] = Counter()
    lost["users"] = sum(1 for i, e in ack.users.items() if users.get(i) != e)
    lost["tickets"] = sum(
        1
        for i, (author, token) in ack.tickets.items()
        if i not in tickets or tickets[i]["author_id"] != author
        or token not in tokens_by_ticket.get(i, set())
    )  # fmt: skip
    lost["messages and notes"] = sum(1 for i, m in ack.messages.items() if messages.get(i) != m)
    lost["mails in"] = sum(
        1
        for ticket_id, token, sender in ack.mail_in
        if ticket_id not in tickets or token not in tokens_by_ticket.get(ticket_id, set())
        or (sender != tickets[ticket_id]["email"])
    )  # fmt: skip
    lost["changes (events)"] = sum(
        max(0, count - events[key]) for key, count in ack.changes.items()
    )
    wrong_state = []
    for ticket in desk.tickets.values():
        row = tickets.get(ticket.id)
        if not ticket.known or row is None:
            continue
        stored = (row["status"], row["assignee_id"], PRIORITIES[row["priority"]],
                  row["rating_score"])  # fmt: skip
        expected = (ticket.status, ticket.assignee, ticket.priority, ticket.rating)
        if stored != expected:
            wrong_state.append({"ticket": ticket.id, "stored": stored, "expected": expected})
    lost["ticket states"] = len(wrong_state)
    figures["acknowledged"] = {
        "users": len(ack.users),
        "tickets": len(ack.tickets),
        "messages and notes": len(ack.messages),
        "mails in": len(ack.mail_in),
        "changes": sum(ack.changes.values()),
        "ticket states compared": sum(1 for t in desk.tickets.values() if t.known),
    }
    figures["lost"] = dict(lost)
    figures["wrong_states"] = wrong_state[:20]
    total = sum(lost.values())
    detail = f"{sum(figures['acknowledged'].values())} acknowledged; lost: " + ", ".join(
        f"{k} {v}" for k, v in lost.items()
    )
    return Check("no acknowledged write lost", total == 0, detail)


async def check_stored_once(desk: Desk, database: Database, figures: dict[str, Any]) -> Check:
    """A write sent again (same Idempotency-Key), or a mail delivered twice, is stored once."""
    rows = await database.rows(
        r"SELECT substring(text from '\[soak:([0-9a-f]{12})\]') AS token, count(*) AS n "
        "FROM messages GROUP BY 1 HAVING count(*) > 1"
    )
    twice = {r["token"]: r["n"] for r in rows if r["token"] is not None}
    figures["stored_twice"] = twice
    figures["tokens_sent"] = len(desk.acknowledged.sent_tokens)
    return Check(
        "retried writes stored once",
        not twice,
        f"{len(twice)} texts stored more than once (of {len(desk.acknowledged.sent_tokens)})",
    )


def check_mails_once(desk: Desk, figures: dict[str, Any]) -> Check:
    mails = desk.sink.snapshot()
    counts = Counter((m.recipient, m.message_id) for m in mails)
    twice = {
        f"{r} {i}": [round(desk.clock.at(m.arrived), 1) for m in mails
                     if (m.recipient, m.message_id) == (r, i)]
        for (r, i), n in counts.items() if n > 1
    }  # fmt: skip
    no_id = sum(n for (_, i), n in counts.items() if i is None)
    figures["mails"] = {"received": len(mails), "duplicates": twice, "without Message-ID": no_id}
    return Check(
        "no duplicate mail",
        not twice,
        f"{len(mails)} mails; {len(twice)} sent twice or more to the same recipient"
        + "".join(f"; {key} at {times} s" for key, times in list(twice.items())[:3]),
    )


async def check_webhooks(
    database: Database, healthy: HealthyReceiver, figures: dict[str, Any]
) -> Check:
    events = set(await database.event_ids())
    delivered = healthy.event_ids()
    missing = sorted(events - set(delivered))
    repeats = {event: n for event, n in delivered.items() if n > 1}
    unverified = sum(1 for d in healthy.deliveries if not d.verified)
    figures["webhooks"] = {
        "events": len(events),
        "delivered": len(set(delivered) & events),
        "missing": missing[:50],
        "missing_count": len(missing),
        "delivered_more_than_once": len(repeats),
        "extra_deliveries": sum(n - 1 for n in repeats.values()),
        "unverified": unverified,
    }
    return Check(
        "every event delivered to the healthy endpoint",
        not missing and unverified == 0,
        f"{len(events)} events; missing {len(missing)}; delivered more than once "
        f"{len(repeats)} (at least once: allowed); bad signatures {unverified}",
    )


def reset_delays(desk: Desk) -> tuple[list[float], list[dict[str, Any]], int]:
    """Each mail is the answer to the latest request of its address sent before it came
    (an address asks every RESET_ACCOUNTS times reset_every_s): the delays, the acknowledged
    requests without a mail, and the mails that answer no request."""
    accepted = [r for r in desk.resets if r["status"] == 202]
    answered: dict[int, float] = {}
    stray = 0
    for account in desk.forgetful:
        asked = [i for i, r in enumerate(accepted) if r["email"] == account.email]
        for mail in sorted(desk.sink.to(account.email), key=lambda m: m.arrived):
            before = [i for i in asked if accepted[i]["sent"] <= mail.arrived]
            if not before or before[-1] in answered:
                stray += 1
                continue
            answered[before[-1]] = mail.arrived - accepted[before[-1]]["sent"]
    unanswered = [
        {"at": round(r["at"], 1), "email": r["email"]}
        for i, r in enumerate(accepted)
        if i not in answered
    ]
    return list(answered.values()), unanswered, stray


SYSEXITS = {0, 65, 67, 75, 77}
"""What `mail-in` may exit with: an MTA bounces a mail on any other code (or defers it)."""


def check_mail_in(desk: Desk, figures: dict[str, Any]) -> Check:
    figures["mail_in_failures"] = desk.mail_in_failures
    crashed = [f for f in desk.mail_in_failures if f["exit"] not in SYSEXITS]
    runs = sum(v for k, v in desk.mail_in_outcomes.items() if re.fullmatch(r"exit -?\d+", k))
    detail = f"{runs} runs; {len(crashed)} ended with a code outside sysexits.h"
    return Check("mail-in answers the MTA in sysexits.h codes", not crashed, detail)


def check_resets(desk: Desk, figures: dict[str, Any]) -> Check:
    """Each acknowledged reset request gets its mail within RESET_DEADLINE_S."""
    accepted = [r for r in desk.resets if r["status"] == 202]
    mails = [m for a in desk.forgetful for m in desk.sink.to(a.email)]
    delays, unanswered, stray = reset_delays(desk)
    late = [round(d, 1) for d in delays if d > RESET_DEADLINE_S]
    missing = len(unanswered)
    statuses = Counter(str(r["status"]) for r in desk.resets)
    figures["resets"] = {
        "requests": dict(statuses),
        "mails": len(mails),
        "median_s": round(statistics.median(delays), 2) if delays else None,
        "p90_s": round(percentile(delays, 0.9), 2) if delays else None,
        "max_s": round(max(delays), 2) if delays else None,
        "late_s": late[:30],
        "missing": unanswered[:30],
        "mails_answering_no_request": stray,
    }
    ok = bool(accepted) and not missing and not late
    median = figures["resets"]["median_s"]
    return Check(
        f"reset mails out within {RESET_DEADLINE_S:.0f} s",
        ok,
        f"{len(accepted)} accepted, {len(mails)} mails; median {median} s, "
        f"max {figures['resets']['max_s']} s; late {len(late)}, missing {missing}"
        + "".join(f"; none for {u['email']} at {u['at']} s" for u in unanswered[:3]),
    )


def check_replacements(faults: Faults, figures: dict[str, Any]) -> Check:
    figures["kills"] = faults.kills
    figures["restarts"] = [{"start": round(w.start, 1), "end": round(w.end, 1)}
                           for w in faults.restarts]  # fmt: skip
    unreplaced = [k for k in faults.kills if k.get("replaced_after_s") is None]
    times = [k["replaced_after_s"] for k in faults.kills if k.get("replaced_after_s") is not None]
    return Check(
        "every killed worker replaced",
        not unreplaced,
        f"{len(faults.kills)} kills; replaced after {', '.join(f'{t:.1f}' for t in times)} s"
        + (f"; {len(unreplaced)} never" if unreplaced else ""),
    )


def check_memory(desk: Desk, memory: Memory, faults: Faults, figures: dict[str, Any]) -> Check:
    """A worker that lived through the run must not keep growing: compared over the run's
    second half, after the warm-up."""
    half = desk.options.duration_s / 2
    killed = {k["pid"] for k in faults.kills}
    rows = []
    growing = []
    for pid, samples in memory.samples.items():
        first_t, first = samples[0]
        last_t, last = samples[-1]
        middle = min(samples, key=lambda s: abs(s[0] - half))[1]
        survivor = pid in memory.at_start and pid in memory.at_end
        rows.append({
            "pid": pid, "from_s": round(first_t), "to_s": round(last_t),
            "start_mib": round(first / 1024, 1), "half_mib": round(middle / 1024, 1),
            "end_mib": round(last / 1024, 1), "killed": pid in killed, "survivor": survivor,
        })  # fmt: skip
        if survivor and last - middle > max(RSS_FLAT_SHARE * middle, RSS_FLAT_KIB):
            growing.append(pid)
    figures["rss"] = rows
    figures["rss_samples"] = {
        pid: [(round(t), round(kib / 1024, 1)) for t, kib in samples]
        for pid, samples in memory.samples.items()
    }
    survivors = [r for r in rows if r["survivor"]]
    detail = "; ".join(
        f"{r['pid']}: {r['start_mib']} → {r['half_mib']} → {r['end_mib']} MiB" for r in survivors
    )
    return Check(
        "survivors' memory flat over the second half",
        bool(survivors) and not growing,
        detail or "no worker lived through the run",
    )


def check_server_errors(tally: Tally, faults: Faults, figures: dict[str, Any]) -> Check:
    unexpected = tally.unexpected_5xx()
    in_restart = [e for e in tally.server_errors if e not in unexpected]
    transport_elsewhere = [
        e for e in tally.transport_errors
        if not faults.in_restart(e["at"]) and not faults.after_kill(e["at"])
    ]  # fmt: skip
    figures["server_errors"] = {
        "503_in_restart": len(in_restart),
        "unexpected": unexpected[:50],
        "unexpected_count": len(unexpected),
        "transport_errors": len(tally.transport_errors),
        "transport_errors_away_from_faults": transport_elsewhere[:50],
    }
    return Check(
        "no 5xx but 503s during the restart",
        not unexpected,
        f"{len(in_restart)} 503s in the restart window; {len(unexpected)} other 5xx; "
        f"{len(tally.transport_errors)} requests without an answer "
        f"({len(transport_elsewhere)} away from a fault)",
    )


async def check_mail_jobs(database: Database, figures: dict[str, Any]) -> Check:
    """Every mail the service queued went out (the queue's own record, read by SQL)."""
    try:
        rows = await database.rows(
            "SELECT status, count(*) AS n, max(last_error) AS error FROM jobs "
            "WHERE kind = 'mail' GROUP BY status"
        )
    except asyncpg.PostgresError as exc:
        return Check("every queued mail sent", True, f"not checked: {exc}")
    states = {r["status"]: int(r["n"]) for r in rows}
    errors = [r["error"] for r in rows if r["status"] != "done" and r["error"]]
    again = await database.rows(  # run more than once: a worker died, or the database went
        "SELECT key, attempts, status, last_error, finished_at FROM jobs "
        "WHERE kind = 'mail' AND attempts > 1 ORDER BY id"
    )
    figures["mail_jobs"] = {
        "states": states,
        "errors": errors,
        "run_more_than_once": [dict(r) for r in again][:50],
    }
    not_done = sum(n for s, n in states.items() if s != "done")
    return Check(
        "every queued mail sent",
        not_done == 0,
        ", ".join(f"{s} {n}" for s, n in sorted(states.items())) + (
            f"; e.g. {errors[0][:80]}" if errors else ""),
    )  # fmt: skip


def server_log_summary(path: Path) -> dict[str, Any]:
    levels: Counter[str] = Counter()
    messages: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            levels["not json"] += 1
            continue
        level = entry.get("level", "?")
        levels[level] += 1
        if level in ("ERROR", "CRITICAL"):
            messages[str(entry.get("message", ""))[:100]] += 1
    return {"levels": dict(levels), "errors": messages.most_common(10)}


def code_under_test() -> str:
    """Which ticketdesk runs: a PYTHONPATH's, or the checkout's (its commit, and how many
    files in src/ differ from it)."""
    if os.environ.get("PYTHONPATH"):
        return f"ticketdesk from {os.environ['PYTHONPATH']} (PYTHONPATH)"
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_DIR), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        changed = subprocess.run(
            ["git", "-C", str(REPO_DIR), "status", "--porcelain", "--", "src"],
            capture_output=True, text=True, check=True,
        ).stdout.count("\n")  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return f"ticketdesk from {REPO_DIR / 'src'}"
    return f"ticketdesk from the checkout at {commit}, {changed} files changed in src/"


def report(options: Options, checks: list[Check], figures: dict[str, Any], desk: Desk) -> str:
    lines = [
        f"## Soak: {options.minutes:g} min, {options.workers} workers, {options.customers} "
        f"customers, {options.agents} agents, {options.streams} streams",
        "",
        f"Code: {figures['code']}. Faults: workers SIGKILLed at "
        + ", ".join(f"{k['at']:.0f}" for k in figures["kills"])
        + " s; PostgreSQL down from "
        + ", ".join(
            f"{w['start']:.0f} s to {w['end'] - RESTART_GRACE_S:.0f} s" for w in figures["restarts"]
        )
        + ".",
        "",
        "| check | result | figures |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {c.name} | {'pass' if c.ok else 'FAIL'} | {c.detail} |" for c in checks]
    statuses: Counter[str] = Counter()
    for (_, status), count in desk.api.tally.statuses.items():
        statuses[status] += count
    total = sum(statuses.values())
    lines += [
        "",
        f"Answers: {total} ({total / max(options.duration_s, 1):.1f}/s), by status: "
        + ", ".join(f"{s} {n}" for s, n in sorted(statuses.items())),
        "",
        "| route | answers by status |",
        "| --- | --- |",
    ]
    by_route: dict[str, Counter[str]] = {}
    for (route, status), count in desk.api.tally.statuses.items():
        by_route.setdefault(route, Counter())[status] += count
    for route, counts in sorted(by_route.items()):
        lines.append(f"| `{route}` | " + ", ".join(f"{s} {n}" for s, n in sorted(counts.items()))
                     + " |")  # fmt: skip
    lines += [
        "",
        "| worker pid | seen | start MiB | half MiB | end MiB | |",
        "| ---: | --- | ---: | ---: | ---: | --- |",
    ]
    for row in figures["rss"]:
        role = "survivor" if row["survivor"] else ("killed" if row["killed"] else "replacement")
        lines.append(
            f"| {row['pid']} | {row['from_s']} to {row['to_s']} s | {row['start_mib']} | "
            f"{row['half_mib']} | {row['end_mib']} | {role} |"
        )
    step = max(options.duration_s / 10, RSS_EVERY_S)
    for row in figures["rss"]:
        if row["survivor"]:
            series = figures["rss_samples"][row["pid"]]
            shown, next_at = [], 0.0
            for moment, mib in series:
                if moment >= next_at or (moment, mib) == series[-1]:
                    shown.append(f"{moment} s {mib}")
                    next_at = moment + step
            lines += ["", f"Worker {row['pid']} RSS (MiB) through the run: " + ", ".join(shown)]
    streams = desk.stream_stats
    lines += [
        "",
        f"Streams: {streams['opened']} opens, {streams['events']} events received; ends: "
        + ", ".join(
            f"{k} {v}" for k, v in sorted(streams.items()) if k not in ("opened", "events")
        ),
        "Mail in: " + ", ".join(f"{k}: {v}" for k, v in sorted(desk.mail_in_outcomes.items())),
        f"Streams at the newest event after the drain: {figures['streams_caught_up']}",
        f"Webhooks: {figures['webhooks']}",
        f"Drain: {figures['drain']}",
        f"Server log: {figures.get('server_log')}",
    ]
    return "\n".join(lines)


async def soak(options: Options) -> int:
    run_dir = RESULTS_DIR / time.strftime("soak-%Y%m%dT%H%M%SZ", time.gmtime())
    run_dir.mkdir(parents=True)
    code = code_under_test()  # before the run: the checkout may change meanwhile
    clock = Clock()
    faults = Faults()
    tally = Tally(clock, faults)
    memory = Memory()
    sink = MailSink()
    sink.controller.start()
    healthy, dead = HealthyReceiver(), DeadReceiver()
    await healthy.start()
    await dead.start()
    service = Service(options, run_dir, sink.port)
    api: Api | None = None
    streams: list[asyncio.Task[None]] = []
    stream_client = httpx.AsyncClient(
        timeout=httpx.Timeout(10.0, read=STREAM_READ_TIMEOUT_S),
        limits=httpx.Limits(max_connections=options.streams + 10, max_keepalive_connections=0),
    )
    try:
        log(f"run directory {run_dir}; PostgreSQL on port {service.pg.port}")
        await asyncio.to_thread(service.prepare, f"admin@{DOMAIN}")
        await asyncio.to_thread(service.start)
        log(f"serve up on {service.base_url}, workers {service.workers()}")
        api = Api(service.base_url, tally)
        stream_client.base_url = httpx.URL(service.base_url)
        desk = Desk(options, api, service, sink, clock)
        await desk.set_up(healthy, dead)
        log(f"{len(desk.customers)} customers, {len(desk.agents)} agents; traffic starts")
        database = Database(service.dsn)
        streams = open_streams(desk, stream_client)
        await asyncio.sleep(options.streams * 0.02)  # let them open before the traffic
        await run_traffic(desk, faults, memory)
        drained = await drain(desk, database, healthy)
        log(f"drained: {drained}")
        checks, figures = await verify(desk, database, healthy, faults, memory, drained)
        figures["streams_caught_up"] = await streams_caught_up(desk, database)
        desk.streams_stop.set()
        for task in streams:
            task.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
        streams = []
        await asyncio.to_thread(service.stop)
        figures["server_log"] = server_log_summary(service.log_path)
        figures["statuses"] = {f"{r} {s}": n for (r, s), n in tally.statuses.items()}
        figures["dead_receiver_connections"] = dead.connections
        figures["options"] = options.__dict__
        figures["code"] = code
        text = report(options, checks, figures, desk)
        (run_dir / "report.md").write_text(text + "\n")
        (run_dir / "figures.json").write_text(json.dumps(figures, indent=2, default=str))
        print(text)
        return 0 if all(c.ok for c in checks) else 1
    finally:
        for task in streams:
            task.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
        await stream_client.aclose()
        if api is not None:
            await api.close()
        await asyncio.to_thread(service.destroy)
        await healthy.stop()
        await dead.stop()
        sink.controller.stop()


async def streams_caught_up(desk: Desk, database: Database) -> dict[str, int]:
    ids = await database.event_ids()
    newest = max(ids, default=0)
    caught = sum(1 for last in desk.stream_last.values() if last >= newest)
    return {"newest_event": newest, "streams_at_newest": caught, "streams": desk.options.streams}


def main() -> None:
    options = parse_options()
    sys.exit(asyncio.run(soak(options)))


if __name__ == "__main__":
    main()
