"""The operator's commands: accounts (`set-password`, `promote`, `demote`, `users list`) and
the job queue (`jobs`). Each wraps the same services the API uses, in one transaction."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pydantic import TypeAdapter, ValidationError

from ticketdesk.db import Db, open_database, row_as_json
from ticketdesk.errors import TicketdeskError
from ticketdesk.schemas import Password
from ticketdesk.settings import Settings

T = TypeVar("T")


def in_transaction(settings: Settings, work: Callable[[Db], Awaitable[T]]) -> T:
    """Run `work` on the database, committed when it returns; exit with its message when a
    service refuses (no such account, say)."""

    async def run() -> T:
        database = await open_database(settings)
        try:
            async with database.session() as db:
                return await work(db)
        finally:
            await database.close(settings.db_connect_timeout)

    try:
        return asyncio.run(run())
    except TicketdeskError as exc:
        sys.exit(f"ticketdesk: {exc.detail}")


def set_password(args: argparse.Namespace, settings: Settings, password: str) -> None:
    from ticketdesk.users import service

    try:
        password = TypeAdapter(Password).validate_python(password)
    except ValidationError as exc:
        sys.exit(f"ticketdesk: password: {exc.errors()[0]['msg']}")

    user_id = in_transaction(
        settings, lambda db: service.set_password(db, email=args.email, password=password)
    )
    print(f"password of user {user_id} set; every earlier session of it has ended")


def set_role(args: argparse.Namespace, settings: Settings, role: str) -> None:
    from ticketdesk.users import service

    row = in_transaction(settings, lambda db: service.set_role(db, email=args.email, role=role))
    print(f"{row.email} (user {row.id}) is now {'a ' if role != 'staff' else ''}{role}")


def list_users(args: argparse.Namespace, settings: Settings) -> None:
    from ticketdesk.users import service

    rows = in_transaction(settings, service.all_users)
    if args.json:
        print(json.dumps([row_as_json(row) for row in rows], indent=2))
        return
    print(f"{'id':>6}  {'email':<32} {'username':<20} {'role':<10} {'active':<6} {'tickets':>7}")
    for row in rows:
        role = "superuser" if row.is_superuser else "staff" if row.is_staff else "customer"
        print(
            f"{row.id:>6}  {row.email:<32} {row.username[:20]:<20} {role:<10} "
            f"{'yes' if row.is_active else 'no':<6} {row.tickets_count:>7}"
        )
