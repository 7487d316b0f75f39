"""The database as a whole: its schema (`migrate`) and its contents (`backup`, `restore`).

`migrate` stands here rather than beside `serve`: it is what an operator runs around a
backup and a restore (which migrates as it ends), and before starting servers that skip
it (`serve --no-migrate`); none of the three runs the application.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ticketdesk import migrate
from ticketdesk.cli.common import Commands, add_command, load_settings


def add_commands(commands: Commands) -> None:
    add_command(
        commands,
        "migrate",
        _migrate,
        summary="apply database migrations",
        description="Bring the schema up to date. `serve` does it on start, unless --no-migrate.",
    )

    backup = add_command(
        commands,
        "backup",
        _backup,
        summary="copy the database to a file, while the service runs",
        description="A consistent copy of the database: SQLite's online backup, or pg_dump's "
        "custom format. The attachments under DATA_DIR are files: copy them beside it. "
        "Exits 1 when the copy cannot be made (no pg_dump, say).",
    )
    backup.add_argument("path", help="the file to write")

    restore = add_command(
        commands,
        "restore",
        _restore,
        summary="replace the database with a backup",
        description="Restore a backup made by `ticketdesk backup`, then migrate it to this "
        "version's schema. Refuses a database that holds data, unless --force. Exits 1 "
        "when it refuses or the restore fails.",
    )
    restore.add_argument("path", help="the backup to restore")
    restore.add_argument("--force", action="store_true", help="replace a database with data")


def _migrate(args: argparse.Namespace) -> None:
    migrate.upgrade(load_settings().database)
    print("database schema is up to date")


def _backup(args: argparse.Namespace) -> None:
    from ticketdesk.db import backup

    settings = load_settings()
    try:
        backup.backup(settings.database, Path(args.path))
    except (backup.BackupFailed, OSError) as exc:
        sys.exit(f"ticketdesk: backup failed: {exc}")
    print(f"backed up {settings.database.render_as_string(hide_password=True)} to {args.path}")
    print(f"back up {settings.data_dir / 'attachments'} beside it: the attachments are files")


def _restore(args: argparse.Namespace) -> None:
    from ticketdesk.db import backup

    settings = load_settings()
    try:
        backup.restore(settings.database, Path(args.path), force=args.force)
    except (backup.BackupFailed, OSError) as exc:
        sys.exit(f"ticketdesk: restore failed: {exc}")
    shown = settings.database.render_as_string(hide_password=True)
    print(f"restored {args.path} into {shown}; its schema is up to date")
