"""SQLite and PostgreSQL leave the same visible state after the same API calls.

Several writes are made differently on each backend: a new ticket, a new message and the
unassigning of an agent who leaves are each one statement on PostgreSQL and several in one
transaction on SQLite. A Hypothesis state machine draws a sequence of API calls (register
and log in, open a ticket, a customer's reply, an agent's response, an internal note,
assign, set the priority, change the status to each status there is, rate, cancel, block
and unblock, grant and withdraw staff status, log out, retries under an Idempotency-Key,
bodies the API refuses, and reads with the ticket list's filters, orders and pages) and
makes each call, in turn, on two apps in this process: one on a fresh SQLite file, one on
PostgreSQL, both reached through their HTTP API alone. Both must answer each call alike
(a refusal too: same status, same body), and then agree on what is read afterwards:

- by a second superuser who takes no part (the observer): the event feed, the user list,
  the report summary, and each ticket the call touched with its history and messages, as
  any agent sees them (after a change to an account, which may take an agent off their
  tickets: every ticket);
- by the superuser, both agents, the touched tickets' authors and the caller: their ticket
  list and its total (after a change to an account: everyone's);
- by the observer and by customer1: a search of the ticket list for one of `WORDS`, each
  in turn (customers do not search internal notes);
- by each touched ticket's author and by another customer: the ticket, its history and its
  messages (the other customer must be refused all three).

Compared exactly, but for what legitimately differs between two databases written at two
moments, which is normalised (nothing else is):

- ids, which the two sequences may hand out differently: a user's id becomes the name of
  the actor (`agent1`, `customer2`); a ticket's, a message's and an event's become their
  rank in the order their app made them (`ticket#0`, `message#3`, `event#7`), under `id`
  and under every `*_id` key (`ticket_id`, `assignee_id`, `actor_id`, `message_id`, ...).
  An id the app never handed out stays as it is (`ticket?999999999`).
- timestamps (ISO 8601 strings): each becomes the number of the call during which its app
  took it (`@12`: made while call 12 ran on that app). One that falls in no call's time,
  such as the report's period echoed back, stays as it is. A due time (`*_due_at`) becomes
  its distance from the ticket's `created_at` (`created_at+28800s`).
- a login's token and its expiry, and the report's durations (`median_seconds`,
  `p90_seconds`: whether there is one, not how many seconds).
- headers: only `X-Total-Count`, `Idempotent-Replayed`, `WWW-Authenticate` and whether a
  `Link` to a next page is there are compared (a cursor holds ids and times); pages are
  then followed through each app's own `Link`.

Not read: the event stream (`/events/stream`), which serves the feed's rows as they commit
and never ends; the browser pages. Rate limits are off, as a sequence makes more writes a
minute than a person does. Each sequence starts from empty tables, with the actors
inserted and customer1's ticket taken by agent2. A failure shows the shortest sequence
Hypothesis found, then every view that differs, SQLite's and PostgreSQL's line by line.
CI (`CI` set) replays the same sequences each run; elsewhere each run draws new ones, and
DIFFERENTIAL_EXAMPLES and DIFFERENTIAL_STEPS (sequences, rules in each) search longer.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import os
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import make_url
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import PASSWORD, add_account, client_with, empty_tables, own_engine
from databases import postgres_url, take_database
from ticketdesk import migrate
from ticketdesk.auth.security import PASSWORD_HASHER

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("DIFFERENTIAL_EXAMPLES", "12"))
STEPS = int(os.environ.get("DIFFERENTIAL_STEPS", "20"))
"""12 sequences of up to 20 rules, about 250 calls on each app: 25 s on two idle cores,
45 s on two busy ones."""

SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    database=None,  # nothing written into the work tree; a failure prints its sequence
    # CI replays the same sequences each run; elsewhere each run explores new ones.
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    # No `explain` phase: it replays a failure many times over to trace lines, which here
    # costs minutes and says less than the failing sequence itself.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)

STAFF = ("superuser", "agent1", "agent2")
CUSTOMERS = ("customer1", "customer2")
FIXED = (
    ("superuser", "superuser"),
    ("agent1", "staff"),
    ("agent2", "staff"),
    ("customer1", "customer"),
    ("customer2", "customer"),
)
"""Inserted afresh for each sequence (the registered customers come after them)."""
OBSERVER = "observer"
"""A second superuser that takes no part, and reads what any agent sees: the feed, the
users, the report, each ticket with its history and messages."""
AUTHOR = "author"
"""As a rule's actor: the author of the ticket the rule acts on."""
MISSING_ID = 999_999_999
"""No ticket and no user has this id."""
PERIOD = {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}
EVERYTHING = {"limit": "1000", "count": "true"}

