"""What tells one mail taken in from another, as `inbound_mails.message_id` keeps it.

The same sender with the same Message-ID is the same mail: an MTA delivering it again.
Another sender's mail with that Message-ID is another mail (a careless client, or someone
who copied the id to have a real mail dropped as a duplicate), taken under its own sender's
checks. So the key is the Message-ID and a digest of the sender; the Message-ID comes first
and stays readable, because the receipt for a ticket opened by mail answers that mail.
"""

from __future__ import annotations

import hashlib
import re

KEY_LENGTH = 255  # inbound_mails.message_id
_TAG_HEX = 32
_DIGEST = "sha256:"
_KEY = re.compile(rf"(?P<id>\S+) (?P<tag>[0-9a-f]{{{_TAG_HEX}}})")


def mail_key(sender: str, message_id: str | None, raw: bytes) -> str:
    """The key of a mail from `sender` (as stored: normalized). Without a Message-ID, or
    with one too long to keep, a digest: of the bytes, or of the sender and the id."""
    if not message_id:
        return _DIGEST + hashlib.sha256(raw).hexdigest()
    tag = hashlib.sha256(sender.encode()).hexdigest()[:_TAG_HEX]
    key = f"{message_id} {tag}"
    if len(key) <= KEY_LENGTH and _KEY.fullmatch(key):
        return key
    return _DIGEST + hashlib.sha256(f"{sender}\n{message_id}".encode()).hexdigest()


def message_id_of(key: str) -> str | None:
    """The Message-ID a key keeps, None for a digest. Keys stored before the sender was part
    of them are the Message-ID alone, possibly still folded: without whitespace, it is."""
    found = _KEY.fullmatch(key)
    if found is not None:
        return found["id"]
    if key.startswith(_DIGEST):
        return None
    return "".join(key.split()) or None
