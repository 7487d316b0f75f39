"""The `ticketdesk` command, run as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from ticketdesk.models import users


def run(
    args: list[str], cwd: Path, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_URL", "DB_", "JWT_", "STAFF_"))
    }
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "ticketdesk", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("command", [[], ["serve"], ["migrate"], ["create-superuser"]])
def test_help(command: list[str], tmp_path: Path) -> None:
    result = run([*command, "--help"], tmp_path)
    assert result.returncode == 0
    assert "usage: ticketdesk" in result.stdout


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


def test_a_short_jwt_key_stops_the_server_from_starting(tmp_path: Path) -> None:
    result = run(["serve", "--port", "1"], tmp_path, JWT_KEY="too-short")
    assert result.returncode != 0
    assert "JWT_KEY" in result.stderr


def test_create_superuser_without_a_terminal_asks_for_password_stdin(tmp_path: Path) -> None:
    result = run(["create-superuser", "--email", "a@example.com", "--username", "a"], tmp_path)
    assert result.returncode != 0
    assert "--password-stdin" in result.stderr
    assert "Traceback" not in result.stderr
