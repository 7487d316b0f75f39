"""The `ticketdesk` command, run as a user would run it."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

import ticketdesk.cli
from conftest import JWT_KEY, STAFF_TOKEN, Account, add_account
from throwaway_postgres import ThrowawayPostgres, free_port
from ticketdesk.cli import build_parser, main
from ticketdesk.models import users

pytestmark = pytest.mark.slow


def environment(**env: str) -> dict[str, str]:
    """This process's environment without any of the service's settings, then `env`."""
    ours = ("DATABASE_URL", "DB_", "JWT_", "STAFF_", "SHUTDOWN_", "SERVER_")
    result = {key: value for key, value in os.environ.items() if not key.startswith(ours)}
    result.update(env)
    return result


def run(
    args: list[str], cwd: Path, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ticketdesk", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=environment(**env),
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("command", [[], ["serve"], ["migrate"], ["create-superuser"]])
def test_help(command: list[str], tmp_path: Path) -> None:
    result = run([*command, "--help"], tmp_path)
    assert result.returncode == 0
    assert "usage: ticketdesk" in result.stdout


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """`ticketdesk` itself, then every command and group of commands below it."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                yield from _commands(command, (*path, name))


COMMANDS = dict(_commands(build_parser()))


@pytest.mark.parametrize("path", list(COMMANDS), ids=lambda path: " ".join(path) or "ticketdesk")
def test_every_command_says_what_it_does_and_what_each_argument_means(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "1000")  # one line a paragraph: each text shows whole
    parser = COMMANDS[path]
    with pytest.raises(SystemExit) as stopped:
        main([*path, "--help"])
    assert stopped.value.code == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"usage: {parser.prog} ")
    assert parser.description and parser.description.strip()
    assert parser.description in shown
    for action in parser._actions:
        where = f"{parser.prog}: {'/'.join(action.option_strings) or action.dest}"
        assert action.help and action.help.strip() and action.help != argparse.SUPPRESS, where
        assert action.help in shown, where
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                assert choice.help and choice.help in shown, f"{parser.prog} {choice.dest}"


def test_the_package_docstring_lists_every_command() -> None:
    listed = [line.strip() for line in (ticketdesk.cli.__doc__ or "").splitlines()]
    for path, parser in COMMANDS.items():
        if "handler" in parser._defaults:
            assert any(entry.startswith(f"{' '.join(path)} ") for entry in listed), path


def test_mail_in_help_gives_the_exit_codes_the_mta_acts_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["mail-in", "--help"])
    exit_status = capsys.readouterr().out.split("exit status:\n")[1]
    codes = [line.split()[0] for line in exit_status.splitlines() if line[:4].strip().isdigit()]
    assert codes == ["0", "65", "75", "77"]


def test_migrate_creates_the_sqlite_database(tmp_path: Path) -> None:
    result = run(["migrate"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "ticketdesk.db").exists()


def test_create_superuser_reads_the_password_from_stdin(tmp_path: Path) -> None:
    result = run(
        [
            "create-superuser",
            "--email",
            "Root@Example.com",
            "--username",
            "root",
            "--password-stdin",
        ],
        tmp_path,
        stdin="a long enough password\n",
    )
    assert result.returncode == 0, result.stderr
    assert "a long enough password" not in result.stdout + result.stderr
    engine = create_engine(f"sqlite:///{tmp_path / 'ticketdesk.db'}")
    with engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.email == "root@example.com")).one()
    engine.dispose()
    assert (row.is_superuser, row.is_staff, row.username) == (True, True, "root")
    assert row.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")

    again = run(
        ["create-superuser", "--email", "root@example.com", "--username", "x", "--password-stdin"],
        tmp_path,
        stdin="another long password\n",
    )
    assert again.returncode != 0
    assert "already exists" in again.stderr


def test_create_superuser_refuses_a_short_password(tmp_path: Path) -> None:
    result = run(
        ["create-superuser", "--email", "a@example.com", "--username", "a", "--password-stdin"],
        tmp_path,
        stdin="short\n",
    )
    assert result.returncode != 0
    assert "password" in result.stderr


