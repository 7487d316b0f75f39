"""The API keeps the contract it publishes in /openapi.json: schemathesis fuzzes every operation.

- Every operation, as a customer and as the superuser (who may call them all): positive and
  negative data, 100 generated requests each, plus the boundary cases of the coverage phase.
- Scenarios along the OpenAPI links (`POST /tickets` -> `GET /tickets/{ticket_id}` ...) with
  valid data, each as a customer, a member of staff or the superuser.
- Every built-in check of schemathesis: no 5xx; status codes, content types, headers and
  bodies as documented; invalid data refused; valid data refused only with documented codes;
  authentication enforced; unsupported methods answered 405 with Allow.

Runs on SQLite and on PostgreSQL, with a fixed seed and derandomized: a failure repeats.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize
from schemathesis.checks import not_a_server_error
from schemathesis.generation.stateful.state_machine import StepInput, StepOutput
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import insert
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.types import Receive, Scope, Send

from conftest import JWT_KEY, empty_tables, make_settings
from ticketdesk.app import create_app
from ticketdesk.auth.principal import Viewer as AuthUser
from ticketdesk.auth.security import PASSWORD_HASHER, TokenClaims, create_token
from ticketdesk.db import open_database
from ticketdesk.models import users
from ticketdesk.settings import Settings
from ticketdesk.staff_keys.service import create_key
from ticketdesk.tickets.service import create_ticket

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 100
SCENARIOS = 200
STEPS_PER_SCENARIO = 10

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20261126,
        "generation": {
            "mode": "all",  # positive and negative
            "max-examples": EXAMPLES_PER_OPERATION,
            "deterministic": True,
            "database": "none",
        },
        "checks": {
            # Some 400s answer values the schema allows but a business rule refuses: a cursor
            # that does not decode, an email already registered, a status the caller's role may
            # not set, a new password without the current one, an expiry in the past. And 422:
            # an Idempotency-Key sent before with another body.
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "400", "401", "403", "404", "409", "422"]
            }
        },
        # Only the documented links, so that the scenarios test them.
        "phases": {
            "stateful": {"inference": {"algorithms": []}, "generation": {"mode": "positive"}}
        },
    }
)

# What a response alone says about the contract, for requests built here rather than generated.
RESPONSE_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Health checks that misjudge an API test: its requests are slow next to generating data,
# request bodies are large, and negative cases filter; one app serves all of an operation's
# examples, deliberately (a function-scoped fixture).
SLOW_IS_FINE = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.filter_too_much,
    HealthCheck.function_scoped_fixture,
]


class AppUnderTest:
    """The ASGI app schemathesis calls; it hands each request to the app of the running test.

    The schema is loaded when the module is, before any test builds its app.
    """

    def __init__(self) -> None:
        self.app: FastAPI | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "no contract test is running"
        await self.app(scope, receive, send)


class FreshToken(requests.auth.AuthBase):
    """A token of `role` for each request: a fuzzed `POST /logout` revokes only its own."""

    def __init__(self) -> None:
        self.role = "superuser"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        token, _ = create_token(
            user_id=ACCOUNT_IDS[self.role], version=0, key=JWT_KEY.encode(), lifetime_seconds=600
        )
        request.headers["Authorization"] = f"Bearer {token}"
        return request


APP = AppUnderTest()
TOKEN = FreshToken()
# The schema does not depend on the settings.
_app = create_app(Settings(_env_file=None, database_url="sqlite+aiosqlite://", jwt_key=JWT_KEY))
# The event stream never ends, so no generated call would get its whole answer:
# tests/events/test_stream.py checks it against real servers.
schema = schemathesis.openapi.from_dict(_app.openapi(), config=CONFIG).exclude(
    path="/events/stream"
)
schema.app = APP
# Sent unless schemathesis leaves the credentials out or spoils them on purpose.
schema.auth.set_from_requests(TOKEN)

ACCOUNT_IDS = {"customer": 1, "staff": 2, "superuser": 3}
# Nobody can log in as these accounts or change their password: the fuzzer never guesses it.
_UNKNOWN_PASSWORD_HASH = PASSWORD_HASHER.hash(secrets.token_urlsafe(16))


async def _seed(url: URL) -> None:
    """Empty tables, the three accounts, a ticket of the customer and an unused staff key."""
    engine = create_async_engine(url)
    try:
        await empty_tables(engine)
        async with engine.begin() as conn:
            for role, user_id in ACCOUNT_IDS.items():
                new_id = (
                    await conn.execute(
                        insert(users)
                        .values(
                            email=f"{role}@example.com",
                            username=role,
                            password_hash=_UNKNOWN_PASSWORD_HASH,
                            is_staff=role != "customer",
                            is_superuser=role == "superuser",
                        )
                        .returning(users.c.id)
                    )
                ).scalar_one()
                assert new_id == user_id, "ids start at 1 after emptying the tables"
    finally:
        await engine.dispose()
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=url.render_as_string(hide_password=False), jwt_key=JWT_KEY
    )
    database = await open_database(settings)
    try:
        async with database.session() as db:
            await db.begin()  # one transaction for both
            claims = TokenClaims(1, 0, "seed", datetime.now(UTC) + timedelta(minutes=1))
            customer = AuthUser(1, "customer@example.com", "customer", False, False, claims)
            await create_ticket(
                db, author=customer, topic="printer", text="it jams", sla_policy=settings.sla_policy
            )
            await create_key(db, created_by=ACCOUNT_IDS["superuser"], expires_at=None)
    finally:
        await database.close(5)


def seed(url: URL) -> None:
    # Its own event loop: the app runs in schemathesis's, on another thread.
    asyncio.run(_seed(url))


@pytest.fixture
def contract_app(database_url: URL, tmp_path: Path) -> Iterator[FastAPI]:
    seed(database_url)
    # Without rate limits: most fuzzed logins would be answered 429.
    APP.app = create_app(make_settings(database_url, tmp_path, rate_limits=False))
    TOKEN.role = "superuser"
    try:
        yield APP.app
    finally:
        asgi.shutdown_lifespans()  # closes the app's connections
        APP.app = None


@schema.parametrize()
@settings(suppress_health_check=SLOW_IS_FINE)
@pytest.mark.parametrize("role", ["customer", "superuser"])
def test_every_operation(case: schemathesis.Case, contract_app: FastAPI, role: str) -> None:
    TOKEN.role = role
    case.call_and_validate()


def test_linked_operations(contract_app: FastAPI, database_url: URL) -> None:
    followed: Counter[str] = Counter()
    succeeded: Counter[str] = Counter()

    class Scenarios(linked_operations().as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            # Each scenario from the same start, so that Hypothesis can replay it.
            seed(database_url)

        @initialize(role=st.sampled_from(sorted(ACCOUNT_IDS)))
        def sign_in(self, role: str) -> None:
            TOKEN.role = role

        def step(self, input: StepInput) -> StepOutput:
            # Idempotency keys are fuzzed operation by operation. Here a key generated twice
            # by chance, with another body, would end the chain at a (correct) 422.
            if input.case.headers:
                input.case.headers.pop("Idempotency-Key", None)
            output = super().step(input)
            if input.transition is not None and input.is_applied:
                followed[input.transition.id] += 1
            if output.response.status_code < 300:
                succeeded[input.case.operation.label] += 1
            return output

    Scenarios.run(
        settings=settings(
            max_examples=SCENARIOS,
            stateful_step_count=STEPS_PER_SCENARIO,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=SLOW_IS_FINE,
        )
    )
    links = documented_links()
    assert {link for link, _ in links} == set(followed)  # each with its values filled in
    # Staff-only and superuser-only operations among them: exercised, not only refused.
    assert {label for _, ends in links for label in ends} == set(succeeded)


def test_an_oversize_body_is_answered_as_documented(contract_app: FastAPI) -> None:
    # The body limit answers before any route, to bodies larger than fuzzing makes.
    text = "a" * contract_app.state.settings.max_body_bytes
    with_body = [op for op in (result.ok() for result in schema.get_all_operations()) if op.body]
    assert len(with_body) == 20
    for operation in with_body:
        case = operation.Case(
            path_parameters={name: 1 for name in re.findall(r"{(\w+)}", operation.path)},
            body={"text": text},
            media_type="application/json",
        )
        response = case.call_and_validate(checks=RESPONSE_CHECKS)
        assert response.status_code == 413, operation.label


def linked_operations() -> schemathesis.BaseSchema:
    """The schema with the operations that links join alone: the others are fuzzed one by one
    (above), and in a scenario they would only take the steps the links need."""
    ends = {label for _, pair in documented_links() for label in pair}
    ids = [
        operation["operationId"]
        for path, path_item in schema.raw_schema["paths"].items()
        for method, operation in path_item.items()
        if f"{method.upper()} {path}" in ends
    ]
    return schema.include(operation_id=ids)


def documented_links() -> list[tuple[str, tuple[str, str]]]:
    """Every link of the schema as schemathesis names it, with the operations at its ends."""
    paths = schema.raw_schema["paths"]
    operations = [
        (f"{method.upper()} {path}", operation)
        for path, path_item in paths.items()
        for method, operation in path_item.items()
    ]
    labels = {operation["operationId"]: label for label, operation in operations}
    links = []
    for label, operation in operations:
        for status, response in operation["responses"].items():
            for name, link in response.get("links", {}).items():
                target = labels[link["operationId"]]
                links.append((f"{label} -> [{status}] {name} -> {target}", (label, target)))
    return links
