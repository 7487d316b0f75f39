"""The addresses and ids that thread a ticket's mail, and the reply address that names it.

Every mail about a ticket refers to the ticket's thread root in `In-Reply-To` and
`References` and carries `[#id]` in its subject, so every mail client files the mails of
one ticket together. A customer's mail carries a `Reply-To` of the form
`support+t123-<mac>@<MAIL_REPLY_DOMAIN>`: the MAC (an HMAC of the ticket id under a key
derived from the signing key) makes an address for a ticket nobody was mailed about
impossible to make up.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from email.utils import parseaddr

MAC_HEX = 16
_REPLY = re.compile(
    r"(?P<local>[^+@]+)\+t(?P<ticket>[1-9][0-9]{0,18})-(?P<mac>[0-9a-f]+)@(?P<domain>.+)"
)
_OURS = re.compile(r"(t[0-9]+|reset)(\.[a-z0-9]+)*@(?P<domain>.+)")
_REPLY_TAG = re.compile(r"t[0-9]+-[0-9a-f]*")


def _mac(key: bytes, ticket_id: int) -> str:
    derived = hmac.new(key, b"ticketdesk reply address", hashlib.sha256).digest()
    return hmac.new(derived, f"ticket:{ticket_id}".encode(), hashlib.sha256).hexdigest()[:MAC_HEX]


def reply_address(key: bytes, *, support_address: str, domain: str, ticket_id: int) -> str:
    local = support_address.partition("@")[0]
    return f"{local}+t{ticket_id}-{_mac(key, ticket_id)}@{domain}"


class ForgedAddress(ValueError):
    """A reply address whose MAC does not match its ticket."""


def ticket_of(key: bytes, address: str, *, domain: str) -> int | None:
    """The ticket a reply address names; None for another address; ForgedAddress when the
    address has the form of a reply address in our domain but a wrong MAC."""
    match = _REPLY.fullmatch(parseaddr(address)[1].lower())
    if match is None or match["domain"] != domain:
        return None
    ticket_id = int(match["ticket"])
    if not hmac.compare_digest(match["mac"], _mac(key, ticket_id)):
        raise ForgedAddress(address)
    return ticket_id


def thread_root(ticket_id: int, domain: str, *, audience: str) -> str:
    """The Message-ID (without brackets) a ticket's mails to `audience` reply to."""
    return f"t{ticket_id}.{audience}@{domain}"


def message_id(ticket_id: int, domain: str, *parts: str | int) -> str:
    """A stable Message-ID for one mail: sent again after a crash, it is the same mail."""
    return ".".join([f"t{ticket_id}", *(str(part) for part in parts)]) + f"@{domain}"


def is_ours(message_id: str | None, domain: str) -> bool:
    """Whether a Message-ID is one this service made (a mail of ours come back: a loop)."""
    if not message_id:
        return False
    match = _OURS.fullmatch(message_id.strip("<> ").lower())
    return match is not None and match["domain"] == domain


def is_our_address(address: str, *, support_address: str, domain: str) -> bool:
    """Whether an address is one of ours: the support address, a reply address (whatever its
    MAC), or any plus-address of the support mailbox, in the reply domain or the support
    address's. Mail from one is our own mail come back, or a forged sender; an account for
    it would let a stranger read what we mail to it."""
    local, _, at = address.strip().lower().rpartition("@")
    support_local, _, support_domain = support_address.lower().rpartition("@")
    if at not in (domain.lower(), support_domain):
        return False
    base, plus, tag = local.partition("+")
    return base == support_local or (bool(plus) and _REPLY_TAG.fullmatch(tag) is not None)