def test_create_superuser_takes_the_reserved_names_trial_domains_names(tmp_path: Path) -> None:
    def create(email: str, **env: str) -> subprocess.CompletedProcess[str]:
        args = ["create-superuser", "--email", email, "--username", "root", "--password-stdin"]
        return run(args, tmp_path, stdin="a long enough password\n", **env)

    refused = create("root@desk.local")
    assert refused.returncode == 1
    assert "special-use or reserved name" in refused.stderr and "Traceback" not in refused.stderr
    assert create("root@desk.test").returncode == 0
    taken = create("root@desk.local", TRIAL_DOMAINS="local")
    assert taken.returncode == 0, taken.stderr
    assert "superuser root@desk.local created" in taken.stdout
    assert create("other@desk.test", TRIAL_DOMAINS="local").returncode == 1
    engine = create_engine(f"sqlite:///{tmp_path / 'ticketdesk.db'}")
    with engine.connect() as conn:
        emails = conn.execute(select(users.c.email).order_by(users.c.id)).scalars().all()
    engine.dispose()
    assert emails == ["root@desk.test", "root@desk.local"]


def test_a_short_jwt_key_stops_the_server_from_starting(tmp_path: Path) -> None:
    result = run(["serve", "--port", "1"], tmp_path, JWT_KEY="too-short")
    assert result.returncode != 0
    assert "JWT_KEY" in result.stderr


def test_create_superuser_without_a_terminal_asks_for_password_stdin(tmp_path: Path) -> None:
    result = run(["create-superuser", "--email", "a@example.com", "--username", "a"], tmp_path)
    assert result.returncode != 0
    assert "--password-stdin" in result.stderr
    assert "Traceback" not in result.stderr


SERVE_PORTS = range(8700, 8750)


