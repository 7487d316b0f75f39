"""What a tag is: agents' label for tickets, and the one place that says how one is written.

A tag is lower-cased, trimmed and composed (Unicode NFC); it is 1 to 40 characters: letters
(of any script, with their accents and vowel signs) and digits, with `-`, `_`, `.` and `:`
between them (`billing`, `vip`, `region:eu`, `v2.1`, `café`, `हिन्दी`).
A ticket holds at most 50. Tags are for agents: a customer never sees them, not in the
API, the pages, search or mail, and the `tags` event is a staff event.
"""

from __future__ import annotations

import unicodedata

MAX_LENGTH = 40
MAX_PER_TICKET = 50
MAX_FILTERS = 10
"""The most `tag=` (and the most `not_tag=`) values one list request takes."""

_BETWEEN = frozenset("-_.:")
RULE = (
    "a tag is 1 to 40 letters or digits, with - _ . : between them "
    "(lower-cased, spaces around it trimmed)"
)


def _mark(character: str) -> bool:
    """An accent or a vowel sign, which belongs to the letter before it."""
    return unicodedata.category(character).startswith("M")


def _is_tag(name: str) -> bool:
    if not 0 < len(name) <= MAX_LENGTH or not name[0].isalnum():
        return False
    if not (name[-1].isalnum() or _mark(name[-1])):
        return False
    return all(c.isalnum() or _mark(c) or c in _BETWEEN for c in name)


def normalize(value: str) -> str:
    """The tag as it is kept; ValueError (naming the value, with the rule) for anything else."""
    name = unicodedata.normalize("NFC", unicodedata.normalize("NFC", value).strip().lower())
    if not _is_tag(name):
        shown = value if len(value) <= MAX_LENGTH + 10 else value[:MAX_LENGTH] + "…"
        raise ValueError(f"{shown!r} is not a tag: {RULE}")
    return name


def joined(names: str | None) -> list[str]:
    """A ticket's tags from the database's comma-joined list (no tag holds a comma), sorted."""
    return sorted(names.split(",")) if names else []
