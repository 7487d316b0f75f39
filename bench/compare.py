"""ticketdesk side by side with another service of the same API, given by its base URL.

Both get the same small data set, made through the public API only, and the same wrk
requests; the two alternate per round (ABBA) and medians are compared. Nothing of the other
service is needed but its URL, the key that registers staff, and optionally its pid (for
its CPU per request).
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import http.cookies
import json
import secrets
import subprocess
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import loadgen
from common import BENCH_DB, EMAIL_DOMAIN, PASSWORD, dsn, log
from generate import migrate, recreate_database
from loadgen import WrkResult
from measure import Plan, describe, summarize
from scenarios import SCENARIOS, Scenario
from server import Server, ServerConfig, descendants, process_memory, settle

TICKETDESK = "ticketdesk"
CUSTOMERS = 50
TICKETS_PER_CUSTOMER = 20
MESSAGES_PER_TICKET = 4  # the first from POST /tickets; then staff and customer in turn
CONCURRENCY = 8  # requests in flight while the data set is made
COMPARED = ("ticket_read", "messages_read", "own_list", "users_list", "message_post", "ticket_post")
OPTIONAL = ("login",)
TOPIC = "Question {number}"  # at most 20 characters
TICKET_TEXT = "Our exports fail since this morning. Could you have a look at it, please?"
REQUEST_TEXT = "Thanks. It still happens here, the export stops after a few seconds."
RESPONSE_TEXT = "We are looking into it and will come back to you shortly."


def shape() -> dict[str, int]:
    return {
        "staff": 1,
        "customers": CUSTOMERS,
        "tickets_per_customer": TICKETS_PER_CUSTOMER,
        "messages_per_ticket": MESSAGES_PER_TICKET,
    }


def email(name: str) -> str:
    return f"{name}@{EMAIL_DOMAIN}"


STAFF_EMAIL = email("compare-staff")
READER = 1  # the customer whose tickets the read scenarios read
WRITER = 2  # the customer who writes: the readers' lists do not grow with the writes


def customer_email(number: int) -> str:
    return email(f"compare-customer-{number:02d}")


@dataclass(frozen=True)
class CompareTargets:
    """Ids in one service: each numbers its own rows. Field names as in the scenario paths."""

    read_ticket: int  # the reader's first ticket
    messages_ticket: int  # the reader's second ticket (4 messages, as every ticket)
    post_ticket: int  # the writer's first ticket, which takes the new messages


@dataclass
class Side:
    """One of the two services: where it answers, what to measure, how to wait for it."""

    name: str
    base_url: str
    pid: int | None
    staff_token: str
    probe_url: str
    targets: CompareTargets | None = None

    def settle(self) -> float:
        return settle(self.probe_url)


# ---- the data set, through the API ---------------------------------------------------------


class ApiError(RuntimeError):
    pass


def _client(base_url: str) -> httpx.AsyncClient:
    # No cookie jar: every request carries the token of the account it is made for.
    jar = http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return httpx.AsyncClient(base_url=base_url, timeout=60, cookies=jar)


def _cookie(token: str) -> dict[str, str]:
    return {"Cookie": f"token={token}"}


def token_of(response: httpx.Response) -> str:
    """The `token` cookie set by POST /login (the body may or may not carry it as well)."""
    for header in response.headers.get_list("set-cookie"):
        cookie: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
        cookie.load(header)
        if "token" in cookie:
            return cookie["token"].value
    raise ApiError(f"POST /login set no cookie `token` ({response.status_code})")


def _check(response: httpx.Response, expected: tuple[int, ...] = (200, 201)) -> httpx.Response:
    if response.status_code not in expected:
        request = response.request
        raise ApiError(
            f"{request.method} {request.url.path}: {response.status_code} {response.text[:200]}"
        )
    return response


async def register(
    client: httpx.AsyncClient, address: str, username: str, staff_token: str | None = None
) -> None:
    body: dict[str, object] = {"email": address, "password": PASSWORD, "username": username}
    headers = {}
    if staff_token is not None:
        body["isStaff"] = True
        headers["Authorization"] = f"Bearer {staff_token}"
    _check(await client.post("/users", json=body, headers=headers), (201,))


async def login(client: httpx.AsyncClient, address: str) -> str:
    response = await client.post("/login", json={"email": address, "password": PASSWORD})
    return token_of(_check(response, (200,)))


async def get_list(client: httpx.AsyncClient, path: str, token: str) -> list[dict[str, Any]]:
    """A JSON list; `null` (an empty list in some services) as []."""
    response = _check(await client.get(path, headers=_cookie(token)), (200,))
    return response.json() or []


async def ticket_ids(client: httpx.AsyncClient, token: str) -> list[int]:
    """The caller's tickets, oldest first, as the service lists them."""
    return [int(ticket["id"]) for ticket in await get_list(client, "/tickets", token)]


