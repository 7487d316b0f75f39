"""`ticketdesk serve | migrate | create-superuser`: the same services the API uses."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import logging.config
import math
import os
import signal
import sys
import traceback
from dataclasses import replace
from pathlib import Path
from types import FrameType

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.engine import make_url

from ticketdesk import migrate
from ticketdesk.logs import log_format, logging_config
from ticketdesk.settings import Settings

log = logging.getLogger("ticketdesk")


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        sys.exit(f"ticketdesk: invalid configuration: {problems}")


def _serve(args: argparse.Namespace) -> None:
    _metrics_directory()  # before anything imports prometheus_client
    import uvicorn

    from ticketdesk.web.server import BoundedHttpToolsProtocol

    settings = _settings()
    log_config = logging_config(settings.log_level, fmt=log_format(settings.log_format))
    try:
        logging.config.dictConfig(log_config)  # the lines before uvicorn starts are JSON too
    except ValueError:
        sys.exit(
            f"ticketdesk: invalid configuration: LOG_LEVEL: unknown level {settings.log_level!r}"
        )
    host = args.host or settings.server_host
    port = args.port or settings.server_port
    _say_what_runs(settings, host, port, args.workers)
    if not args.no_migrate:
        migrate.upgrade(settings.database)
    try:
        settings.signing_key()  # generated here once, not by each worker
    except ValueError as exc:
        sys.exit(f"ticketdesk: {exc}")
    if settings.jwt_key is None:
        log.info("JWT_KEY is not set: tokens are signed with the key in %s", settings.key_file())
    signal.signal(signal.SIGTERM, _stopped)
    uvicorn.run(
        "ticketdesk.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=args.workers,
        # A worker must answer uvicorn's first ping within this (else it is killed, "Child
        # process died"): importing and building the app takes 2 s here, 5.5 s with the
        # cores overloaded three times over.
        timeout_worker_healthcheck=WORKER_START_TIMEOUT_S,
        loop="uvloop",
        http=BoundedHttpToolsProtocol,  # httptools, with limits on a request's head
        log_level=settings.log_level,
        log_config=log_config,
        access_log=False,  # RequestEdge logs each request
        server_header=False,
        # Whose X-Forwarded-For to believe for the client's address (rate limits, logs).
        forwarded_allow_ips=settings.forwarded_allow_ips,
        # In-flight requests get this long after SIGTERM; uvicorn counts whole seconds.
        timeout_graceful_shutdown=math.ceil(settings.shutdown_timeout),
    )


WORKER_START_TIMEOUT_S = 30
METRICS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"


def _metrics_directory() -> None:
    """Where the worker processes keep their counts for /metrics (PROMETHEUS_MULTIPROC_DIR,
    or a new temporary directory), emptied of an earlier run's: set before any starts."""
    import tempfile

    # Not imported from ticketdesk.metrics: prometheus_client reads the variable on import.
    given = os.environ.get(METRICS_DIRECTORY)
    if given:
        for stale in Path(given).glob("*.db"):
            stale.unlink()
    else:
        os.environ[METRICS_DIRECTORY] = tempfile.mkdtemp(prefix="ticketdesk-metrics-")


def _say_what_runs(settings: Settings, host: str, port: int, workers: int) -> None:
    """The first lines: what runs, on what, and where to open it."""
    from ticketdesk import __version__

    shown_host = f"[{host}]" if ":" in host else host
    log.info("ticketdesk %s, %d worker process(es)", __version__, workers)
    log.info("database: %s", settings.database.render_as_string(hide_password=True))
    if settings.redis_url:
        redis = make_url(settings.redis_url).render_as_string(hide_password=True)
        log.info("rate limits: counted in Redis at %s", redis)
    else:
        log.info("rate limits: counted in each process's memory (REDIS_URL is not set)")
    _say_whether_mail_is_on(settings)
    log.info("listening on http://%s:%d: open it in a browser", shown_host, port)
    if settings.public_url:
        log.info("people reach it at %s (PUBLIC_URL)", settings.base_url)


