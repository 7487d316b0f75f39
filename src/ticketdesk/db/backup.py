"""`ticketdesk backup PATH` and `ticketdesk restore PATH`: the database, consistent while the
service runs.

SQLite: the online backup API copies the database page by page under its locks, so the copy
is one consistent state while writers go on. PostgreSQL: `pg_dump` in its custom format
(one snapshot) and `pg_restore`. Attachments are files under DATA_DIR: back them up beside.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
from pathlib import Path

import asyncpg
from sqlalchemy.engine import URL

from ticketdesk import migrate

CHECKED_TABLES = ("users", "tickets")


class BackupFailed(Exception):
    """Why a backup or a restore could not be done, for the operator."""


def _sqlite_path(url: URL) -> Path:
    name = url.database
    if not name or name == ":memory:":
        raise BackupFailed("an in-memory SQLite database cannot be backed up")
    return Path(name)


def _libpq(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _program(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupFailed(
            f"{name} is not installed: install PostgreSQL's client programs "
            f"(Debian: apt install postgresql-client) with the server's major version"
        )
    return found


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise BackupFailed(result.stderr.strip() or f"{Path(command[0]).name} failed")


def _copy_sqlite(source_path: Path, target_path: Path) -> None:
    """SQLite's online backup: one consistent state of the source, however busy it is."""
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
    target = sqlite3.connect(target_path)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def backup(url: URL, path: Path) -> None:
    """Write a consistent copy of the database to `path` (replaced if it exists)."""
    if url.get_backend_name() == "sqlite":
        source_path = _sqlite_path(url)
        if not source_path.exists():
            raise BackupFailed(f"there is no database at {source_path}")
        partial = path.with_name(path.name + ".partial")
        _copy_sqlite(source_path, partial)
        partial.replace(path)
        return
    _run([_program("pg_dump"), "--format=custom", "--no-owner", f"--file={path}", _libpq(url)])


def is_empty(url: URL) -> bool:
    """No account and no ticket (or no tables at all)."""
    if url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(_sqlite_path(url))
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            return not any(
                conn.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()[0]  # noqa: S608
                for table in CHECKED_TABLES
                if table in tables
            )
        finally:
            conn.close()
    return asyncio.run(_postgres_is_empty(url))


async def _postgres_is_empty(url: URL) -> bool:
    conn = await asyncpg.connect(_libpq(url))
    try:
        for table in CHECKED_TABLES:
            if await conn.fetchval("SELECT to_regclass($1)", table) is None:
                continue
            if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"):  # noqa: S608
                return False
    finally:
        await conn.close()
    return True


def restore(url: URL, path: Path, *, force: bool) -> None:
    """Replace the database with the backup at `path`, then bring its schema up to date."""
    if not path.is_file():
        raise BackupFailed(f"there is no backup at {path}")
    if url.get_backend_name() == "sqlite":
        target_path = _sqlite_path(url)
        if not force and target_path.exists() and not is_empty(url):
            raise BackupFailed(f"{target_path} holds data: restore over it with --force")
        _copy_sqlite(path, target_path)
    else:
        if not force and not is_empty(url):
            raise BackupFailed("the database holds data: restore over it with --force")
        _run(
            [
                _program("pg_restore"),
                "--clean",
                "--if-exists",
                "--no-owner",
                "--single-transaction",
                f"--dbname={_libpq(url)}",
                str(path),
            ]
        )
    migrate.upgrade(url)
