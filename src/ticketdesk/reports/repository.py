"""The team lead's summary, computed in SQL: counts, response and resolution times, ratings.

Every figure is over a period [from, to) and comes overall and per current assignee:

- created: tickets opened in the period; resolved: tickets whose latest resolution fell in
  it; canceled: tickets canceled in it (a canceled ticket changes no more, so its
  `updated_at` is when it was canceled);
- first response: from opening to the first agent response, for tickets opened in the
  period that have one; resolution: from opening to resolution, for tickets resolved in
  it. Median and 90th percentile by nearest rank, in seconds;
- breaches: tickets opened in the period whose service level is breached now;
- ratings: the count and average of ratings given in the period.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import TextClause, bindparam, text
from sqlalchemy.dialects import postgresql, sqlite

from ticketdesk.db import Db, Statement
from ticketdesk.models import UTCDateTime
from ticketdesk.tickets import policy
from ticketdesk.tickets.filters import BREACHED

_IN = "{column} >= :start AND {column} < :stop"
CREATED = _IN.format(column="created_at")
RESOLVED = _IN.format(column="resolved_at")
CANCELED = f"status = '{policy.CANCELED}' AND {_IN.format(column='updated_at')}"
RATED = _IN.format(column="rated_at")


class Counts(NamedTuple):
    assignee_id: int | None
    created: int
    resolved: int
    canceled: int
    breaches: int
    ratings: int
    average_rating: float | None

    @classmethod
    def total(cls, rows: list[Counts]) -> Counts:
        """The overall counts: the sums of every assignee's."""
        ratings = sum(row.ratings for row in rows)
        scores = sum((row.average_rating or 0) * row.ratings for row in rows)
        return cls(
            None,
            sum(row.created for row in rows),
            sum(row.resolved for row in rows),
            sum(row.canceled for row in rows),
            sum(row.breaches for row in rows),
            ratings,
            scores / ratings if ratings else None,
        )


class Durations(NamedTuple):
    assignee_id: int | None
    tickets: int
    median: float | None
    p90: float | None


def _breached_sql(dialect: str) -> str:
    """`tickets.repository.BREACHED`, as SQL with the named parameter `:now`."""
    named = (
        postgresql.dialect(paramstyle="named")  # type: ignore[no-untyped-call]
        if dialect == "postgresql"
        else sqlite.dialect(paramstyle="named")
    )
    # The parameter's type is given where the statement binds it.
    return str(BREACHED.compile(dialect=named)).replace(":now::TIMESTAMP WITH TIME ZONE", ":now")


def _seconds(dialect: str, later: str, earlier: str) -> str:
    if dialect == "postgresql":
        return f"EXTRACT(EPOCH FROM ({later} - {earlier}))"
    return f"(julianday({later}) - julianday({earlier})) * 86400.0"


def _counts(dialect: str) -> TextClause:
    """Per assignee: one index range per period, so a month of a million tickets is quick."""
    return _typed(
        f"""
        SELECT assignee_id, sum(created), sum(resolved), sum(canceled), sum(breaches),
               sum(ratings), sum(score)
        FROM (
            SELECT assignee_id, 1 AS created, 0 AS resolved, 0 AS canceled,
                   CASE WHEN {_breached_sql(dialect)} THEN 1 ELSE 0 END AS breaches,
                   0 AS ratings, 0 AS score
            FROM tickets WHERE {CREATED}
            UNION ALL
            SELECT assignee_id, 0, 1, 0, 0, 0, 0 FROM tickets WHERE {RESOLVED}
            UNION ALL
            SELECT assignee_id, 0, 0, 1, 0, 0, 0 FROM tickets WHERE {CANCELED}
            UNION ALL
            SELECT assignee_id, 0, 0, 0, 0, 1, rating_score FROM tickets WHERE {RATED}
        ) AS counted
        GROUP BY assignee_id
        """  # noqa: S608 - only our own constants are formatted in
    )


def _durations(dialect: str, by_assignee: bool, until: str, scope: str) -> TextClause:
    assignee = "assignee_id" if by_assignee else "NULL"
    partition = "PARTITION BY assignee_id" if by_assignee else ""
    group = "GROUP BY assignee_id" if by_assignee else ""
    seconds = _seconds(dialect, until, "created_at")
    return _typed(
        f"""
        SELECT {assignee}, count(*),
               min(seconds) FILTER (WHERE position >= 0.5 * total),
               min(seconds) FILTER (WHERE position >= 0.9 * total)
        FROM (
            SELECT assignee_id, {seconds} AS seconds,
                   row_number() OVER ({partition} ORDER BY {seconds}) AS position,
                   count(*) OVER ({partition}) AS total
            FROM tickets
            WHERE {scope} AND {until} IS NOT NULL
        ) AS timed
        {group}
        """  # noqa: S608 - only our own constants are formatted in
    )


def _typed(sql: str) -> TextClause:
    times = [bindparam(name, type_=UTCDateTime) for name in ("start", "stop", "now")]
    return text(sql).bindparams(*(t for t in times if f":{t.key}" in sql))


def _statement(build: Any, *args: Any) -> Statement:
    return Statement(build("sqlite", *args), postgres=build("postgresql", *args), writes=False)


_COUNTS = _statement(_counts)
_FIRST_RESPONSE = {
    grouped: _statement(_durations, grouped, "first_response_at", CREATED)
    for grouped in (False, True)
}
_RESOLUTION = {
    grouped: _statement(_durations, grouped, "resolved_at", RESOLVED) for grouped in (False, True)
}


class Summary(NamedTuple):
    """The period's figures: counts per assignee (their sums are the overall ones), and the
    times overall and per assignee."""

    counts: list[Counts]
    first_response: list[Durations]
    resolution: list[Durations]
    overall_first_response: Durations | None
    overall_resolution: Durations | None


async def summary(db: Db, *, start: datetime, stop: datetime, now: datetime) -> Summary:
    params = {"start": start, "stop": stop, "now": now}
    counts = [
        Counts(
            row[0],
            int(row[1]),
            int(row[2]),
            int(row[3]),
            int(row[4]),
            int(row[5]),
            float(row[6]) / int(row[5]) if row[5] else None,
        )
        for row in await db.all(_COUNTS, params)
    ]
    overall_first = await _durations_of(db, _FIRST_RESPONSE[False], params)
    overall_resolution = await _durations_of(db, _RESOLUTION[False], params)
    return Summary(
        counts,
        await _durations_of(db, _FIRST_RESPONSE[True], params),
        await _durations_of(db, _RESOLUTION[True], params),
        overall_first[0] if overall_first and overall_first[0].tickets else None,
        overall_resolution[0] if overall_resolution and overall_resolution[0].tickets else None,
    )


async def _durations_of(db: Db, statement: Statement, params: dict[str, Any]) -> list[Durations]:
    rows = await db.all(statement, params)
    return [Durations(row[0], row[1], _number(row[2]), _number(row[3])) for row in rows]


def _number(value: Any) -> float | None:
    """PostgreSQL's numeric (a Decimal) and SQLite's real, alike."""
    return None if value is None else float(value)
