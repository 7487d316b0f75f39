"""What a tag is: agents' label for tickets, and the one place that says how one is written.

A tag is lower-cased and trimmed; it is 1 to 40 characters: letters (of any script) and
digits, with `-`, `_`, `.` and `:` between them (`billing`, `vip`, `region:eu`, `v2.1`).
A ticket holds at most 50. Tags are for agents: a customer never sees them, not in the
API, the pages, search or mail, and the `tags` event is a staff event.
"""

from __future__ import annotations

import re

MAX_LENGTH = 40
MAX_PER_TICKET = 50
MAX_FILTERS = 10
"""The most `tag=` (and the most `not_tag=`) values one list request takes."""

_TAG = re.compile(r"[^\W_](?:[\w.:-]*[^\W_])?")
RULE = (
    "a tag is 1 to 40 letters or digits, with - _ . : between them "
    "(lower-cased, spaces around it trimmed)"
)


def normalize(value: str) -> str:
    """The tag as it is kept; ValueError (with the rule) for anything that is not one."""
    name = value.strip().lower()
    if not 0 < len(name) <= MAX_LENGTH or not _TAG.fullmatch(name):
        raise ValueError(RULE)
    return name


def joined(names: str | None) -> list[str]:
    """A ticket's tags from the database's comma-joined list (no tag holds a comma), sorted."""
    return sorted(names.split(",")) if names else []
