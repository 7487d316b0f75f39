"""Composing a mail from its template and sending it over SMTP (aiosmtplib).

A mail job's payload (`Mail`) holds everything the mail needs, fixed when the job was
queued: sent again after a crash, it is the same mail, with the same Message-ID.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Any

import aiosmtplib
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic import BaseModel

from ticketdesk.models import utcnow
from ticketdesk.settings import Settings

log = logging.getLogger("ticketdesk.mail")

TEMPLATES = Path(__file__).parent / "templates"
_ENVIRONMENT = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


class Mail(BaseModel):
    """One mail to one person, as its job keeps it."""

    to: str
    to_name: str
    subject: str
    template: str  # mail/templates/<template>.txt and .html
    context: dict[str, Any]
    message_id: str  # without angle brackets
    thread: str | None = None  # the Message-ID of the thread's root
    reply_to: str | None = None
    secret: bool = False  # its context holds a secret: the job forgets it once sent


def compose(mail: Mail, settings: Settings) -> EmailMessage:
    """The mail with a text part and an HTML alternative, both from its templates. Header
    values come from what people and other mail wrote: each is made one line, or the mail
    library refuses the mail (and the job would fail for good)."""
    context = {**mail.context, "to_name": mail.to_name}
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = formataddr((_one_line(mail.to_name), _unspaced(mail.to)))
    message["Subject"] = _one_line(mail.subject)
    message["Message-ID"] = f"<{_unspaced(mail.message_id)}>"
    message["Date"] = format_datetime(utcnow())
    thread = _unspaced(mail.thread or "")
    if thread:
        message["In-Reply-To"] = f"<{thread}>"
        message["References"] = f"<{thread}>"
    if mail.reply_to is not None:
        message["Reply-To"] = _unspaced(mail.reply_to)
    # Mail of ours must never draw an auto-reply (RFC 3834), nor be answered by one.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content(_ENVIRONMENT.get_template(f"{mail.template}.txt").render(context))
    html = _ENVIRONMENT.get_template(f"{mail.template}.html").render(context)
    message.add_alternative(html, subtype="html")
    return message


def _one_line(text: str) -> str:
    """Text for a header: its line breaks (and runs of spaces) one space."""
    return " ".join(text.split())


def _unspaced(value: str) -> str:
    """A message id or an address for a header: neither holds whitespace, so a line break
    left in one (a folded Message-ID stored as it came) is none of it."""
    return "".join(value.split()).strip("<>")


class SendFailed(Exception):
    def __init__(self, reason: str, *, code: int | None, final: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.final = final


async def send(message: EmailMessage, settings: Settings) -> tuple[int, Leave]:
    """Hand the mail to the SMTP server: its reply code, and what ends the session (QUIT),
    to be awaited once the caller has recorded that the mail went out. A kill between the
    server's acceptance and that record sends the mail again; leaving the QUIT until after
    the record keeps that window to the record alone. SendFailed when the server would not
    take the mail (`final` for a permanent refusal, a 5xx reply)."""
    assert settings.smtp_host is not None
    client = aiosmtplib.SMTP(
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        use_tls=settings.smtp_tls == "tls",
        start_tls=settings.smtp_tls == "starttls",
        timeout=settings.smtp_timeout,
    )
    try:
        await client.connect()
        errors, reply = await client.send_message(message)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        await _leave(client)
        refused = exc.recipients[0]
        raise SendFailed(
            f"the SMTP server refused the recipient: {refused.code} {refused.message}",
            code=refused.code,
            final=500 <= refused.code < 600,
        ) from exc
    except aiosmtplib.SMTPResponseException as exc:
        await _leave(client)
        raise SendFailed(
            f"the SMTP server refused the mail: {exc.code} {exc.message}",
            code=exc.code,
            final=500 <= exc.code < 600,
        ) from exc
    except (aiosmtplib.SMTPException, OSError) as exc:
        client.close()
        raise SendFailed(
            f"the SMTP server could not be reached: {exc}", code=None, final=False
        ) from exc
    except BaseException:  # a deadline: the session is dropped
        client.close()
        raise
    if errors:
        await _leave(client)
        refusal = next(iter(errors.values()))
        raise SendFailed(
            f"the SMTP server refused the recipient: {refusal.code} {refusal.message}",
            code=refusal.code,
            final=refusal.code >= 500,
        )
    code = int(reply.split(" ", 1)[0]) if reply[:3].isdigit() else 250
    return code, functools.partial(_leave, client)


Leave = Callable[[], Awaitable[None]]


async def _leave(client: aiosmtplib.SMTP) -> None:
    """QUIT, as politely as the server allows, and close (what `aiosmtplib.send` does)."""
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError):
        pass
    finally:
        client.close()