async def populate(side: Side) -> dict[str, Any]:
    """Staff, customers, tickets and messages through POST /users, /login, /tickets and
    /tickets/{id}/messages; then the target ids, looked up through GET /tickets."""
    started = time.monotonic()
    timings: dict[str, float] = {}
    gate = asyncio.Semaphore(CONCURRENCY)

    async def gated(step: Any) -> Any:
        async with gate:
            return await step

    def lap(label: str) -> None:
        timings[label] = round(time.monotonic() - started - sum(timings.values()), 2)

    async with _client(side.base_url) as client:
        try:
            await register(client, STAFF_EMAIL, "compare-staff", side.staff_token)
        except ApiError as error:
            raise SystemExit(f"{side.name}: registering staff failed: {error}") from None
        staff = await login(client, STAFF_EMAIL)
        users = await get_list(client, "/users", staff)
        if len(users) != 1:
            raise SystemExit(
                f"{side.name}: its database is not empty ({len(users)} users); "
                "the comparison needs an empty one (see --compare-reset)"
            )
        numbers = range(1, CUSTOMERS + 1)
        await asyncio.gather(
            *(gated(register(client, customer_email(n), f"customer{n:02d}")) for n in numbers)
        )
        tokens = await asyncio.gather(*(gated(login(client, customer_email(n))) for n in numbers))
        lap("users_s")

        async def tickets_of(token: str) -> list[int]:
            for number in range(1, TICKETS_PER_CUSTOMER + 1):
                body = {"topic": TOPIC.format(number=number), "text": TICKET_TEXT}
                response = await client.post("/tickets", json=body, headers=_cookie(token))
                _check(response, (201,))
            ids = await ticket_ids(client, token)
            if len(ids) != TICKETS_PER_CUSTOMER:
                raise ApiError(f"{side.name}: {len(ids)} tickets, not {TICKETS_PER_CUSTOMER}")
            return ids

        owned = await asyncio.gather(*(gated(tickets_of(token)) for token in tokens))
        lap("tickets_s")

        async def answer(ticket: int, customer: str) -> None:
            for number in range(2, MESSAGES_PER_TICKET + 1):
                by_staff = number % 2 == 0
                text = RESPONSE_TEXT if by_staff else REQUEST_TEXT
                response = await client.post(
                    f"/tickets/{ticket}/messages",
                    json={"text": text},
                    headers=_cookie(staff if by_staff else customer),
                )
                _check(response, (201,))

        await asyncio.gather(
            *(
                gated(answer(ticket, token))
                for token, ids in zip(tokens, owned, strict=True)
                for ticket in ids
            )
        )
        lap("messages_s")
        reader, writer = owned[READER - 1], owned[WRITER - 1]
        side.targets = CompareTargets(
            read_ticket=reader[0], messages_ticket=reader[1], post_ticket=writer[0]
        )
        messages = await get_list(client, f"/tickets/{reader[1]}/messages", tokens[READER - 1])
        if len(messages) != MESSAGES_PER_TICKET:
            raise ApiError(f"{side.name}: ticket {reader[1]} lists {len(messages)} messages")
    timings["total_s"] = round(time.monotonic() - started, 2)
    log(f"{side.name}: data set made through the API in {timings['total_s']:.1f}s")
    return {"timings": timings, "targets": asdict(side.targets)}


def fresh_ticketdesk_database() -> None:
    """The bench database, empty, with the service's schema."""
    asyncio.run(recreate_database())
    migrate()


async def _mark_database() -> None:
    # A later `run.py --skip-generate` must not take this for a generated data set.
    comment = json.dumps({"compare_dataset": shape()}).replace("'", "''")
    conn = await asyncpg.connect(dsn(BENCH_DB))
    try:
        await conn.execute(f"COMMENT ON DATABASE {BENCH_DB} IS '{comment}'")
    finally:
        await conn.close()


# ---- the load runs ---------------------------------------------------------------------------


def scenario_tokens(side: Side) -> dict[str, dict[str, str]]:
    """Fresh tokens for one scenario (some services' tokens expire after 30 minutes)."""

    async def fetch() -> dict[str, dict[str, str]]:
        async with _client(side.base_url) as client:
            staff = await login(client, STAFF_EMAIL)
            reader = await login(client, customer_email(READER))
            writer = await login(client, customer_email(WRITER))
        return {
            "reads": {"customer": reader, "staff": staff},
            "writes": {"customer": writer, "staff": staff},
        }

    return asyncio.run(fetch())


def compared_scenario(scenario: Scenario) -> Scenario:
    """The login scenario logs in as the reading customer of this data set."""
    if scenario.name != "login":
        return scenario
    body = {"email": customer_email(READER), "password": PASSWORD}
    return replace(scenario, body=body)


