"""All SQL of tags: a ticket's tags, the tags in use with their counts, and a tag renamed,
merged into another or removed everywhere (with an event for every ticket it changes).

Names go to the database as one list: an array on PostgreSQL, a JSON array on SQLite.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    String,
    bindparam,
    delete,
    exists,
    func,
    select,
    text,
    update,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from ticketdesk.db import Db, Statement
from ticketdesk.events.repository import GUARD, INSERT_COLUMNS
from ticketdesk.models import UTCDateTime, tags, ticket_tags, tickets


class _joined(FunctionElement[str]):
    """Names joined by commas: `string_agg` on PostgreSQL, `group_concat` on SQLite (with a
    fixed separator, which SQLAlchemy's own `aggregate_strings` sends as a parameter)."""

    type = String()
    inherit_cache = True
    name = "joined"


@compiles(_joined)
def _group_concat(element: _joined, compiler: Any, **kw: Any) -> str:
    return f"group_concat({compiler.process(element.clauses, **kw)}, ',')"


@compiles(_joined, "postgresql")
def _string_agg(element: _joined, compiler: Any, **kw: Any) -> str:
    return f"string_agg({compiler.process(element.clauses, **kw)}, ',')"


TAG_NAMES: ColumnElement[Any] = (
    select(_joined(tags.c.name))
    .select_from(ticket_tags.join(tags, tags.c.id == ticket_tags.c.tag_id))
    .where(ticket_tags.c.ticket_id == tickets.c.id)
    .scalar_subquery()
)
"""A ticket's tags joined by commas, in no order (`policy.joined` sorts them): for agents'
rows of tickets."""


def _names(db: Db, names: list[str]) -> Any:
    return names if db.dialect == "postgresql" else json.dumps(names)


_IN_LIST = {
    "postgresql": "name = ANY(CAST(:names AS TEXT[]))",
    "sqlite": "name IN (SELECT value FROM json_each(:names))",
}
_ENSURE = Statement(
    text(
        "INSERT INTO tags (name) SELECT value FROM json_each(:names) WHERE true "
        "ON CONFLICT (name) DO NOTHING"
    ),
    postgres=text(
        "INSERT INTO tags (name) SELECT unnest(CAST(:names AS TEXT[])) "
        "ON CONFLICT (name) DO NOTHING"
    ),
    writes=True,
)
_CLEAR = Statement(delete(ticket_tags).where(ticket_tags.c.ticket_id == bindparam("ticket_id")))
_ATTACH = Statement(
    text(
        "INSERT INTO ticket_tags (ticket_id, tag_id) "  # noqa: S608 - our own constant
        f"SELECT :ticket_id, id FROM tags WHERE {_IN_LIST['sqlite']}"
    ),
    postgres=text(
        "INSERT INTO ticket_tags (ticket_id, tag_id) "  # noqa: S608 - our own constant
        f"SELECT CAST(:ticket_id AS BIGINT), id FROM tags WHERE {_IN_LIST['postgresql']}"
    ),
    writes=True,
)
_OF_TICKET = Statement(
    select(tags.c.name)
    .select_from(ticket_tags.join(tags, tags.c.id == ticket_tags.c.tag_id))
    .where(ticket_tags.c.ticket_id == bindparam("ticket_id"))
    .order_by(tags.c.name)
)


_TICKET = select(tickets.c.id).where(tickets.c.id == bindparam("ticket_id"))
_TICKET_EXISTS = {False: Statement(_TICKET), True: Statement(_TICKET.with_for_update())}


async def ticket_exists(db: Db, ticket_id: int, *, lock: bool) -> bool:
    """Whether the ticket exists (tags are for agents, who see every ticket); `lock`: its row
    locked until the request's transaction ends, so that changes to its tags follow one
    another."""
    return await db.first(_TICKET_EXISTS[lock], {"ticket_id": ticket_id}) is not None


async def of_ticket(db: Db, ticket_id: int) -> list[str]:
    """The ticket's tags, sorted (the caller has checked that the viewer may see them)."""
    return [name for (name,) in await db.all(_OF_TICKET, {"ticket_id": ticket_id})]


async def replace(db: Db, ticket_id: int, names: list[str]) -> None:
    """The ticket's tags become `names` (normalized), in the request's transaction."""
    await db.execute(_CLEAR, {"ticket_id": ticket_id})
    if names:
        await db.execute(_ENSURE, {"names": _names(db, names)})
        await db.execute(_ATTACH, {"ticket_id": ticket_id, "names": _names(db, names)})


class TagCount(NamedTuple):
    name: str
    tickets: int


_COUNT = (
    select(func.count()).where(ticket_tags.c.tag_id == tags.c.id).scalar_subquery().label("tickets")
)
_PREFIX: BindParameter[str] = bindparam("prefix", type_=String)
_IN_USE = Statement(
    select(tags.c.name, _COUNT)
    .where(
        func.substr(tags.c.name, 1, func.length(_PREFIX)) == _PREFIX,
        exists().where(ticket_tags.c.tag_id == tags.c.id),
    )
    .order_by(_COUNT.desc(), tags.c.name)
    .limit(bindparam("limit", type_=Integer))
)


async def in_use(db: Db, *, prefix: str, limit: int) -> list[TagCount]:
    """The tags some ticket holds, beginning with `prefix`: the most used first."""
    rows = await db.all(_IN_USE, {"prefix": prefix, "limit": limit})
    return [TagCount(*row) for row in rows]


_NAMES = Statement(
    select(tags.c.name)
    .where(exists().where(ticket_tags.c.tag_id == tags.c.id))
    .order_by(tags.c.name)
    .limit(bindparam("limit", type_=Integer))
)


async def names(db: Db, *, limit: int) -> list[str]:
    """The names of the tags some ticket holds, in order: no counting."""
    return [name for (name,) in await db.all(_NAMES, {"limit": limit})]


_COUNT_ONE = Statement(select(_COUNT).where(tags.c.name == bindparam("name")))


async def count(db: Db, name: str) -> int:
    """How many tickets hold the tag (0 for a tag that does not exist)."""
    found = await db.first(_COUNT_ONE, {"name": name})
    return int(found[0]) if found is not None else 0


_LOCK_TAG = Statement(select(tags.c.id).where(tags.c.name == bindparam("name")).with_for_update())


async def lock(db: Db, name: str) -> int | None:
    """The tag's id, its row locked until the request's transaction ends; None: no such tag."""
    found = await db.first(_LOCK_TAG, {"name": name})
    return int(found[0]) if found is not None else None


def _changed_everywhere(dialect: str) -> Any:
    """An event for each ticket holding the tag `old_id`: its tags before, and after the tag
    is renamed to `:new` (merged, where the ticket holds that one too) or, when `:new` is
    NULL, removed."""
    if dialect == "postgresql":
        return text(
            f"""
            {INSERT_COLUMNS}
            SELECT held.ticket_id, CAST(:now AS TIMESTAMPTZ), CAST(:actor_id AS BIGINT), 'tags',
                json_build_object('tags', (
                    SELECT json_agg(t.name ORDER BY t.name)
                    FROM ticket_tags x JOIN tags t ON t.id = x.tag_id
                    WHERE x.ticket_id = held.ticket_id))::text,
                json_build_object('tags', COALESCE((
                    SELECT json_agg(n ORDER BY n) FROM (
                        SELECT DISTINCT CASE WHEN t.id = :old_id THEN CAST(:new AS TEXT)
                                             ELSE t.name END AS n
                        FROM ticket_tags x JOIN tags t ON t.id = x.tag_id
                        WHERE x.ticket_id = held.ticket_id
                          AND (CAST(:new AS TEXT) IS NOT NULL OR t.id <> :old_id)
                    ) AS renamed), '[]'::json))::text
            FROM (SELECT ticket_id FROM ticket_tags WHERE tag_id = :old_id
                  ORDER BY ticket_id) AS held, {GUARD}
            """  # noqa: S608 - only our own constants are formatted in
        )
    return text(
        f"""
        {INSERT_COLUMNS}
        SELECT held.ticket_id, :now, :actor_id, 'tags',
            json_object('tags', json((
                SELECT json_group_array(name) FROM (
                    SELECT t.name FROM ticket_tags x JOIN tags t ON t.id = x.tag_id
                    WHERE x.ticket_id = held.ticket_id ORDER BY t.name)))),
            json_object('tags', json((
                SELECT json_group_array(n) FROM (
                    SELECT DISTINCT CASE WHEN t.id = :old_id THEN :new ELSE t.name END AS n
                    FROM ticket_tags x JOIN tags t ON t.id = x.tag_id
                    WHERE x.ticket_id = held.ticket_id AND (:new IS NOT NULL OR t.id <> :old_id)
                    ORDER BY n))))
        FROM (SELECT ticket_id FROM ticket_tags WHERE tag_id = :old_id ORDER BY ticket_id) AS held
        """  # noqa: S608 - only our own constants are formatted in
    ).bindparams(bindparam("now", type_=UTCDateTime))


_CHANGED_EVERYWHERE = Statement(
    _changed_everywhere("sqlite"), postgres=_changed_everywhere("postgresql"), writes=True
)
_RENAME = Statement(
    update(tags).where(tags.c.id == bindparam("old_id")).values(name=bindparam("new"))
)
_MOVE = Statement(
    text(
        "INSERT INTO ticket_tags (ticket_id, tag_id) SELECT ticket_id, :new_id FROM ticket_tags "
        "WHERE tag_id = :old_id ON CONFLICT (ticket_id, tag_id) DO NOTHING"
    ),
    postgres=text(
        "INSERT INTO ticket_tags (ticket_id, tag_id) "
        "SELECT ticket_id, CAST(:new_id AS BIGINT) FROM ticket_tags "
        "WHERE tag_id = :old_id ON CONFLICT (ticket_id, tag_id) DO NOTHING"
    ),
    writes=True,
)
_DROP = Statement(delete(tags).where(tags.c.id == bindparam("old_id")))


async def rename(db: Db, *, old_id: int, new: str | None, actor_id: int, now: datetime) -> None:
    """Rename the tag `old_id` to `new` on every ticket, merging it into `new` where that
    tag exists; `new` None: remove the tag from every ticket. An event for each ticket."""
    params = {"old_id": old_id, "new": new, "actor_id": actor_id, "now": now}
    await db.execute(_CHANGED_EVERYWHERE, params)
    if new is None:
        await db.execute(_DROP, params)
        return
    new_id = await lock(db, new)
    if new_id is None:
        await db.execute(_RENAME, params)
        return
    await db.execute(_MOVE, {**params, "new_id": new_id})
    await db.execute(_DROP, params)