@contextmanager
def serving(tmp_path: Path, url: URL, **env: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """`ticketdesk serve` in a process of its own, answering on the port handed back."""
    port = free_port(SERVE_PORTS)
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "ticketdesk", "serve", "--workers", "1", "--port", str(port)],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment(
            DATABASE_URL=url.render_as_string(hide_password=False),
            JWT_KEY=JWT_KEY,
            STAFF_TOKEN=STAFF_TOKEN,
            **env,
        ),
    )
    try:
        deadline = time.monotonic() + 60
        while not _answers(port):
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield server, port
    finally:
        if server.poll() is None:
            server.kill()
        server.wait(timeout=10)
        log.close()


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _refuses_connections(port: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
        except ConnectionRefusedError:
            return True
        time.sleep(0.05)
    return False


def _start_ticket(port: int, account: Account) -> tuple[socket.socket, bytes]:
    """A POST /tickets the service has begun to handle, its body still to be sent (returned)."""
    body = json.dumps({"topic": "sent across a stop", "text": "slowly"}).encode()
    head = (
        f"POST /tickets HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {account.token}\r\nExpect: 100-continue\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    conn = socket.create_connection(("127.0.0.1", port), timeout=20)
    conn.sendall(head + body[:10])
    # Sent once the application asks for the body: the request is in its hands.
    expected = b"HTTP/1.1 100 Continue\r\n\r\n"
    received = b""
    while len(received) < len(expected) and (chunk := conn.recv(len(expected) - len(received))):
        received += chunk
    assert received == expected
    return conn, body[10:]


def _read_to_end(conn: socket.socket) -> bytes:
    received = b""
    while chunk := conn.recv(65536):
        received += chunk
    return received


async def _account(url: URL) -> Account:
    engine = create_async_engine(url)
    try:
        return await add_account(engine, "shutdown@example.com")
    finally:
        await engine.dispose()


async def _query(url: URL, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(False))
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


SERVICE_CONNECTIONS = (
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE application_name IN ('ticketdesk', 'ticketdesk-listen')"
)


def test_sigterm_lets_the_request_in_flight_finish_refuses_new_ones_and_closes_the_pools(
    own_postgres: ThrowawayPostgres, tmp_path: Path
) -> None:
    url = own_postgres.url
    account = asyncio.run(_account(url))
    with serving(tmp_path, url, SHUTDOWN_TIMEOUT="20") as (server, port):
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/tickets", headers=account.headers).status_code == 200
        warm = httpx.post(
            f"{base}/tickets", json={"topic": "t", "text": "t"}, headers=account.headers
        )
        assert warm.status_code == 201
        # The pool's, and the one that listens for revocations.
        assert asyncio.run(_query(url, SERVICE_CONNECTIONS))[0][0] >= 2
        conn, rest = _start_ticket(port, account)
        with conn:
            stop_sent = time.monotonic()
            server.send_signal(signal.SIGTERM)
            assert _refuses_connections(port, within=5)
            assert server.poll() is None  # still finishing the request in flight
            conn.sendall(rest)
            response = _read_to_end(conn)
        assert response.startswith(b"HTTP/1.1 201 "), response
        assert b"connection: close" in response.lower()
        ticket_id = json.loads(response.split(b"\r\n\r\n", 1)[1])["id"]
        assert server.wait(timeout=20) == 0
        assert time.monotonic() - stop_sent < 10
    log = (tmp_path / "server.log").read_text()
    assert "Application shutdown complete" in log
    assert "Traceback" not in log
    topics = asyncio.run(_query(url, f"SELECT topic FROM tickets WHERE id = {int(ticket_id)}"))
    assert [row["topic"] for row in topics] == ["sent across a stop"]
    deadline = time.monotonic() + 5  # a backend ends a moment after its client hangs up
    while (left := asyncio.run(_query(url, SERVICE_CONNECTIONS))[0][0]) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert left == 0


def test_a_request_that_never_ends_holds_the_stop_for_shutdown_timeout_at_most(
    own_postgres: ThrowawayPostgres, tmp_path: Path
) -> None:
    url = own_postgres.url
    account = asyncio.run(_account(url))
    with serving(tmp_path, url, SHUTDOWN_TIMEOUT="1") as (server, port):
        conn, _never_sent = _start_ticket(port, account)
        with conn:
            stop_sent = time.monotonic()
            server.send_signal(signal.SIGTERM)
            assert server.wait(timeout=20) == 0
            waited = time.monotonic() - stop_sent
    assert 1 <= waited < 5
    assert "timeout graceful shutdown exceeded" in (tmp_path / "server.log").read_text()


async def test_operators_reset_a_password_and_change_roles_from_the_command_line(
    database_url: URL,
    tmp_path: Path,
    client: httpx.AsyncClient,
    make_user: Any,
    superuser: Account,
) -> None:
    env = {"DATABASE_URL": database_url.render_as_string(hide_password=False), "JWT_KEY": JWT_KEY}
    customer = await make_user("customer", email="cora@example.com")
    agent = await make_user("staff", email="abe@example.com")
    ticket = await client.post(
        "/tickets", json={"topic": "t", "text": "x"}, headers=customer.headers
    )
    ticket_id = ticket.json()["id"]
    assigned = await client.patch(
        f"/tickets/{ticket_id}", json={"assignee_id": agent.id}, headers=agent.headers
    )
    assert assigned.status_code == 200

    reset = await asyncio.to_thread(
        run,
        ["set-password", "--email", f"  {superuser.email.upper()} ", "--password-stdin"],
        tmp_path,
        "the new root password\n",
        **env,
    )
    assert reset.returncode == 0, reset.stderr
    assert "the new root password" not in reset.stdout + reset.stderr
    assert (await client.get("/users/me", headers=superuser.headers)).status_code == 401
    login = await client.post(
        "/login", json={"email": superuser.email, "password": "the new root password"}
    )
    assert login.status_code == 200

    short = await asyncio.to_thread(
        run,
        ["set-password", "--email", superuser.email, "--password-stdin"],
        tmp_path,
        "short\n",
        **env,
    )
    assert short.returncode != 0 and "password" in short.stderr
    unknown = await asyncio.to_thread(
        run, ["promote", "--email", "nobody@example.com", "--staff"], tmp_path, **env
    )
    assert unknown.returncode != 0 and "no account has the email" in unknown.stderr

    promoted = await asyncio.to_thread(
        run, ["promote", "--email", customer.email, "--staff"], tmp_path, **env
    )
    assert promoted.returncode == 0, promoted.stderr
    assert (await client.get("/events", headers=customer.headers)).status_code == 200

    demoted = await asyncio.to_thread(run, ["demote", "--email", agent.email], tmp_path, **env)
    assert demoted.returncode == 0, demoted.stderr
    assert (await client.get("/users/me", headers=agent.headers)).status_code == 401
    now = await client.get(f"/tickets/{ticket_id}", headers=customer.headers)
    assert now.json()["assignee_id"] is None

    listed = await asyncio.to_thread(run, ["users", "list", "--json"], tmp_path, **env)
    roles = {
        row["email"]: (row["is_staff"], row["is_superuser"]) for row in json.loads(listed.stdout)
    }
    assert roles == {
        superuser.email: (True, True),
        customer.email: (True, False),
        agent.email: (False, False),
    }
    table = await asyncio.to_thread(run, ["users", "list"], tmp_path, **env)
    assert table.stdout.splitlines()[0].split() == [
        "id",
        "email",
        "username",
        "role",
        "active",
        "tickets",
    ]
    assert any(
        line.split()[1:2] == [agent.email] and "customer" in line
        for line in table.stdout.splitlines()
    )
