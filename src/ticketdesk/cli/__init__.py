"""The `ticketdesk` command: the same services the API uses, for the operator.

    serve              run the HTTP server                          (serve.py)
    worker             run the delivery jobs (mail, webhook calls)  (jobs.py)
    jobs               what the job queue holds                     (jobs.py)
    mail-in            take in one mail from an MTA's pipe          (mail.py)
    create-superuser   create a superuser account                   (accounts.py)
    set-password       set an account's password                    (accounts.py)
    promote            make an account staff or a superuser         (accounts.py)
    demote             make an agent a customer again               (accounts.py)
    users list         list every account                           (accounts.py)
    migrate            apply the database migrations                (backup.py)
    backup PATH        copy the database to a file                  (backup.py)
    restore PATH       replace the database with a backup           (backup.py)

Each module adds its own commands with their help; what they share is in common.py.
"""

from __future__ import annotations

import argparse
import logging

from ticketdesk.cli import accounts, backup, jobs, mail, serve
from ticketdesk.cli.common import HelpFormatter

__all__ = ["build_parser", "main"]

COMMAND_MODULES = (serve, jobs, mail, accounts, backup)
"""In the order `ticketdesk --help` lists their commands."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ticketdesk",
        description="A self-hosted customer-support ticket service. "
        "Configured by environment variables or a .env file (see the README).",
        epilog="`ticketdesk COMMAND --help` tells what a command does and takes. A command "
        "exits 0 when done, 1 with a message on stderr when it cannot be done (an invalid "
        "configuration, an unknown account, ...), 2 when the command line is wrong; "
        "mail-in exits as sysexits.h says, for the MTA.",
        formatter_class=HelpFormatter,
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="the command to run"
    )
    for module in COMMAND_MODULES:
        module.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    args.handler(args)
