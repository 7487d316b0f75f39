"""JSON logs: one line per request, security events, and nothing secret in any line."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from conftest import JWT_KEY, STAFF_TOKEN, Account, open_ticket
from throwaway_postgres import free_port
from ticketdesk.logs import JsonFormatter, logging_config

Line = dict[str, Any]


def requests(lines: list[Line]) -> list[Line]:
    return [line for line in lines if line["logger"] == "ticketdesk.request"]


def events(lines: list[Line]) -> list[Line]:
    return [line for line in lines if line["logger"] == "ticketdesk.security"]


@dataclass
class Logged:
    """What the service logged during a test, through the formatter `serve` uses."""

    stream: io.StringIO

    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[Line]:
        return [json.loads(line) for line in self.text().splitlines()]  # each one is JSON

    def requests(self) -> list[Line]:
        return requests(self.lines())

    def events(self) -> list[Line]:
        return events(self.lines())


@pytest.fixture
def logged() -> Iterator[Logged]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root, service = logging.getLogger(), logging.getLogger("ticketdesk")
    level = service.level
    root.addHandler(handler)
    service.setLevel(logging.DEBUG)
    try:
        yield Logged(stream)
    finally:
        root.removeHandler(handler)
        service.setLevel(level)


# the request line


async def test_each_request_is_one_json_line_with_its_fields(
    client: httpx.AsyncClient, customer: Account, logged: Logged
) -> None:
    ticket_id = await open_ticket(client, customer)
    response = await client.get(
        f"/tickets/{ticket_id}?q=query-text-not-logged", headers=customer.headers
    )
    assert response.status_code == 200
    line = logged.requests()[-1]
    assert line["method"] == "GET"
    assert line["path"] == f"/tickets/{ticket_id}"
    assert line["status"] == 200
    assert line["user_id"] == customer.id
    assert line["client"] == "127.0.0.1"
    assert isinstance(line["duration_ms"], float) and 0 < line["duration_ms"] < 10_000
    assert re.fullmatch(r"[0-9a-f]{32}", line["request_id"])
    assert response.headers["x-request-id"] == line["request_id"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    assert (line["level"], line["message"]) == ("INFO", "request")
    assert "query-text-not-logged" not in logged.text()
    assert len(logged.requests()) == 2  # the POST and the GET, nothing else


async def test_every_request_gets_its_own_id(client: httpx.AsyncClient, logged: Logged) -> None:
    first = await client.get("/healthz")
    second = await client.get("/healthz")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    assert [line["request_id"] for line in logged.requests()] == [
        first.headers["x-request-id"],
        second.headers["x-request-id"],
    ]


async def test_an_anonymous_request_has_no_user_id(
    client: httpx.AsyncClient, logged: Logged
) -> None:
    assert (await client.get("/time")).status_code == 200
    assert "user_id" not in logged.requests()[-1]


@pytest.mark.parametrize(
    "given",
    ["3f2c1e4a-9b7d-4c1e-8f00-1a2b3c4d5e6f", "abc.DEF_123:4+5/6=", "x" * 128],
)
async def test_a_sane_request_id_is_kept_and_echoed(
    client: httpx.AsyncClient, logged: Logged, given: str
) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": given})
    assert response.headers["x-request-id"] == given
    assert logged.requests()[-1]["request_id"] == given


@pytest.mark.parametrize(
    "given", ["x" * 129, "", "two words", 'quo"te', "semi;colon", "{json}", "caf\u00e9"]
)
async def test_an_odd_request_id_is_replaced(
    client: httpx.AsyncClient, logged: Logged, given: str
) -> None:
    response = await client.get("/healthz", headers={b"X-Request-ID": given.encode("latin-1")})
    generated = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert logged.requests()[-1]["request_id"] == generated


async def test_lines_logged_while_handling_a_request_carry_its_id(
    app: FastAPI, unsafe_client: httpx.AsyncClient, logged: Logged
) -> None:
    async def fails() -> None:
        raise RuntimeError("the secret reason 7f3a")

    app.add_api_route("/fails", fails)
    response = await unsafe_client.get("/fails", headers={"X-Request-ID": "req-42"})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}
    assert response.headers["x-request-id"] == "req-42"
    error = next(line for line in logged.lines() if line["level"] == "ERROR")
    assert error["request_id"] == "req-42"
    assert logged.requests()[-1]["status"] == 500


# security events


async def test_a_failed_login_is_an_event_and_the_password_is_never_logged(
    client: httpx.AsyncClient, customer: Account, logged: Logged
) -> None:
    password = "Distinctive-Pa55word-9c1e"
    wrong = await client.post("/login", json={"email": customer.email, "password": password})
    assert wrong.status_code == 404
    unknown = await client.post(
        "/login", json={"email": "nobody-7d2e@example.com", "password": password}
    )
    assert unknown.status_code == 404
    malformed = await client.post("/login/", json={"email": 12, "password": [password]})
    assert malformed.status_code == 400

    found = logged.events()
    assert [event["event"] for event in found] == ["login_failed"] * 3
    assert [event["status"] for event in found] == [404, 404, 400]
    assert [event["request_id"] for event in found] == [
        response.headers["x-request-id"] for response in (wrong, unknown, malformed)
    ]
    assert all(event["client"] == "127.0.0.1" and "user_id" not in event for event in found)
    assert all(event["level"] == "WARNING" for event in found)
    text = logged.text()
    for secret in (password, "nobody-7d2e", customer.email):
        assert secret not in text


async def test_a_successful_login_is_no_event(
    client: httpx.AsyncClient, customer: Account, logged: Logged
) -> None:
    response = await client.post(
        "/login", json={"email": customer.email, "password": customer.password}
    )
    assert response.status_code == 200
    assert logged.events() == []
    assert logged.requests()[-1]["status"] == 200
    assert response.json()["token"] not in logged.text()


async def test_refusals_are_access_denied_events_with_the_user_when_known(
    client: httpx.AsyncClient, customer: Account, logged: Logged
) -> None:
    assert (await client.get("/users")).status_code == 401
    assert (await client.get("/users", headers=customer.headers)).status_code == 403
    found = logged.events()
    assert [(event["event"], event["status"]) for event in found] == [
        ("access_denied", 401),
        ("access_denied", 403),
    ]
    assert "user_id" not in found[0]
    assert found[1]["user_id"] == customer.id
    assert all(event["path"] == "/users" and event["method"] == "GET" for event in found)


async def test_a_rate_limit_hit_is_an_event(
    app: FastAPI, client: httpx.AsyncClient, logged: Logged
) -> None:
    async def limited() -> JSONResponse:
        return JSONResponse({"detail": "too many requests"}, 429, {"Retry-After": "3"})

    app.add_api_route("/limited", limited)
    response = await client.get("/limited", headers={"X-Request-ID": "limited-1"})
    assert response.status_code == 429
    (event,) = logged.events()
    assert (event["event"], event["request_id"], event["client"]) == (
        "rate_limited",
        "limited-1",
        "127.0.0.1",
    )


async def test_a_cross_site_write_is_an_event(
    client: httpx.AsyncClient, customer: Account, logged: Logged
) -> None:
    response = await client.post(
        "/tickets",
        json={"topic": "t", "text": "x"},
        headers={"Cookie": f"token={customer.token}", "Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    (event,) = logged.events()
    assert (event["event"], event["status"], event["path"]) == ("cross_site_write", 403, "/tickets")


async def test_answers_that_are_not_refusals_are_no_events(
    client: httpx.AsyncClient, customer: Account, logged: Logged
) -> None:
    assert (await client.get("/tickets/999", headers=customer.headers)).status_code == 404
    assert (await client.post("/tickets", json={}, headers=customer.headers)).status_code == 400
    assert (await client.get("/nothing")).status_code == 404
    assert logged.events() == []


# nothing secret, anywhere


async def test_no_token_cookie_key_body_or_message_text_is_ever_logged(
    app: FastAPI,
    client: httpx.AsyncClient,
    unsafe_client: httpx.AsyncClient,
    customer: Account,
    superuser: Account,
    logged: Logged,
) -> None:
    text = "My account number is 4111-1111-1111-1111, please help"
    ticket_id = await open_ticket(client, customer, text=text)
    cookie = {"Cookie": f"token={customer.token}; other=cookie-value-3e9a"}
    assert (
        await client.post(f"/tickets/{ticket_id}/messages", json={"text": text}, headers=cookie)
    ).status_code == 201
    assert (
        await client.post("/tickets", json={"topic": "t" * 99, "text": text}, headers=cookie)
    ).status_code == 400  # a validation error
    forged = customer.token[:-4] + "AAAA"
    assert (
        await client.get("/tickets", headers={"Authorization": f"Bearer {forged}"})
    ).status_code == 401
    key = (await client.post("/staff-keys", json={}, headers=superuser.headers)).json()["key"]
    for bearer in (key, STAFF_TOKEN):
        registered = await client.post(
            "/users",
            json={
                "email": f"staff-{bearer[:4]}@example.com",
                "password": "new-staff-Pa55word",
                "username": "n",
                "isStaff": True,
            },
            headers={"Authorization": f"Bearer {bearer}"},
        )
        assert registered.status_code == 201, registered.text

    async def fails(request: Request) -> None:
        body = await request.body()
        raise ValueError(f"failed on {body!r} with {request.headers['authorization']}")

    app.add_api_route("/fails", fails, methods=["POST"])
    assert (
        await unsafe_client.post("/fails", json={"text": text}, headers=customer.headers)
    ).status_code == 500

    text_logged = logged.text()
    assert "ValueError (message not logged)" in text_logged  # the traceback, not its message
    secrets = [
        text,
        "4111-1111",
        customer.token,
        forged,
        superuser.token,
        key,
        STAFF_TOKEN,
        JWT_KEY,
        "cookie-value-3e9a",
        "new-staff-Pa55word",
        "Bearer",
        "Cookie",
    ]
    for secret in secrets:
        assert secret not in text_logged
    assert len(logged.requests()) == 8


def test_a_traceback_keeps_frames_and_types_but_no_messages() -> None:
    inner, group, leaf = (f"{name}-{7 * 6}" for name in ("inner", "group", "leaf"))

    def fail() -> None:
        try:
            raise KeyError(inner)
        except KeyError as exc:
            raise ExceptionGroup(group, [ValueError(leaf)]) from exc

    try:
        fail()
    except ExceptionGroup:
        text = JsonFormatter().formatException(sys.exc_info())
    assert "-42" not in text
    assert "KeyError (message not logged)" in text
    assert "ExceptionGroup (message not logged)" in text
    assert "| ValueError (message not logged)" in text
    assert "direct cause" in text
    assert ", in fail" in text


# `ticketdesk serve`: the configuration uvicorn applies


def _free_port() -> int:
    return free_port(range(8850, 8900))


def _serve(tmp_path: Path, *args: str, **env: str) -> tuple[int, subprocess.Popen[str]]:
    port = _free_port()
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_URL", "DB_", "JWT_", "STAFF_", "LOG_"))
    }
    environment.update(JWT_KEY=JWT_KEY, **env)
    server = subprocess.Popen(
        [sys.executable, "-m", "ticketdesk", "serve", "--port", str(port), *args],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    return port, server


def _stop(server: subprocess.Popen[str]) -> tuple[str, str]:
    os.killpg(server.pid, signal.SIGTERM)
    try:
        return server.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        return server.communicate()


def _when_up(port: int, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"the server did not start: {_stop(server)}")


@pytest.mark.slow
def test_serve_writes_only_json_lines_and_no_access_log(tmp_path: Path) -> None:
    port, server = _serve(tmp_path, "--workers", "2")
    try:
        _when_up(port, server)
        response = httpx.get(f"http://127.0.0.1:{port}/time?secret=query-9d1f")
        assert response.status_code == 200
        denied = httpx.get(f"http://127.0.0.1:{port}/users")
        assert denied.status_code == 401
        time.sleep(0.5)  # let the worker write its lines
    finally:
        stdout, stderr = _stop(server)
    assert stdout == ""
    lines = [json.loads(line) for line in stderr.splitlines()]  # every line is JSON
    messages = [line["message"] for line in lines]
    assert sum(m.startswith("Started server process") for m in messages) >= 2  # each worker
    assert any(m.startswith(f"Uvicorn running on http://127.0.0.1:{port}") for m in messages)
    assert all("color_message" not in line for line in lines)
    assert not any(line["logger"] == "uvicorn.access" for line in lines)
    (time_line,) = [line for line in requests(lines) if line["path"] == "/time"]
    assert time_line["status"] == 200
    assert time_line["request_id"] == response.headers["x-request-id"]
    assert "query-9d1f" not in stderr
    (event,) = events(lines)
    assert (event["event"], event["request_id"]) == (
        "access_denied",
        denied.headers["x-request-id"],
    )


@pytest.mark.slow
def test_log_level_warning_keeps_the_security_events_only(tmp_path: Path) -> None:
    port, server = _serve(tmp_path, "--workers", "1", LOG_LEVEL="warning")
    try:
        _when_up(port, server)
        assert httpx.get(f"http://127.0.0.1:{port}/users").status_code == 401
        time.sleep(0.5)
    finally:
        _, stderr = _stop(server)
    lines = [json.loads(line) for line in stderr.splitlines()]
    assert [line["level"] for line in lines] == ["WARNING"]
    assert lines[0]["event"] == "access_denied"


@pytest.mark.slow
def test_an_unknown_log_level_stops_serve_with_a_message(tmp_path: Path) -> None:
    _, server = _serve(tmp_path, LOG_LEVEL="chatty")
    _, stderr = server.communicate(timeout=60)
    assert server.returncode != 0
    assert "LOG_LEVEL" in stderr
    assert "Traceback" not in stderr


def test_the_configuration_sets_the_service_loggers_to_log_level() -> None:
    config = logging_config("debug")
    assert config["loggers"]["ticketdesk"]["level"] == "DEBUG"
    assert config["loggers"]["uvicorn.error"]["level"] == "DEBUG"
    assert config["root"]["level"] == "WARNING"
    assert logging_config("trace")["loggers"]["uvicorn"]["level"] == 5


def test_console_lines_are_for_people_and_auto_picks_by_the_terminal() -> None:
    from ticketdesk.logs import ConsoleFormatter, log_format

    record = logging.LogRecord("ticketdesk", logging.WARNING, __file__, 1, "job failed", None, None)
    record.job_id = 7
    line = ConsoleFormatter().format(record)
    assert re.fullmatch(r"\d\d:\d\d:\d\d WARNING job failed  job_id=7", line)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert log_format("auto", Terminal()) == "console"
    assert log_format("auto", io.StringIO()) == "json"
    assert log_format("json", Terminal()) == "json"
    assert log_format("console", io.StringIO()) == "console"


@pytest.mark.slow
def test_the_first_lines_say_what_runs_and_where_without_secrets(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'first.db'}",
        "REDIS_URL": "redis://:redis-secret-pw@127.0.0.1:6379/0",
        "SMTP_HOST": "mail.example.com",
        "SMTP_PASSWORD": "smtp-secret-pw",
        "JWT_KEY": "j" * 40,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "ticketdesk", "serve", "--workers", "1", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            time.sleep(0.2)
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    lines = [json.loads(line) for line in stderr.splitlines()]  # not a terminal: JSON
    messages = [line["message"] for line in lines]
    assert messages[0] == "ticketdesk 0.1.0, 1 worker process(es)"
    assert messages[1] == f"database: sqlite+aiosqlite:///{tmp_path / 'first.db'}"
    assert messages[2] == "rate limits: counted in Redis at redis://:***@127.0.0.1:6379/0"
    assert messages[3] == "mail goes out through mail.example.com:587"
    assert messages[4] == f"listening on http://127.0.0.1:{port}: open it in a browser"
    assert "secret-pw" not in stderr
