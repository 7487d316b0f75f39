"""What the commands share: settings that end in a clear message rather than a traceback,
the logging of the long-running commands, and one way to declare a command with its help."""

from __future__ import annotations

import argparse
import logging
import logging.config
import sys
import textwrap
from collections.abc import Callable
from typing import Any, TypeAlias

from pydantic import ValidationError

from ticketdesk.logs import log_format, logging_config
from ticketdesk.settings import Settings

log = logging.getLogger("ticketdesk")

Handler: TypeAlias = Callable[[argparse.Namespace], None]
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""What `add_subparsers` returns: each module adds its commands to it."""


def load_settings() -> Settings:
    """The settings, or an exit (status 1) that names every variable at fault."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        sys.exit(f"ticketdesk: invalid configuration: {problems}")


def configure_logging(settings: Settings) -> dict[str, Any]:
    """Log as the service does (LOG_LEVEL, LOG_FORMAT) from here on; the configuration is
    handed back for uvicorn, whose lines must look the same."""
    config = logging_config(settings.log_level, fmt=log_format(settings.log_format))
    try:
        logging.config.dictConfig(config)
    except ValueError:
        sys.exit(
            f"ticketdesk: invalid configuration: LOG_LEVEL: unknown level {settings.log_level!r}"
        )
    return config


def say_whether_mail_is_on(settings: Settings) -> None:
    """Said on start by the processes that may send mail: without SMTP_HOST none goes out."""
    if not settings.mail_enabled:
        log.info("SMTP_HOST is not set: no mail is sent (password resets included)")
    else:
        log.info("mail goes out through %s:%s", settings.smtp_host, settings.smtp_port)


class HelpFormatter(argparse.HelpFormatter):
    """Fills a description or an epilog line by line, so that a list (of exit codes, say)
    keeps one entry a line, a long entry's next lines indented under its text."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines = []
        for line in text.splitlines():
            lead = indent + " " * (len(line) - len(line.lstrip()))
            hang = lead + "    " if lead != indent else lead
            lines.append(
                textwrap.fill(line.strip(), width, initial_indent=lead, subsequent_indent=hang)
            )
        return "\n".join(lines)


def add_command(
    commands: Commands,
    name: str,
    handler: Handler | None,
    *,
    summary: str,
    description: str,
    epilog: str | None = None,
) -> argparse.ArgumentParser:
    """A command: `summary` in `ticketdesk --help`'s list, `description` (and `epilog`, such
    as its exit codes) in its own --help; `handler` runs it (None for a group of commands)."""
    parser = commands.add_parser(
        name,
        help=summary,
        description=description,
        epilog=epilog,
        formatter_class=HelpFormatter,
    )
    if handler is not None:
        parser.set_defaults(handler=handler)
    return parser
