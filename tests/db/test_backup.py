"""`ticketdesk backup` under write load, and `ticketdesk restore` into a fresh database."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import make_url, select, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import JWT_KEY, add_account, own_engine, running_servers
from ticketdesk import migrate
from ticketdesk.models import tickets

pytestmark = pytest.mark.slow

RESTORED_DATABASE = "ticketdesk_restored"


async def ticketdesk(url: URL, cwd: Path, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ticketdesk",
        *args,
        cwd=cwd,
        env={
            **os.environ,
            "DATABASE_URL": url.render_as_string(hide_password=False),
            "JWT_KEY": JWT_KEY,
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


@pytest.fixture
async def fresh_url(database_url: URL, tmp_path: Path) -> AsyncIterator[URL]:
    """An empty database beside the tests' own, to restore into."""
    if database_url.get_backend_name() == "sqlite":
        yield make_url(f"sqlite+aiosqlite:///{tmp_path / 'restored.db'}")
        return
    admin = database_url.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {RESTORED_DATABASE} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {RESTORED_DATABASE}")
        yield database_url.set(database=RESTORED_DATABASE)
    finally:
        await conn.execute(f"DROP DATABASE IF EXISTS {RESTORED_DATABASE} WITH (FORCE)")
        await conn.close()


async def test_a_backup_under_write_load_restores_every_ticket_acknowledged_before_it(
    database_url: URL, tmp_path: Path, engine: AsyncEngine, fresh_url: URL
) -> None:
    account = await add_account(engine, "writer@example.com")
    acknowledged: list[int] = []
    backup = tmp_path / "ticketdesk.backup"
    with running_servers(1, database_url, tmp_path, RATE_LIMITS="false") as (url,):
        stop = asyncio.Event()
        fifty = asyncio.Event()

        async def write() -> None:
            async with httpx.AsyncClient(base_url=url, headers=account.headers) as client:
                while not stop.is_set():
                    created = await client.post("/tickets", json={"topic": "load", "text": "x"})
                    assert created.status_code == 201
                    acknowledged.append(created.json()["id"])
                    if len(acknowledged) >= 50:
                        fifty.set()

        writers = [asyncio.create_task(write()) for _ in range(4)]
        await asyncio.wait_for(fifty.wait(), 30)
        before = set(acknowledged)  # acknowledged before the backup began
        code, output = await ticketdesk(database_url, tmp_path, "backup", str(backup))
        during = len(acknowledged) - len(before)
        stop.set()
        await asyncio.gather(*writers)
    assert code == 0, output
    assert during > 0  # the writes went on while it ran

    code, output = await ticketdesk(fresh_url, tmp_path, "restore", str(backup))
    assert code == 0, output
    async with own_engine(fresh_url) as restored, restored.connect() as conn:
        ids = set((await conn.execute(select(tickets.c.id))).scalars())
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    assert before <= ids
    assert ids <= set(acknowledged)  # nothing half-written
    head = ScriptDirectory.from_config(migrate.alembic_config(fresh_url)).get_current_head()
    assert version == head

    # A database with data is not replaced unless asked to.
    code, output = await ticketdesk(fresh_url, tmp_path, "restore", str(backup))
    assert code != 0 and "holds data" in output
    code, output = await ticketdesk(fresh_url, tmp_path, "restore", "--force", str(backup))
    assert code == 0, output


def test_a_missing_pg_dump_is_a_clear_error(tmp_path: Path) -> None:
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "ticketdesk", "backup", str(tmp_path / "b")],
        env={**os.environ, "PATH": str(tmp_path), "DATABASE_URL": "postgresql://x@127.0.0.1:9/y"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "pg_dump is not installed" in done.stderr
