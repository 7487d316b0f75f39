"""Keyset pagination: sort orders, opaque cursors, and the `Page` a repository returns.

A page is fetched with one more row than asked for; that extra row only says a next
page exists. The cursor holds the sort key of the page's last row, so the next page
starts from an index seek, however deep it lies: there is no OFFSET anywhere.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Integer, Select, bindparam, tuple_

from ticketdesk.errors import BadRequest
from ticketdesk.schemas import MAX_ID

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_CURSOR_LENGTH = 512


def _identity(value: Any) -> Any:
    return value


def timestamp_from_json(value: Any) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("naive timestamp")
    return parsed


def int_from_json(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or abs(value) >= 2**31:
        raise ValueError("not a 32-bit integer")
    return value


@dataclass(frozen=True)
class Sort:
    """An order over rows: by `key`, then by `id`; ascending unless `descending`.

    Rows are expected to carry an `id` field, and the key's value in `field`; the cursor
    keeps that value, and `from_json` turns it back into the key's value for the query.
    `start` is a position before every row, so that the first page and every later one
    run the same statement (built and prepared once) with other parameters.
    """

    name: str
    id: ColumnElement[Any]
    start: tuple[Any, int]
    key: ColumnElement[Any] | None = None  # None: by id alone
    field: str | None = None
    descending: bool = False
    from_json: Callable[[Any], Any] = _identity

    def order_by(self) -> list[ColumnElement[Any]]:
        columns = [self.id] if self.key is None else [self.key, self.id]
        return [c.desc() for c in columns] if self.descending else columns

    def after(self) -> ColumnElement[bool]:
        """Rows after the position in the parameters `after_key` and `after_id`."""
        after_id = bindparam("after_id", type_=self.id.type)
        if self.key is None:
            return self.id < after_id if self.descending else self.id > after_id
        row = tuple_(self.key, self.id)
        bound = tuple_(bindparam("after_key", type_=self.key.type), after_id)
        return row < bound if self.descending else row > bound


@dataclass(frozen=True)
class PageRequest:
    limit: int
    cursor: str | None
    count: bool


def encode_cursor(sort_name: str, value: object, row_id: int) -> str:
    """The cursor that continues after the row with this sort key and id."""
    if isinstance(value, datetime):
        value = value.astimezone(UTC).isoformat()
    raw = json.dumps([sort_name, value, row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, sort: Sort) -> tuple[Any, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        name, value, row_id = json.loads(raw)
        if name != sort.name:
            raise BadRequest("the cursor belongs to another sort order")
        if not isinstance(row_id, int) or isinstance(row_id, bool) or not 0 <= row_id <= MAX_ID:
            raise ValueError("bad id")
        return (sort.from_json(value) if sort.key is not None else None), row_id
    except BadRequest:
        raise
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise BadRequest("invalid cursor") from None


def paginate(query: Select[*tuple[Any, ...]], sort: Sort) -> Select[*tuple[Any, ...]]:
    """The query in the sort's order, after a position, one row past the page.

    Its parameters come from `page_parameters`.
    """
    return (
        query.where(sort.after())
        .order_by(*sort.order_by())
        .limit(bindparam("limit", type_=Integer))
    )


def page_parameters(sort: Sort, page: PageRequest) -> dict[str, Any]:
    key, row_id = sort.start if page.cursor is None else decode_cursor(page.cursor, sort)
    return {"after_key": key, "after_id": row_id, "limit": page.limit + 1}


def next_cursor(rows: Sequence[Any], sort: Sort, page: PageRequest) -> str | None:
    """The cursor of the page after these rows (typed rows with an `id`), or None on the last."""
    if len(rows) <= page.limit:
        return None
    last = rows[page.limit - 1]
    value = getattr(last, sort.field) if sort.field else None
    return encode_cursor(sort.name, value, last.id)


Item = TypeVar("Item")


@dataclass(frozen=True, slots=True)
class Page(Generic[Item]):
    """One page of rows, the cursor of the next page (None on the last), and the total if asked."""

    items: Sequence[Item]
    next_cursor: str | None
    total: int | None = None

    @classmethod
    def of(cls, rows: Sequence[Item], sort: Sort, page: PageRequest) -> Page[Item]:
        """The page from rows fetched one past its size (`paginate`)."""
        return cls(rows[: page.limit], next_cursor(rows, sort, page))
