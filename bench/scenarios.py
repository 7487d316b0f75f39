"""The benchmark's scenarios: one endpoint each, called as one of the known accounts."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from common import CUSTOMER, PASSWORD
from dataset import Targets
from loadgen import Request

MESSAGE_TEXT = "Any news on this? We are still waiting for an answer from the team."
TICKET_TEXT = "The dashboard shows an error after login. Could you have a look, please?"


@dataclass(frozen=True)
class Scenario:
    name: str
    letter: str
    title: str
    method: str
    path: str  # str.format()ted with the Targets' fields
    role: str | None  # whose token is sent; None: no token
    body: dict[str, str] | None = None
    writes: bool = False
    list_endpoint: bool = False
    connections: int | None = None  # None: the run's --connections
    ceiling: bool = True  # compared with pgbench on its SQL

    @property
    def reads(self) -> bool:
        return self.method == "GET"

    @property
    def has_pgbench(self) -> bool:
        """Login is argon2 work in the service, not database work: it has no SQL ceiling;
        the team scenarios (search, feed, report) are measured against their own targets."""
        return self.name != "login" and self.ceiling

    def request(self, targets: Targets | Any, tokens: dict[str, str]) -> Request:
        """targets: a Targets, or any dataclass with the fields that the path names."""
        return Request(
            method=self.method,
            path=self.path.format(**asdict(targets)),
            body=json.dumps(self.body) if self.body is not None else None,
            token=tokens[self.role] if self.role else None,
        )


SCENARIOS = (
    Scenario("ticket_read", "a", "GET /tickets/{id}", "GET", "/tickets/{read_ticket}", "customer"),
    Scenario(
        "messages_read",
        "b",
        "GET /tickets/{id}/messages",
        "GET",
        "/tickets/{messages_ticket}/messages",
        "customer",
        list_endpoint=True,
    ),
    Scenario("own_list", "c", "GET /tickets", "GET", "/tickets", "customer", list_endpoint=True),
    Scenario(
        "staff_list",
        "d",
        "GET /tickets?limit=100 (staff)",
        "GET",
        "/tickets?limit=100",
        "staff",
        list_endpoint=True,
    ),
    Scenario(
        "staff_deep",
        "e",
        "GET /tickets?limit=100&cursor=90% (staff)",
        "GET",
        "/tickets?limit=100&cursor={deep_cursor}",
        "staff",
        list_endpoint=True,
    ),
    Scenario(
        "users_list",
        "f",
        "GET /users?limit=100 (staff)",
        "GET",
        "/users?limit=100",
        "staff",
        list_endpoint=True,
    ),
    Scenario(
        "message_post",
        "g",
        "POST /tickets/{id}/messages",
        "POST",
        "/tickets/{post_ticket}/messages",
        "customer",
        body={"text": MESSAGE_TEXT},
        writes=True,
    ),
    Scenario(
        "ticket_post",
        "h",
        "POST /tickets",
        "POST",
        "/tickets",
        "customer",
        body={"topic": "bench", "text": TICKET_TEXT},
        writes=True,
    ),
    Scenario(
        "login",
        "i",
        "POST /login",
        "POST",
        "/login",
        None,
        body={"email": CUSTOMER.email, "password": PASSWORD},
    ),
    Scenario(
        "search",
        "j",
        "GET /tickets?q=two words (staff, 4 connections)",
        "GET",
        "/tickets?q={search_words}&limit=100",
        "staff",
        list_endpoint=True,
        connections=4,
        ceiling=False,
    ),
    Scenario(
        "event_feed",
        "k",
        "GET /events?after=id&limit=100 (staff)",
        "GET",
        "/events?after={feed_after}&limit=100",
        "staff",
        ceiling=False,
    ),
    Scenario(
        "report",
        "l",
        "GET /reports/summary, last 30 days (staff, 4 connections)",
        "GET",
        "/reports/summary",
        "staff",
        connections=4,
        ceiling=False,
    ),
    # The browser pages beside the API calls they show (the session cookie is the token).
    Scenario(
        "queue_page",
        "m",
        "GET /app/queue (staff page: open tickets, four counts)",
        "GET",
        "/app/queue",
        "staff",
        ceiling=False,
    ),
    Scenario(
        "queue_api",
        "n",
        "GET /tickets, the queue's open tickets (staff)",
        "GET",
        "/tickets?status=pending&status=unresolved&sort=-updated_at&limit=50",
        "staff",
        list_endpoint=True,
        ceiling=False,
    ),
    Scenario(
        "ticket_page",
        "o",
        "GET /app/tickets/{id} (customer page: the ticket and its thread)",
        "GET",
        "/app/tickets/{messages_ticket}",
        "customer",
        ceiling=False,
    ),
)
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}


def select(names: str | None) -> list[Scenario]:
    """Scenarios by comma-separated names or letters; all of them for None."""
    if not names:
        return list(SCENARIOS)
    by_letter = {scenario.letter: scenario for scenario in SCENARIOS}
    chosen = []
    for name in (part.strip() for part in names.split(",") if part.strip()):
        scenario = BY_NAME.get(name) or by_letter.get(name)
        if scenario is None:
            raise SystemExit(f"unknown scenario {name!r}; choose from {', '.join(BY_NAME)}")
        chosen.append(scenario)
    return chosen