def _say_whether_mail_is_on(settings: Settings) -> None:
    if not settings.mail_enabled:
        log.info("SMTP_HOST is not set: no mail is sent (password resets included)")
    else:
        log.info("mail goes out through %s:%s", settings.smtp_host, settings.smtp_port)


def _logged_settings() -> Settings:
    settings = _settings()
    try:
        logging.config.dictConfig(
            logging_config(settings.log_level, fmt=log_format(settings.log_format))
        )
    except ValueError:
        sys.exit(
            f"ticketdesk: invalid configuration: LOG_LEVEL: unknown level {settings.log_level!r}"
        )
    return settings


def _worker(args: argparse.Namespace) -> None:
    """Run the jobs until SIGTERM or SIGINT; the jobs in hand may finish first."""
    from ticketdesk.db import open_database
    from ticketdesk.notifications.runners import start_worker, stop_worker

    settings = _logged_settings()
    _say_whether_mail_is_on(settings)
    settings.signing_key()

    async def work() -> None:
        database = await open_database(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        task = start_worker(database, settings)
        log.info("worker started: running jobs")
        try:
            await stop.wait()
        finally:
            await stop_worker(task, settings.shutdown_timeout)
            await database.close(settings.db_connect_timeout)
        log.info("worker stopped")

    asyncio.run(work())


def _jobs(args: argparse.Namespace) -> None:
    import json

    from ticketdesk.admin import in_transaction
    from ticketdesk.jobs import report
    from ticketdesk.jobs.service import overview

    seen = in_transaction(_settings(), lambda db: overview(db, limit=args.limit))
    print(json.dumps(report.as_json(seen), indent=2) if args.json else report.text(seen))


def _set_password(args: argparse.Namespace) -> None:
    from ticketdesk import admin

    settings = _settings()
    admin.set_password(args, settings, _read_password(args.password_stdin))


def _promote(args: argparse.Namespace) -> None:
    from ticketdesk import admin

    admin.set_role(args, _settings(), "superuser" if args.superuser else "staff")


def _demote(args: argparse.Namespace) -> None:
    from ticketdesk import admin

    admin.set_role(args, _settings(), "customer")


def _users_list(args: argparse.Namespace) -> None:
    from ticketdesk import admin

    admin.list_users(args, _settings())


EX_DATAERR = 65  # sysexits.h: the input was not a mail
EX_TEMPFAIL = 75  # try again later: the MTA keeps the mail and retries
EX_NOPERM = 77  # the sender may not write there: the MTA bounces the mail
MAIL_OVERHEAD_BYTES = 2 * 1024 * 1024


def _mail_in(args: argparse.Namespace) -> None:
    """Read one mail on stdin (an MTA's pipe) and take it in; exit as sysexits.h says."""
    from ticketdesk.attachments.storage import LocalStorage
    from ticketdesk.db import open_database
    from ticketdesk.db.failures import DRIVER_ERRORS
    from ticketdesk.errors import TicketdeskError
    from ticketdesk.mail import inbound, receive

    try:
        settings = Settings()
    except ValidationError as exc:
        print(
            f"ticketdesk mail-in: invalid configuration: {exc.error_count()} errors",
            file=sys.stderr,
        )
        sys.exit(EX_TEMPFAIL)  # the operator fixes it; the mail waits meanwhile
    # Base64 makes attachments a third larger on the wire.
    limit = settings.message_attachments_max_bytes * 4 // 3 + MAIL_OVERHEAD_BYTES
    raw = sys.stdin.buffer.read(limit + 1)
    if len(raw) > limit:
        print(f"ticketdesk mail-in: the mail is larger than {limit} bytes", file=sys.stderr)
        sys.exit(EX_DATAERR)
    try:
        mail = inbound.parse(raw)
    except inbound.InvalidMail as exc:
        print(f"ticketdesk mail-in: not a mail we can read: {exc}", file=sys.stderr)
        sys.exit(EX_DATAERR)
    if args.recipient:
        mail = replace(mail, recipients=(args.recipient.lower(), *mail.recipients))

    async def take() -> receive.Received:
        database = await open_database(settings)
        storage = LocalStorage(settings.data_dir / "attachments")
        try:
            async with database.session() as db:
                return await receive.receive(db, storage, settings, mail, raw)
        finally:
            # Taken in (or not) already: a connection that breaks as it closes changes nothing.
            with contextlib.suppress(*DRIVER_ERRORS):
                await database.close(settings.db_connect_timeout)

    try:
        received = asyncio.run(take())
    except receive.Refused as exc:
        print(f"ticketdesk mail-in: refused: {exc}", file=sys.stderr)
        sys.exit(EX_NOPERM)
    except (TicketdeskError, OSError, TimeoutError) as exc:
        # The database is away or busy (or the disk is): the MTA tries again later.
        reason = getattr(exc, "detail", None) or type(exc).__name__
        print(f"ticketdesk mail-in: try again later: {reason}", file=sys.stderr)
        sys.exit(EX_TEMPFAIL)
    except Exception:  # noqa: BLE001 - every failure must reach the MTA as a code it knows
        # Whatever else went wrong, the mail is kept and tried again (an MTA bounces a mail
        # on any code it does not know): the operator reads the traceback in the MTA's log.
        traceback.print_exc()
        print("ticketdesk mail-in: try again later: an unexpected error", file=sys.stderr)
        sys.exit(EX_TEMPFAIL)
    if received.ticket_id is None:
        print(f"dropped: {received.reason}")
    else:
        print(f"{received.outcome} ticket #{received.ticket_id}")


def _backup(args: argparse.Namespace) -> None:
    from ticketdesk.db import backup

    settings = _settings()
    try:
        backup.backup(settings.database, Path(args.path))
    except (backup.BackupFailed, OSError) as exc:
        sys.exit(f"ticketdesk: backup failed: {exc}")
    print(f"backed up {settings.database.render_as_string(hide_password=True)} to {args.path}")
    print(f"back up {settings.data_dir / 'attachments'} beside it: the attachments are files")


def _restore(args: argparse.Namespace) -> None:
    from ticketdesk.db import backup

    settings = _settings()
    try:
        backup.restore(settings.database, Path(args.path), force=args.force)
    except (backup.BackupFailed, OSError) as exc:
        sys.exit(f"ticketdesk: restore failed: {exc}")
    shown = settings.database.render_as_string(hide_password=True)
    print(f"restored {args.path} into {shown}; its schema is up to date")


def _stopped(signum: int, frame: FrameType | None) -> None:
    """SIGTERM, raised again by uvicorn once its graceful shutdown is done: a clean exit.

    uvicorn hands the signal on to the handler it found, and the default one would end
    the process by the signal, as if the stop had not been orderly.
    """
    sys.exit(0)


def _migrate(args: argparse.Namespace) -> None:
    migrate.upgrade(_settings().database)
    print("database schema is up to date")


def _read_password(from_stdin: bool) -> str:
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

    settings = _settings()
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ticketdesk",
        description="A self-hosted customer-support ticket service. "
        "Configured by environment variables or a .env file (see the README).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="run the HTTP server", description="Run the HTTP server."
    )
    serve.add_argument("--host", help="address to listen on (default: SERVER_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: SERVER_PORT, 8089)")
    serve.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="worker processes, each with its own pool of DB_POOL_SIZE connections "
        "(default: the number of CPUs)",
    )
    serve.add_argument(
        "--no-migrate",
        action="store_true",
        help="do not apply database migrations on start",
    )
    serve.set_defaults(handler=_serve)

    migrate_cmd = commands.add_parser(
        "migrate",
        help="apply database migrations",
        description="Bring the schema up to date.",
    )
    migrate_cmd.set_defaults(handler=_migrate)

    superuser = commands.add_parser(
        "create-superuser",
        help="create a superuser account",
        description="Create a superuser. The password is prompted for, or read from stdin; "
        "never from the command line.",
    )
    superuser.add_argument("--email", help="the superuser's email")
    superuser.add_argument("--username", help="the superuser's display name")
    superuser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin",
    )
    superuser.set_defaults(handler=_create_superuser)

    worker = commands.add_parser(
        "worker",
        help="run the delivery jobs (mail, webhooks) in this process",
        description="Run the jobs that events queue: mail and webhook calls. `serve` runs "
        "them too unless JOBS_IN_SERVER=false; start as many workers as you like, on as "
        "many machines: no job runs twice at once.",
    )
    worker.set_defaults(handler=_worker)

    jobs = commands.add_parser(
        "jobs",
        help="list the lanes, paused webhook endpoints, and queued, running, failed and "
        "recent jobs",
        description="How many jobs are in each state and each lane (mail, webhook calls), "
        "the webhook endpoints paused after failing, and the latest jobs of each state.",
    )
    jobs.add_argument("--limit", type=int, default=20, help="jobs listed per state (default 20)")
    jobs.add_argument("--json", action="store_true", help="print JSON")
    jobs.set_defaults(handler=_jobs)

    mail_in = commands.add_parser(
        "mail-in",
        help="take in one mail from stdin (for an MTA's pipe transport)",
        description="Read one RFC 5322 mail on stdin: a reply to a ticket's address is posted "
        "on the ticket, a mail to the support address opens one. Exits 0 when the mail is "
        "taken (or dropped as an auto-reply, a duplicate or mail from an address of ours), 65 "
        "when it is no mail or its From is no valid address, 75 when the database cannot "
        "be reached (the MTA retries), 77 when the sender may not write "
        "there (the MTA bounces it).",
    )
    mail_in.add_argument(
        "--recipient", help="the envelope recipient, as the MTA knows it (Postfix: ${recipient})"
    )
    mail_in.set_defaults(handler=_mail_in)

    password = commands.add_parser(
        "set-password",
        help="set an account's password (a forgotten superuser's, say)",
        description="Set the password of the account with this email; every session it "
        "had ends. The password is prompted for, or read from stdin.",
    )
    password.add_argument("--email", required=True)
    password.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin's first line"
    )
    password.set_defaults(handler=_set_password)

    promote = commands.add_parser(
        "promote", help="make an account staff or a superuser", description="Give a role."
    )
    promote.add_argument("--email", required=True)
    role = promote.add_mutually_exclusive_group(required=True)
    role.add_argument("--superuser", action="store_true", help="a superuser (and staff)")
    role.add_argument("--staff", action="store_true", help="staff: an agent")
    promote.set_defaults(handler=_promote)

    demote = commands.add_parser(
        "demote",
        help="make an agent a customer again",
        description="Take staff and superuser rights away: their open tickets go back to the "
        "team and their sessions end.",
    )
    demote.add_argument("--email", required=True)
    demote.set_defaults(handler=_demote)

    backup = commands.add_parser(
        "backup",
        help="copy the database to a file, while the service runs",
        description="A consistent copy of the database: SQLite's online backup, or pg_dump's "
        "custom format. The attachments under DATA_DIR are files: copy them beside it.",
    )
    backup.add_argument("path", help="the file to write")
    backup.set_defaults(handler=_backup)

    restore = commands.add_parser(
        "restore",
        help="replace the database with a backup",
        description="Restore a backup made by `ticketdesk backup`, then migrate it to this "
        "version's schema. Refuses a database that holds data, unless --force.",
    )
    restore.add_argument("path", help="the backup to restore")
    restore.add_argument("--force", action="store_true", help="replace a database with data")
    restore.set_defaults(handler=_restore)

    users = commands.add_parser("users", help="the accounts", description="The accounts.")
    users_commands = users.add_subparsers(dest="users_command", required=True, metavar="COMMAND")
    listing = users_commands.add_parser("list", help="list every account")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_users_list)
    return parser


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    args.handler(args)