WORDS = ("printer", "paper", "invoice", "refund", "laptop", "screen", "network", "password")
"""Words that PostgreSQL's English configuration and SQLite's Porter stemmer both index
alike (no stop words), so searching for them asks both the same question."""
TEXTS = st.one_of(
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join),
    st.sampled_from(["Grüße, ça marche pas 🙂", "line\nbreak", "x" * 500]),
)
TOPICS = st.sampled_from(["printer", "invoice", "laptop screen", "é" * 20])
STATUSES = st.sampled_from(["pending", "resolved", "unresolved", "canceled"])
PRIORITIES = st.sampled_from(["low", "normal", "high", "urgent"])
RETRIES = st.sampled_from([None, "same", "other"])
"""None: sent once; `same`: sent twice under one Idempotency-Key; `other`: then the key
again with another body."""
LIFECYCLE = [
    ("agent1", "message", "printer paper"),  # the first response
    ("agent1", "status", "resolved"),
    (AUTHOR, "message", "network"),  # reopens it
    ("agent2", "note", "refund invoice"),
    ("agent1", "message", "laptop"),
    ("agent1", "status", "unresolved"),  # waits on the customer
    (AUTHOR, "message", "screen password"),  # reopens it
    ("agent1", "status", "resolved"),
    (AUTHOR, "rating", "fixed, thanks"),  # once only: refused the next time round
]
"""A ticket's course, step by step (see `lifecycle`): actor, what they do, with what."""
REFUSED = [
    ("a blank topic", "POST", "/tickets", {"topic": " ", "text": "printer"}),
    ("a long topic", "POST", "/tickets", {"topic": "x" * 21, "text": "printer"}),
    ("an empty message", "POST", "/tickets/{ticket}/messages", {"text": ""}),
    ("a blank message", "POST", "/tickets/{ticket}/messages", {"text": " \n "}),
    ("a score of 0", "POST", "/tickets/{ticket}/rating", {"score": 0}),
    ("a score of 6", "POST", "/tickets/{ticket}/rating", {"score": 6}),
    ("no change", "PATCH", "/tickets/{ticket}", {}),
    ("a null status", "PATCH", "/tickets/{ticket}", {"status": None}),
    ("no such status", "PUT", "/tickets/{ticket}", {"status": "closed"}),
    ("no such priority", "PATCH", "/tickets/{ticket}", {"priority": "asap"}),
    ("superuser rights", "PATCH", "/users/{me}", {"is_superuser": True}),
    ("no such ticket", "GET", f"/tickets/{MISSING_ID}", None),
    ("no such ticket", "PUT", f"/tickets/{MISSING_ID}", {"status": "resolved"}),
    ("no such ticket", "POST", f"/tickets/{MISSING_ID}/messages", {"text": "printer"}),
    ("no such ticket", "POST", f"/tickets/{MISSING_ID}/rating", {"score": 5}),
    ("no such ticket", "GET", f"/tickets/{MISSING_ID}/events", None),
    ("no such user", "PATCH", f"/users/{MISSING_ID}", {"is_active": False}),
]
"""Refused (400, 404, 422...) whoever sends them: both must refuse alike."""
QUERIES = st.sampled_from(
    [
        {},
        {"sort": "-created_at"},
        {"sort": "updated_at"},
        {"sort": "-updated_at"},
        {"sort": "priority"},
        {"sort": "-priority"},
        {"sort": "due"},
        {"status": ["pending"]},
        {"status": ["resolved", "canceled"]},
        {"status": ["unresolved"], "sort": "-updated_at"},
        {"assignee": "none"},
        {"assignee": "me"},
        {"assignee": "agent1"},
        {"assignee": "agent2", "status": ["pending", "unresolved"]},
        {"author": "customer1"},
        {"author": "agent1", "sort": "-updated_at"},
        {"priority": ["urgent", "high"]},
        {"priority": ["low"], "status": ["pending"]},
        {"breached": "false"},
        {"breached": "true"},
        {"q": "printer"},
        {"q": "paper invoice"},
        {"q": '"laptop screen"'},
        {"q": "password", "status": ["pending"]},
        {"created_after": PERIOD["from"], "sort": "-created_at"},
        {"updated_after": PERIOD["to"]},
    ]
)
PEOPLE = st.sampled_from([*STAFF, *CUSTOMERS])
"""Any of the fixed actors (the customers registered as the rules go act in rules of their
own: see `newcomer_opens_ticket`)."""
SORTS = st.sampled_from(
    ["created_at", "-created_at", "updated_at", "-updated_at", "priority", "-priority", "due"]
)

ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")
ID_KEYS = {
    "ticket_id": "ticket",
    "actor_id": "user",
    "assignee_id": "user",
    "author_id": "user",
    "user_id": "user",
    "message_id": "message",
}
NESTED_KINDS = {"tickets": "ticket"}
DURATIONS = frozenset({"median_seconds", "p90_seconds"})
SECRETS = frozenset({"token", "expires_at"})
HEADERS = ("x-total-count", "idempotent-replayed", "www-authenticate")

