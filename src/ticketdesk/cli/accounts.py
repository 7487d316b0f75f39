"""The accounts from the command line: `create-superuser`, `set-password`, `promote`,
`demote` and `users list`, for the operator who has no superuser to sign in with (yet)."""

from __future__ import annotations

import argparse
import getpass
import sys

from pydantic import TypeAdapter, ValidationError

from ticketdesk import migrate
from ticketdesk.cli.common import Commands, add_command, load_settings


def add_commands(commands: Commands) -> None:
    superuser = add_command(
        commands,
        "create-superuser",
        _create_superuser,
        summary="create a superuser account",
        description="Create a superuser, applying the database migrations first. The email "
        "and username are prompted for unless given; the password is prompted for, or read "
        "from stdin; never from the command line. Exits 1 when the account exists already "
        "or a value is refused.",
    )
    superuser.add_argument("--email", help="the superuser's email")
    superuser.add_argument("--username", help="the superuser's display name")
    superuser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin",
    )

    password = add_command(
        commands,
        "set-password",
        _set_password,
        summary="set an account's password (a forgotten superuser's, say)",
        description="Set the password of the account with this email; every session it "
        "had ends. The password is prompted for, or read from stdin.",
    )
    _email_argument(password)
    password.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin's first line"
    )

    promote = add_command(
        commands,
        "promote",
        _promote,
        summary="make an account staff or a superuser",
        description="Give the account with this email a role: staff (an agent), or "
        "superuser (staff too).",
    )
    _email_argument(promote)
    role = promote.add_mutually_exclusive_group(required=True)
    role.add_argument("--superuser", action="store_true", help="a superuser (and staff)")
    role.add_argument("--staff", action="store_true", help="staff: an agent")

    demote = add_command(
        commands,
        "demote",
        _demote,
        summary="make an agent a customer again",
        description="Take staff and superuser rights away: their open tickets go back to the "
        "team and their sessions end.",
    )
    _email_argument(demote)

    users = add_command(
        commands,
        "users",
        None,
        summary="the accounts",
        description="The accounts: `ticketdesk users list` lists them.",
    )
    users_commands = users.add_subparsers(
        dest="users_command", required=True, metavar="COMMAND", help="what to do with them"
    )
    listing = add_command(
        users_commands,
        "list",
        _users_list,
        summary="list every account",
        description="List every account: its id, email, username, role, whether it is "
        "active, and its count of tickets; with --json, every field as JSON.",
    )
    listing.add_argument("--json", action="store_true", help="print JSON")


def _email_argument(parser: argparse.ArgumentParser) -> None:
    """The account a command acts on; any case, as at sign-in."""
    parser.add_argument("--email", required=True, help="the account's email")


def _read_password(from_stdin: bool) -> str:
    """The new password: stdin's first line, or typed twice at a terminal; never an argument,
    which other users of the machine could read in the process list."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        sys.exit("ticketdesk: no terminal to prompt on: pipe the password in with --password-stdin")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Password (again): ") != password:
        sys.exit("ticketdesk: the passwords do not match")
    return password


def _create_superuser(args: argparse.Namespace) -> None:
    from ticketdesk import admin
    from ticketdesk.users.schemas import UserCreate
    from ticketdesk.users.service import NewAccount, create_account

    settings = load_settings()
    email = args.email or input("Email: ")
    username = args.username or input("Username: ")
    password = _read_password(args.password_stdin)
    try:
        data = TypeAdapter(UserCreate).validate_python(
            {"email": email, "username": username, "password": password}
        )
    except ValidationError as exc:
        problems = "; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in exc.errors())
        sys.exit(f"ticketdesk: {problems}")
    account = NewAccount(
        email=data.email,
        username=data.username,
        password=data.password,
        is_staff=True,
        is_superuser=True,
    )

    migrate.upgrade(settings.database)
    user = admin.in_transaction(
        settings,
        lambda db: create_account(db, account, trial_domains=settings.trial_domain_names),
    )
    print(f"superuser {data.email} created with id {user.id}")


def _set_password(args: argparse.Namespace) -> None:
    from ticketdesk import admin

    settings = load_settings()
    admin.set_password(args, settings, _read_password(args.password_stdin))


def _promote(args: argparse.Namespace) -> None:
    from ticketdesk import admin

    admin.set_role(args, load_settings(), "superuser" if args.superuser else "staff")


def _demote(args: argparse.Namespace) -> None:
    from ticketdesk import admin

    admin.set_role(args, load_settings(), "customer")


def _users_list(args: argparse.Namespace) -> None:
    from ticketdesk import admin

    admin.list_users(args, load_settings())
