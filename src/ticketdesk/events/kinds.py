"""The kinds of ticket events and the fields each carries, written once for both paths.

A change made in Python records `Change`s (`CREATED.change(...)`); a PostgreSQL statement
that writes its events itself takes the same kind's `sql(...)`, which builds the JSON with
the same field names in the same order, so the two paths record the same JSON (the same
fields, order and values; only the spacing of PostgreSQL's text differs, which no reader
of the JSON sees).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ticketdesk.models import EVENT_KINDS


class Change(NamedTuple):
    """One event to write: its kind and the fields before and after."""

    kind: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class Kind(NamedTuple):
    """An event kind: the fields its `before` and `after` hold (None: it has no `before`)."""

    name: str
    before: tuple[str, ...] | None
    after: tuple[str, ...]

    def change(self, *, before: dict[str, Any] | None = None, **after: Any) -> Change:
        assert tuple(after) == self.after, (self.name, tuple(after))
        assert (before is None) == (self.before is None), self.name
        assert before is None or tuple(before) == self.before, (self.name, before)
        return Change(self.name, before, after)

    def sql(self, *, before: dict[str, str] | None = None, **after: str) -> str:
        """The event as a `(kind, before, after)` row of PostgreSQL, from SQL expressions of
        our own making (never input: they are formatted into the statement)."""
        assert tuple(after) == self.after, (self.name, tuple(after))
        assert (before is None) == (self.before is None), self.name
        assert before is None or tuple(before) == self.before, (self.name, before)
        return f"('{self.name}', {_json(before)}, {_json(after)})"


def _json(fields: dict[str, str] | None) -> str:
    if fields is None:
        return "NULL"
    pairs = ", ".join(f"'{name}', {expression}" for name, expression in fields.items())
    return f"json_build_object({pairs})::text"


CREATED = Kind("created", None, ("topic", "status", "message_id"))
STATUS = Kind("status", ("status",), ("status",))
ASSIGNEE = Kind("assignee", ("assignee_id",), ("assignee_id",))
PRIORITY = Kind("priority", ("priority",), ("priority",))
MESSAGE = Kind("message", None, ("message_id", "type"))
NOTE = Kind("note", None, ("message_id",))
RATING = Kind("rating", None, ("score", "comment"))
TAGS = Kind("tags", ("tags",), ("tags",))
"""An agent's change to a ticket's tags: the whole list before and after, sorted."""

ALL = (CREATED, STATUS, ASSIGNEE, PRIORITY, MESSAGE, NOTE, RATING, TAGS)
assert tuple(kind.name for kind in ALL) == EVENT_KINDS