View = tuple[int, dict[str, str], Any]
T = TypeVar("T")


def _time(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass
class Backend:
    """One app, its client, and what it has handed out, in the order it did."""

    name: str
    client: httpx.AsyncClient
    engine: AsyncEngine
    users: dict[str, int] = field(default_factory=dict)  # actor -> id, oldest first
    headers: dict[str, dict[str, str]] = field(default_factory=dict)  # actor -> its token
    tickets: list[int] = field(default_factory=list)  # ticket ordinal -> id
    messages: set[int] = field(default_factory=set)
    events: list[int] = field(default_factory=list)
    calls: list[tuple[datetime, datetime]] = field(default_factory=list)  # each call's time

    async def reset(self, password_hash: str) -> None:
        """Empty tables and the fixed actors, with passwords, so that they can log in again."""
        await empty_tables(self.engine)
        self.users.clear()
        self.headers.clear()
        self.messages.clear()
        self.tickets.clear()
        self.events.clear()
        self.calls.clear()
        started = datetime.now(UTC)
        for name, role in (*FIXED, (OBSERVER, "superuser")):
            account = await add_account(
                self.engine,
                f"{name}@example.com",
                role=role,
                username=name,
                password_hash=password_hash,
            )
            self.users[name] = account.id
            self.headers[name] = account.headers
        self.calls.append((started, datetime.now(UTC)))

    def actors(self) -> list[str]:
        return [name for name in self.users if name != OBSERVER]

    def ticket_id(self, ticket: int) -> int:
        return self.tickets[ticket]

    def user_id(self, actor: str | None) -> int | None:
        return None if actor is None else self.users.get(actor, MISSING_ID)

    async def send(
        self,
        actor: str | None,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = {**(self.headers.get(actor, {}) if actor else {}), **(headers or {})}
        try:
            return await self.client.request(method, path, json=json, params=params, headers=sent)
        finally:
            # A login's cookie must not sign in the next request: each names its actor.
            self.client.cookies.clear()

    # What an answer says, with what legitimately differs normalised (see the docstring).

    def view(self, response: httpx.Response, kind: str | None) -> View:
        headers = {name: response.headers[name] for name in HEADERS if name in response.headers}
        if "link" in response.headers:
            headers["link"] = "a next page"
        if response.content and response.headers.get("content-type", "").startswith(
            "application/json"
        ):
            body = self.normalise(response.json(), kind)
        else:
            body = response.text
        return response.status_code, headers, body

    def normalise(self, value: Any, kind: str | None) -> Any:
        if isinstance(value, list):
            return [self.normalise(item, kind) for item in value]
        if isinstance(value, dict):
            return {key: self._field(value, key, item, kind) for key, item in value.items()}
        if isinstance(value, str) and ISO_TIME.fullmatch(value):
            return self._moment(value)
        return value

    def _field(self, parent: dict[str, Any], key: str, value: Any, kind: str | None) -> Any:
        if key == "id" and kind is not None:
            return self._label(kind, value)
        if key in ID_KEYS and isinstance(value, int):
            return self._label(ID_KEYS[key], value)
        if key in SECRETS and value is not None:
            return f"<{key}>"
        if key in DURATIONS:
            return None if value is None else "<seconds>"
        if key.endswith("_due_at") and isinstance(value, str) and "created_at" in parent:
            seconds = (_time(value) - _time(parent["created_at"])).total_seconds()
            return f"created_at+{seconds:g}s"
        return self.normalise(value, NESTED_KINDS.get(key))

    def _label(self, kind: str, value: Any) -> str:
        ranks: dict[str, list[int]] = {
            "ticket": self.tickets,
            "message": sorted(self.messages),
            "event": self.events,
        }
        if kind == "user":
            names = {user_id: name for name, user_id in self.users.items()}
            return names.get(value, f"user?{value}")
        if value in ranks[kind]:
            return f"{kind}#{ranks[kind].index(value)}"
        return f"{kind}?{value}"

    def _moment(self, value: str) -> str:
        moment = _time(value)
        for number, (start, end) in enumerate(self.calls):
            if start <= moment <= end:
                return f"@{number}"
        return value

    # What everyone reads after a call.

    async def read(
        self, listers: list[str], tickets: list[int], readers: dict[int, list[str]], word: str
    ) -> dict[str, tuple[httpx.Response, str | None]]:
        """Every answer to compare after a call, as it came, with the kind of its ids.

        By the observer: the feed, the users, the report, and each of `tickets` with its
        history and messages (what any agent sees). By each of `listers`: their ticket list.
        By each of a ticket's `readers`: the ticket, its history and its messages. By the
        observer and by customer1: a search for `word` (notes are searched for staff only).
        """
        found: dict[str, tuple[httpx.Response, str | None]] = {}

        async def get(name: str, actor: str, path: str, kind: str | None, **params: Any) -> None:
            answer = await self.send(actor, "GET", path, params=params)
            found[f"{actor} GET {name}"] = (answer, kind)

        async def look(actor: str, ticket: int) -> None:
            path = f"/tickets/{self.ticket_id(ticket)}"
            shown = f"/tickets/ticket#{ticket}"
            await get(shown, actor, path, "ticket")
            await get(f"{shown}/events", actor, f"{path}/events", "event", **EVERYTHING)
            await get(f"{shown}/messages", actor, f"{path}/messages", "message", **EVERYTHING)

        await get("/events", OBSERVER, "/events", "event", limit=1000)
        await get("/users", OBSERVER, "/users", "user", **EVERYTHING)
        await get("/reports/summary", OBSERVER, "/reports/summary", None, **PERIOD)
        for actor in listers:
            await get("/tickets", actor, "/tickets", "ticket", **EVERYTHING)
        for actor in (OBSERVER, CUSTOMERS[0]):
            await get(f"/tickets?q={word}", actor, "/tickets", "ticket", q=word, **EVERYTHING)
        for ticket in tickets:
            await look(OBSERVER, ticket)
            for actor in readers.get(ticket, ()):
                await look(actor, ticket)
        # The observer reads every event, and every message of the tickets it looked at.
        feed = found[f"{OBSERVER} GET /events"][0]
        assert feed.status_code == 200, feed.text
        self.events[:] = [event["id"] for event in feed.json()]
        for ticket in tickets:
            listed = found[f"{OBSERVER} GET /tickets/ticket#{ticket}/messages"][0]
            assert listed.status_code == 200, listed.text
            self.messages.update(message["id"] for message in listed.json())
        return found

    async def pages(self, actor: str, params: dict[str, Any]) -> list[View]:
        """Every page of a ticket list, each got through the previous page's `Link`."""
        answers = [await self.send(actor, "GET", "/tickets", params=params)]
        while "link" in answers[-1].headers and len(answers) < 50:
            target = re.fullmatch(r'<([^>]*)>; rel="next"', answers[-1].headers["link"])
            assert target is not None, answers[-1].headers["link"]
            answers.append(await self.send(actor, "GET", target[1]))
        return [self.view(answer, "ticket") for answer in answers]


Call = Callable[[Backend], Awaitable[list[httpx.Response]]]


class Pair:
    """The two backends, driven from the state machine's thread on the test's event loop."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, backends: list[Backend], password_hash: str
    ) -> None:
        self.loop = loop
        self.backends = backends
        self.password_hash = password_hash
        self.tally: Counter[str] = Counter()  # request and status: what the run exercised
        self.examples = 0
        self.calls = 0

    def run(self, work: Awaitable[T]) -> T:
        async def wrapped() -> T:
            return await work

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result()


class BackendsAgree(RuleBasedStateMachine):
    """Each rule is one call, made on both apps; then both must agree (`settle`)."""

    customers = Bundle("customers")  # registered through the API, as the rules go
    tickets = Bundle("tickets")  # by ordinal: the n-th ticket each app opened

    def __init__(self, pair: Pair) -> None:
        super().__init__()
        self.pair = pair
        self.authors: list[str] = []  # ticket ordinal -> the actor who opened it
        self.customer_count = len(CUSTOMERS)
        self.signed_out: set[str] = set()  # actors whose tokens are revoked
        self.progress: dict[int, int] = {}  # ticket ordinal -> its steps through LIFECYCLE

        async def reset() -> None:
            for backend in pair.backends:
                await backend.reset(pair.password_hash)

        pair.run(reset())
        pair.examples += 1

    # The engine of every rule.

    def act(self, what: str, call: Call) -> list[list[httpx.Response]]:
        """Make the call on each app in turn, timing it; the same status codes or a failure."""

        async def both() -> list[list[httpx.Response]]:
            answers = []
            for backend in self.pair.backends:
                started = datetime.now(UTC)
                answers.append(await call(backend))
                backend.calls.append((started, datetime.now(UTC)))
            return answers

        answers = self.pair.run(both())
        self.pair.calls += 1
        for response in answers[0]:
            path = re.sub(r"/\d+", "/{id}", response.request.url.path)
            self.pair.tally[f"{response.request.method} {path} {response.status_code}"] += 1
        codes = [[response.status_code for response in answer] for answer in answers]
        bodies = [[response.text for response in answer] for answer in answers]
        assert codes[0] == codes[1], (
            f"{what}: SQLite answered {codes[0]} {bodies[0]}, PostgreSQL {codes[1]} {bodies[1]}"
        )
        return answers

    def settle(
        self,
        what: str,
        answers: list[list[httpx.Response]],
        kind: str | None,
        touched: list[int] | None = None,
        actor: str | None = None,
    ) -> None:
        """The call's own answers alike, then whatever every actor reads afterwards.

        `touched`: the tickets the call may have changed, read then by the observer, their
        author and another customer, and listed by the staff and their authors. None: an
        account changed, which may change any ticket's staff-only fields (an agent who
        leaves is taken off their tickets): every ticket read by the observer, and listed
        by everyone. `actor`: the caller, whose list is read too.
        """
        backends = self.pair.backends
        if touched is None:
            tickets = list(range(len(self.authors)))
            readers: dict[int, list[str]] = {}
            listers = backends[0].actors()
        else:
            tickets = touched
            readers = {ticket: self.readers(ticket) for ticket in touched}
            authors = [self.authors[ticket] for ticket in touched]
            listers = list(dict.fromkeys([*STAFF, *authors, *([actor] if actor else [])]))

        word = WORDS[len(backends[0].calls) % len(WORDS)]  # each in turn, call after call

        async def read_all() -> list[dict[str, tuple[httpx.Response, str | None]]]:
            return [await backend.read(listers, tickets, readers, word) for backend in backends]

        reads = self.pair.run(read_all())
        differences = []
        for number, pair in enumerate(zip(*answers, strict=True)):
            views = [b.view(response, kind) for b, response in zip(backends, pair, strict=True)]
            differences += difference(f"{what}, answer {number + 1}", views)
        for name in reads[0]:
            views = [b.view(*read[name]) for b, read in zip(backends, reads, strict=True)]
            differences += difference(f"after {what}: {name}", views)
        if differences:
            raise AssertionError("\n\n".join(differences))

    def readers(self, ticket: int) -> list[str]:
        """Who reads a ticket after a change, besides the observer: its author, and a
        customer who is not its author (who must not see it at all)."""
        author = self.authors[ticket]
        return [author, next(name for name in CUSTOMERS if name != author)]

    def call(
        self,
        what: str,
        actor: str | None,
        method: str,
        path: Callable[[Backend], str],
        body: Callable[[Backend], Any] | Any = None,
        retry: str | None = None,
    ) -> list[list[httpx.Response]]:
        """One request (twice under an Idempotency-Key, for a retry) on both apps."""
        key = {"Idempotency-Key": f"call-{len(self.pair.backends[0].calls)}"} if retry else {}

        async def call(backend: Backend) -> list[httpx.Response]:
            sent = body(backend) if callable(body) else body
            first = await backend.send(actor, method, path(backend), json=sent, headers=key)
            if retry is None:
                return [first]
            again = {**sent, "text": f"{sent['text']} again"} if retry == "other" else sent
            second = await backend.send(actor, method, path(backend), json=again, headers=key)
            return [first, second]

        return self.act(what, call)

    def who(self, actor: str, ticket: int) -> str:
        return self.authors[ticket] if actor == AUTHOR else actor

    # Accounts.

    def _register(self, taken: bool) -> str | MultipleResults[str]:
        name = f"customer{self.customer_count + 1}"
        email = f"{CUSTOMERS[0]}@example.com" if taken else f"{name}@example.com"
        body = {"email": email, "password": PASSWORD, "username": name}
        what = f"register {email}"
        answers = self.act(what, lambda b: _list(b.send(None, "POST", "/users", json=body)))
        if answers[0][0].status_code != 201:
            self.settle(what, answers, "user", [], CUSTOMERS[0])
            return multiple()
        self.customer_count += 1
        for backend, answer in zip(self.pair.backends, answers, strict=True):
            backend.users[name] = answer[0].json()["id"]
        self.settle(what, answers, "user", [], name)
        self._login(name, PASSWORD)
        return name

    def _login(self, actor: str, password: str) -> None:
        body = {"email": f"{actor}@example.com", "password": password}
        what = f"{actor} logs in" + ("" if password == PASSWORD else " with a wrong password")
        answers = self.act(what, lambda b: _list(b.send(None, "POST", "/login", json=body)))
        if answers[0][0].status_code == 200:
            self.signed_out.discard(actor)
            for backend, answer in zip(self.pair.backends, answers, strict=True):
                backend.headers[actor] = {"Authorization": f"Bearer {answer[0].json()['token']}"}
        self.settle(what, answers, None, [], actor)

    @precondition(lambda self: self.customer_count < len(CUSTOMERS) + 2)
    @rule(target=customers, taken=st.booleans())
    def register_customer(self, taken: bool) -> str | MultipleResults[str]:
        """A new customer (a few: each password is hashed, which is slow on purpose), or
        (`taken`) an email already registered."""
        return self._register(taken)

    @precondition(lambda self: bool(self.signed_out))
    @rule(pick=st.integers(0, 3), wrong=st.booleans())
    def login(self, pick: int, wrong: bool) -> None:
        """A fresh token for one who logged out or was blocked (refused while blocked)."""
        signed_out = sorted(self.signed_out)
        self._login(signed_out[pick % len(signed_out)], "not the password" if wrong else PASSWORD)

    @precondition(lambda self: not self.signed_out)
    @rule(actor=PEOPLE)
    def logout(self, actor: str) -> None:
        answers = self.call(f"{actor} logs out", actor, "POST", lambda b: "/logout")
        if answers[0][0].status_code == 204:
            self.signed_out.add(actor)
        self.settle(f"{actor} logs out", answers, None, [], actor)

    def _account(self, actor: str, whom: str, change: dict[str, bool]) -> None:
        what = f"{actor} sets {change} on {whom}"
        answers = self.call(what, actor, "PATCH", lambda b: f"/users/{b.user_id(whom)}", change)
        if answers[0][0].status_code == 200 and change.get("is_active") is False:
            self.signed_out.add(whom)  # every token of theirs is revoked
        self.settle(what, answers, "user")

    @rule(
        actor=st.one_of(st.sampled_from(STAFF), PEOPLE),
        whom=PEOPLE,
        change=st.sampled_from(
            [{"is_active": False}, {"is_active": True}, {"is_staff": False}, {"is_staff": True}]
        ),
    )
    def change_account(self, actor: str, whom: str, change: dict[str, bool]) -> None:
        """Block, unblock, demote or promote anyone, as anyone: staff block customers, and
        only a superuser changes staff (not themselves)."""
        self._account(actor, whom, change)

    @rule(how=st.sampled_from(["blocked", "demoted", "unblocked", "promoted"]))
    def staff_churn(self, how: str) -> None:
        """The superuser blocks agent2 or makes them a customer: their open tickets lose
        their assignee, each with an event (one statement on PostgreSQL). Or agent2 comes
        back: unblocked (and logged in again), or staff again."""
        change = {
            "blocked": {"is_active": False},
            "demoted": {"is_staff": False},
            "unblocked": {"is_active": True},
            "promoted": {"is_staff": True},
        }[how]
        self._account("superuser", "agent2", change)
        if how == "unblocked":
            self._login("agent2", PASSWORD)

    # Tickets and messages.

    def _open(
        self, author: str, topic: str, text: str, retry: str | None
    ) -> int | MultipleResults[int]:
        what = f"{author} opens {topic!r}: {text!r}" + (f" (retry: {retry})" if retry else "")
        body = {"topic": topic, "text": text}
        answers = self.call(what, author, "POST", lambda b: "/tickets", body, retry)
        if answers[0][0].status_code != 201:
            self.settle(what, answers, "ticket", [], author)
            return multiple()
        for backend, answer in zip(self.pair.backends, answers, strict=True):
            backend.tickets.append(answer[0].json()["id"])
        self.authors.append(author)
        ticket = len(self.authors) - 1
        self.settle(what, answers, "ticket", [ticket])
        return ticket

    @initialize(target=tickets, topic=TOPICS, text=TEXTS)
    def first_ticket(self, topic: str, text: str) -> int | MultipleResults[int]:
        """customer1's ticket, which agent2 takes: each sequence starts with work under way,
        which `staff_churn` hands back to the team."""
        ticket = self._open(CUSTOMERS[0], topic, text, None)
        assert isinstance(ticket, int)
        self.take(ticket)
        return ticket

    @rule(
        target=tickets,
        author=st.sampled_from([*CUSTOMERS, *CUSTOMERS, *STAFF]),
        topic=TOPICS,
        text=TEXTS,
        retry=RETRIES,
    )
    def open_ticket(
        self, author: str, topic: str, text: str, retry: str | None
    ) -> int | MultipleResults[int]:
        return self._open(author, topic, text, retry)

    @rule(target=tickets, customer=customers, text=TEXTS)
    def newcomer_opens_ticket(self, customer: str, text: str) -> int | MultipleResults[int]:
        """A customer registered through the API (and logged in) opens a ticket of theirs."""
        return self._open(customer, "newcomer", text, None)

    def _post(self, actor: str, ticket: int, text: str, internal: bool, retry: str | None) -> None:
        actor = self.who(actor, ticket)
        kind = "note" if internal else "message"
        what = f"{actor} posts a {kind} {text!r} on ticket#{ticket}" + (
            f" (retry: {retry})" if retry else ""
        )
        body = {"text": text, "internal": True} if internal else {"text": text}
        answers = self.call(
            what, actor, "POST", lambda b: f"/tickets/{b.ticket_id(ticket)}/messages", body, retry
        )
        self.settle(what, answers, "message", [ticket])

    @rule(ticket=tickets)
    def lifecycle(self, ticket: int) -> None:
        """The ticket's next step in a help desk's usual course (`LIFECYCLE`), round and
        round: each of the three kinds of message, the statuses they lead to (a customer's
        request reopens a resolved or unresolved ticket), and a rating. Whatever other
        rules did to the ticket meanwhile, the step is made, and refused alike if it must be.

        Hypothesis draws the first (by name) of the rules with the fewest arguments far more
        often than the others: this one, so that every run goes through the writes that
        each backend makes its own way, and through the states that change what they do."""
        step = self.progress.get(ticket, 0)
        self.progress[ticket] = step + 1
        actor, kind, value = LIFECYCLE[step % len(LIFECYCLE)]
        if kind == "status":
            self._change(ticket, actor, "PUT", lambda b: {"status": value}, f"status={value}")
        elif kind == "rating":
            self.rate(ticket, (actor, {"score": 4, "comment": value}))
        else:
            self._post(actor, ticket, value, internal=kind == "note", retry=None)

    @rule(
        ticket=tickets,
        actor=st.sampled_from([AUTHOR, AUTHOR, CUSTOMERS[1], *STAFF]),
        text=TEXTS,
        internal=st.booleans(),
        retry=RETRIES,
    )
    def write(self, ticket: int, actor: str, text: str, internal: bool, retry: str | None) -> None:
        """A message or an internal note, by anyone, maybe retried: the author's request,
        an agent's response or note; another customer's is refused (404), a customer's note
        too (403)."""
        self._post(actor, ticket, text, internal=internal, retry=retry)

    def _change(
        self, ticket: int, actor: str, method: str, body: Callable[[Backend], Any], shown: str
    ) -> None:
        actor = self.who(actor, ticket)
        what = f"{actor} {method} /tickets/ticket#{ticket} {shown}"
        answers = self.call(what, actor, method, lambda b: f"/tickets/{b.ticket_id(ticket)}", body)
        self.settle(what, answers, "ticket", [ticket])

    @rule(ticket=tickets)
    def take(self, ticket: int) -> None:
        """agent2 assigns the ticket to themselves: what `staff_churn` undoes."""
        self._change(
            ticket, "agent2", "PATCH", lambda b: {"assignee_id": b.user_id("agent2")}, "take"
        )

    @rule(
        ticket=tickets,
        actor=st.sampled_from([AUTHOR, AUTHOR, *STAFF, CUSTOMERS[1]]),
        method=st.sampled_from(["PUT", "PATCH"]),
        fields=st.fixed_dictionaries(
            {},
            optional={
                "status": STATUSES,
                "assignee": st.sampled_from([None, *STAFF, *CUSTOMERS, "nobody"]),
                "priority": PRIORITIES,
            },
        ),
    )
    def change(self, ticket: int, actor: str, method: str, fields: dict[str, Any]) -> None:
        """Any status (by PUT, or by PATCH with an assignee and a priority: all of them
        change or none), by anyone: the author may cancel; staff set the other statuses
        (resolved once answered), assign to an active agent or to nobody, set the
        priority (which moves the due times). What the rules refuse, both refuse alike:
        another customer, a customer's staff-only change, a canceled ticket, no agent by
        that id, an empty change."""

        def body(backend: Backend) -> dict[str, Any]:
            if method == "PUT":
                return {"status": fields.get("status", "canceled")}
            sent = {name: value for name, value in fields.items() if name != "assignee"}
            if "assignee" in fields:
                sent["assignee_id"] = backend.user_id(fields["assignee"])
            return sent

        self._change(ticket, actor, method, body, str(fields))

    @rule(
        ticket=tickets,
        rating=st.sampled_from(
            [
                (AUTHOR, {"score": 5}),
                (AUTHOR, {"score": 1, "comment": "too slow"}),
                (AUTHOR, {"score": 4, "comment": ""}),
                ("agent1", {"score": 5}),
                (CUSTOMERS[1], {"score": 3, "comment": "thanks"}),
            ]
        ),
    )
    def rate(self, ticket: int, rating: tuple[str, dict[str, Any]]) -> None:
        """Only the author, only once, only a resolved ticket."""
        actor, body = rating
        actor = self.who(actor, ticket)
        what = f"{actor} rates ticket#{ticket} {body}"
        answers = self.call(
            what, actor, "POST", lambda b: f"/tickets/{b.ticket_id(ticket)}/rating", body
        )
        self.settle(what, answers, None, [ticket])

    @rule(actor=st.sampled_from([*STAFF, AUTHOR]), ticket=tickets, case=st.sampled_from(REFUSED))
    def refused_input(self, actor: str, ticket: int, case: tuple[str, str, str, Any]) -> None:
        """A body the API refuses, or a ticket that does not exist: refused alike."""
        actor = self.who(actor, ticket)
        name, method, path, body = case

        def target(backend: Backend) -> str:
            return path.format(ticket=backend.ticket_id(ticket), me=backend.user_id(actor))

        what = f"{actor} sends {name}: {method} {path.format(ticket=f'ticket#{ticket}', me=actor)}"
        self.settle(what, self.call(what, actor, method, target, body), None, [ticket], actor)

    # Reads.

    @rule(actor=PEOPLE, query=QUERIES)
    def list_tickets(self, actor: str, query: dict[str, Any]) -> None:
        """A filtered or ordered list, and its total: staff-only ones refused to customers.
        An actor's name as `assignee` or `author` stands for their id or their email."""

        def params(backend: Backend) -> dict[str, Any]:
            found = dict(query, count="true")
            if found.get("assignee") in backend.users:
                found["assignee"] = str(backend.user_id(found["assignee"]))
            if found.get("author") in backend.users:
                found["author"] = f"{found['author']}@example.com"
            return found

        what = f"{actor} GET /tickets {query}"
        answers = self.act(
            what, lambda b: _list(b.send(actor, "GET", "/tickets", params=params(b)))
        )
        for number, pair in enumerate(zip(*answers, strict=True)):
            views = [b.view(r, "ticket") for b, r in zip(self.pair.backends, pair, strict=True)]
            agree(f"{what}, answer {number + 1}", views)

    @rule(actor=PEOPLE, sort=SORTS, page=st.sampled_from([(1, None), (2, None), (2, "pending")]))
    def page_through(self, actor: str, sort: str, page: tuple[int, str | None]) -> None:
        """Small pages in each order, each app following its own `Link` to the end."""
        limit, status = page
        params: dict[str, Any] = {"sort": sort, "limit": limit, "count": "true"}
        if status is not None:
            params["status"] = status

        async def both() -> list[list[View]]:
            return [await backend.pages(actor, params) for backend in self.pair.backends]

        agree(f"{actor} pages through {params}", self.pair.run(both()))


async def _list(response: Awaitable[httpx.Response]) -> list[httpx.Response]:
    return [await response]


def difference(what: str, views: list[Any]) -> list[str]:
    """Nothing if both apps' views are equal; else what differs, line by line."""
    sqlite, postgresql = views
    if sqlite == postgresql:
        return []
    before, after = (json.dumps(view, indent=1, sort_keys=True).splitlines() for view in views)
    diff = "\n".join(difflib.unified_diff(before, after, "sqlite", "postgresql", lineterm="", n=4))
    return [f"{what}: SQLite and PostgreSQL differ\n{diff}"]


def agree(what: str, views: list[Any]) -> None:
    """Both apps' views equal, or a failure that says where they differ."""
    for differs in difference(what, views):
        raise AssertionError(differs)


@pytest.fixture
def both_databases(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[URL, URL]:
    """A fresh SQLite file, and a PostgreSQL database of this test's own beside the suite's
    (TEST_DATABASE_URL's, or each worker's, with `_differential` added), both migrated."""
    if request.config.getoption("--backend") != "all":
        pytest.skip("compares the two backends: not run with --backend")
    sqlite = make_url(f"sqlite+aiosqlite:///{tmp_path / 'differential.db'}")
    suites = postgres_url()
    postgresql = suites.set(database=f"{suites.database}_differential")
    asyncio.run(take_database(postgresql))
    migrate.upgrade(sqlite)
    migrate.upgrade(postgresql)
    return sqlite, postgresql


async def test_sqlite_and_postgresql_leave_the_same_visible_state(
    both_databases: tuple[URL, URL], tmp_path: Path
) -> None:
    password_hash = PASSWORD_HASHER.hash(PASSWORD)
    async with AsyncExitStack() as stack:
        backends = []
        for name, url in zip(("sqlite", "postgresql"), both_databases, strict=True):
            (tmp_path / name).mkdir()
            client = await stack.enter_async_context(
                client_with(url, tmp_path / name, rate_limits=False)
            )
            engine = await stack.enter_async_context(own_engine(url))
            backends.append(Backend(name, client, engine))
        pair = Pair(asyncio.get_running_loop(), backends, password_hash)

        class OnTheseApps(BackendsAgree):
            def __init__(self) -> None:
                super().__init__(pair)

        # Hypothesis runs in a thread of its own; each call comes back to this event loop.
        await asyncio.to_thread(run_state_machine_as_test, OnTheseApps, settings=SETTINGS)
    print(f"{pair.examples} sequences, {pair.calls} calls on each backend")
    for line, count in sorted(pair.tally.items()):
        print(f"{count:6} {line}")
