"""`ticketdesk mail-in`: one mail from an MTA's pipe, taken in; the exit code tells the MTA
(sysexits.h) whether to keep the mail and retry, bounce it, or be done with it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import traceback
from dataclasses import replace

from pydantic import ValidationError

from ticketdesk.cli.common import Commands, add_command
from ticketdesk.settings import Settings

EX_DATAERR = 65  # sysexits.h: the input was not a mail
EX_TEMPFAIL = 75  # try again later: the MTA keeps the mail and retries
EX_NOPERM = 77  # the sender may not write there: the MTA bounces the mail
MAIL_OVERHEAD_BYTES = 2 * 1024 * 1024


def add_commands(commands: Commands) -> None:
    mail_in = add_command(
        commands,
        "mail-in",
        _mail_in,
        summary="take in one mail from stdin (for an MTA's pipe transport)",
        description="Read one RFC 5322 mail on stdin: a reply to a ticket's address is posted "
        "on the ticket, a mail to the support address opens one (and an account for a new "
        "sender). Prints what became of it: `opened ticket #N`, `posted ticket #N`, "
        "`duplicate ticket #N` or `dropped: REASON`. The exit code follows sysexits.h, "
        "as an MTA expects.",
        epilog="exit status:\n"
        "  0   the mail is taken, or dropped as an auto-reply, a bounce, a duplicate or "
        "mail from an address of ours\n"
        f"  {EX_DATAERR}  it is no mail we can read (its From is missing or no valid "
        "address, say), or it is larger than MESSAGE_ATTACHMENTS_MAX_BYTES allows: the MTA "
        "bounces it\n"
        f"  {EX_TEMPFAIL}  try again later: the configuration is invalid, the database (or "
        "the disk) fails or is busy, or an unexpected error (its traceback on stderr): "
        "the MTA keeps the mail and retries\n"
        f"  {EX_NOPERM}  refused: the sender may not write there (not the ticket's author, "
        "a blocked account, a forged reply address or a ticket that is gone, say): the MTA "
        "bounces it",
    )
    mail_in.add_argument(
        "--recipient", help="the envelope recipient, as the MTA knows it (Postfix: ${recipient})"
    )


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
