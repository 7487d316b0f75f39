"""A mail that came in becomes a ticket's message, or a new ticket: `ticketdesk mail-in`.

A reply to a ticket's reply address (its MAC checked) is posted on that ticket as its
author's, if the sender is that author; a mail to the support address opens a ticket for
its sender, who gets an account without a password when the address is new (they can set
one with a password reset). Mail that no person wrote, and our own mail come back (by its
Message-ID, or a From that is an address of ours: a loop, or a forged sender), are dropped
before anything else is looked at; a From that is no valid address never gets this far
(`inbound.parse` refuses it). A mail delivered twice is stored once: the same sender with
the same Message-ID (`keys`), so copying someone's Message-ID drops nothing of theirs.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from ticketdesk.attachments import service as attachments
from ticketdesk.attachments.service import Limits, Upload
from ticketdesk.attachments.storage import Storage
from ticketdesk.auth.principal import Viewer
from ticketdesk.auth.security import TokenClaims
from ticketdesk.db import Db, UniqueViolation
from ticketdesk.errors import BadRequest, TicketdeskError
from ticketdesk.mail import addresses, keys, repository
from ticketdesk.mail.inbound import InboundMail
from ticketdesk.mail.repository import Person
from ticketdesk.models import utcnow
from ticketdesk.schemas import normalize_email
from ticketdesk.settings import Settings
from ticketdesk.users import service as users

log = logging.getLogger("ticketdesk.mail")

TOPIC_LENGTH = 20
_REPLY_PREFIX = re.compile(r"^\s*((re|fwd?|aw|wg|sv|tr)\s*:\s*|\[#\d+\]\s*)+", re.IGNORECASE)


class Refused(Exception):
    """The mail is not taken: who sent it may not write there (the MTA bounces it)."""


@dataclass(frozen=True)
class Received:
    """What became of a mail that was taken: `ticket_id` is None when it was dropped."""

    outcome: str  # opened, posted, duplicate, dropped
    ticket_id: int | None
    reason: str = ""


async def receive(
    db: Db, storage: Storage, settings: Settings, mail: InboundMail, raw: bytes
) -> Received:
    sender = normalize_email(mail.sender)
    dropped = _why_dropped(mail, sender, settings)
    if dropped is not None:
        return Received("dropped", None, dropped)
    key = keys.mail_key(sender, mail.message_id, raw)
    earlier = await repository.seen(db, key)
    if earlier is not None:
        return Received("duplicate", earlier, "delivered before")
    ticket_id = _addressed_ticket(mail, settings)
    try:
        if ticket_id is not None:
            await _post_reply(db, storage, settings, mail, sender, ticket_id)
            outcome = "posted"
        else:
            ticket_id = await _open_ticket(db, storage, settings, mail, sender)
            outcome = "opened"
        await repository.record(db, mail_id=key, ticket_id=ticket_id, now=utcnow())
    except UniqueViolation:
        # The same mail, taken by another delivery at the same moment: this one is dropped.
        await db.finish(commit=False)
        return Received("duplicate", await repository.seen(db, key), "delivered twice at once")
    return Received(outcome, ticket_id)


def _why_dropped(mail: InboundMail, sender: str, settings: Settings) -> str | None:
    """Why a mail is dropped, not bounced (None: it is taken): a bounce would answer an
    autoresponder, or go back to an address of ours: a loop either way."""
    if mail.automatic:
        return "sent automatically (an auto-reply, bounce or list)"
    if addresses.is_ours(mail.message_id, settings.reply_domain):
        return "our own mail came back"
    ours = addresses.is_our_address(
        sender, support_address=settings.support_address, domain=settings.reply_domain
    )
    if ours:
        return "sent from our own address (our mail come back, or a forged sender)"
    return None


def _addressed_ticket(mail: InboundMail, settings: Settings) -> int | None:
    """The ticket a reply address among the recipients names; Refused for a forged one."""
    for recipient in mail.recipients:
        try:
            found = addresses.ticket_of(
                settings.signing_key(), recipient, domain=settings.reply_domain
            )
        except addresses.ForgedAddress:
            raise Refused(f"{recipient} is not a reply address of ours") from None
        if found is not None:
            return found
    return None


def _viewer(person: Person) -> Viewer:
    # The mail is the credential (its reply address's MAC): no token came with it.
    claims = TokenClaims(person.id, 0, "mail-in", datetime.now(UTC))
    return Viewer(
        person.id, person.email, person.username, person.is_staff, person.is_superuser, claims
    )


def _uploads(mail: InboundMail) -> list[Upload]:
    return [Upload(part.filename, part.content) for part in mail.attachments]


def _storable(text: str) -> str:
    return text.replace("\x00", "")


def _text(mail: InboundMail, settings: Settings) -> str:
    text = _storable(mail.text).strip() or _storable(mail.subject).strip() or "(no text)"
    return text[: settings.max_body_bytes]


async def _post_reply(
    db: Db, storage: Storage, settings: Settings, mail: InboundMail, sender: str, ticket_id: int
) -> None:
    author = await repository.ticket_author(db, ticket_id)
    if author is None:
        raise Refused(f"ticket #{ticket_id} does not exist any more")
    if author.email != sender or not author.is_active:
        raise Refused(f"{sender} may not write on ticket #{ticket_id}: only its author may")
    try:
        await attachments.post_message(
            db,
            storage,
            viewer=_viewer(author),
            ticket_id=ticket_id,
            text=_text(mail, settings),
            internal=False,
            uploads=_uploads(mail),
            limits=Limits.of(settings),
        )
    except TicketdeskError as exc:
        if exc.status_code >= 500:
            raise  # the database is away or busy: the mail waits (75), it is not refused
        raise Refused(f"ticket #{ticket_id}: {exc.detail}") from exc


async def _open_ticket(
    db: Db, storage: Storage, settings: Settings, mail: InboundMail, sender: str
) -> int:
    person = await repository.person(db, sender)
    if person is None:
        name = _storable(mail.sender_name or sender.partition("@")[0]).strip()[:64] or "customer"
        try:
            await users.create_mail_account(
                db, email=sender, username=name, trial_domains=settings.trial_domain_names
            )
        except BadRequest as exc:  # an address this desk makes no account with (TRIAL_DOMAINS)
            raise Refused(f"{sender}: {exc.detail}") from exc
        person = await repository.person(db, sender)
        assert person is not None
    if not person.is_active:
        raise Refused(f"the account of {sender} is blocked")
    subject = _REPLY_PREFIX.sub("", _storable(mail.subject))
    topic = subject.strip()[:TOPIC_LENGTH].strip() or "(no subject)"
    try:
        return await attachments.open_ticket(
            db,
            storage,
            author=_viewer(person),
            topic=topic,
            text=_text(mail, settings),
            uploads=_uploads(mail),
            limits=Limits.of(settings),
            sla_policy=settings.sla_policy,
        )
    except TicketdeskError as exc:
        if exc.status_code >= 500:
            raise  # as above: try again later
        raise Refused(exc.detail) from exc