def select_compared(names: str | None) -> list[Scenario]:
    """The compared scenarios, in the bench's order: reads before the writes pile up rows."""
    wanted = list(COMPARED)
    if names:
        by_letter = {scenario.letter: scenario.name for scenario in SCENARIOS}
        wanted = [by_letter.get(part.strip(), part.strip()) for part in names.split(",")]
        wanted = [name for name in wanted if name]
        unknown = [name for name in wanted if name not in COMPARED + OPTIONAL]
        if unknown:
            allowed = ", ".join(COMPARED + OPTIONAL)
            raise SystemExit(f"--compare-url runs only {allowed}; not {', '.join(unknown)}")
    return [compared_scenario(s) for s in SCENARIOS if s.name in wanted]


def one_run(
    side: Side, scenario: Scenario, tokens: dict[str, str], seconds: int, plan: Plan
) -> WrkResult:
    assert side.targets is not None
    request = scenario.request(side.targets, tokens)
    side.settle()
    return loadgen.run(side.base_url, request, plan.load(duration_s=seconds), side.pid)


def measure_pair(scenario: Scenario, sides: list[Side], plan: Plan) -> dict[str, Any]:
    """`plan.repeat` rounds; in each, every side gets a warm-up and a measured run. The order
    alternates per round (A B, B A, A B, ...), so neither side always goes first."""
    tokens = {side.name: scenario_tokens(side) for side in sides}
    kind = "writes" if scenario.writes else "reads"
    found: dict[str, dict[str, Any]] = {
        side.name: {"path": "", "warmups": [], "runs": []} for side in sides
    }
    order: list[str] = []
    log(f"{scenario.letter}) {scenario.name}: {scenario.title}")
    for number in range(1, plan.repeat + 1):
        for side in sides if number % 2 else list(reversed(sides)):
            side_tokens = tokens[side.name][kind]
            assert side.targets is not None
            path = scenario.request(side.targets, side_tokens).path
            found[side.name]["path"] = path
            if plan.warmup_s > 0:
                warmup = one_run(side, scenario, side_tokens, plan.warmup_s, plan)
                found[side.name]["warmups"].append(warmup.to_json())
            result = one_run(side, scenario, side_tokens, plan.duration_s, plan)
            found[side.name]["runs"].append(result)
            order.append(side.name)
            log(f"  round {number} {side.name:>12}: {describe(result)}")
    for side in sides:
        runs: list[WrkResult] = found[side.name]["runs"]
        found[side.name]["median"] = summarize(runs)
        found[side.name]["runs"] = [run.to_json() for run in runs]
    ours, other = (found[side.name]["median"]["rps"] for side in sides)
    return {
        "letter": scenario.letter,
        "title": scenario.title,
        "order": order,
        "sides": found,
        "ratio": round(ours / other, 3) if other else None,
    }


def memory_of(pid: int | None) -> list[dict[str, object]]:
    return [process_memory(p) for p in [pid, *descendants(pid)]] if pid else []


def command_of(pid: int | None) -> str | None:
    if not pid:
        return None
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return None


@dataclass(frozen=True)
class Other:
    name: str
    url: str
    pid: int | None
    staff_token: str
    probe: str
    reset: str | None


def compare(
    other: Other, scenarios: list[Scenario], plan: Plan, config: ServerConfig
) -> dict[str, Any]:
    """The whole comparison: both data sets, then every scenario in ABBA rounds."""
    if other.pid and not Path(f"/proc/{other.pid}").exists():
        raise SystemExit(f"--compare-pid {other.pid}: no such process")
    if other.reset:
        log(f"resetting {other.name}: {other.reset}")
        subprocess.run(other.reset, shell=True, check=True, stdout=subprocess.DEVNULL)
    fresh_ticketdesk_database()
    staff_token = secrets.token_urlsafe(24)
    config.extra_env["STAFF_TOKEN"] = staff_token
    results: dict[str, Any] = {
        "shape": shape(),
        "other": {"name": other.name, "url": other.url, "pid": other.pid},
        "other_command": command_of(other.pid),
    }
    with Server(config) as server:
        base = server.base_url
        ours = Side(TICKETDESK, base, server.pid, staff_token, f"{base}/healthz")
        url = other.url.rstrip("/")
        theirs = Side(other.name, url, other.pid, other.staff_token, url + other.probe)
        sides = [ours, theirs]
        # The other first: a database that is not empty stops the run before anything else.
        results["datasets"] = {side.name: asyncio.run(populate(side)) for side in (theirs, ours)}
        asyncio.run(_mark_database())
        results["memory_idle"] = {side.name: memory_of(side.pid) for side in sides}
        results["scenarios"] = {
            scenario.name: measure_pair(scenario, sides, plan) for scenario in scenarios
        }
        results["memory"] = {side.name: memory_of(side.pid) for side in sides}
    return results
