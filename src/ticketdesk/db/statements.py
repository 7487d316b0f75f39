"""Statements built once with SQLAlchemy Core and compiled once per dialect.

Building and compiling a statement costs more than running a short one, so a repository
keeps its statements at module level (or in a cache keyed by their shape) and passes only
parameters per request. A statement's parameters are named; the handle (`handle.py`)
hands them to the driver in the order the compiled SQL wants.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Delete, Insert, Select, TextClause, Update, literal_column
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

POSTGRES_DIALECT = PGDialect_asyncpg()  # type: ignore[no-untyped-call]
"""asyncpg's dialect: placeholders $1, $2, ... with the casts asyncpg needs to type them."""


def constants(*values: str) -> list[ColumnElement[Any]]:
    """Our own string constants, written into the SQL (for `IN` lists and comparisons).

    A plain value would become a bind parameter with a generated name (which may clash
    with a statement's own), and a list of them an expanding `IN`, which cannot be
    compiled once.
    """
    for value in values:
        assert "'" not in value, value
    return [literal_column(f"'{value}'") for value in values]


def _writes(clause: ClauseElement) -> bool:
    if isinstance(clause, Insert | Update | Delete):
        return True
    if isinstance(clause, Select):
        return clause._for_update_arg is not None
    return False


class Statement:
    """One SQL statement, with named parameters, for every backend.

    `writes`: the statement changes data or takes row locks, so the handle runs it inside
    the request's transaction, which it opens first if need be. `atomic`: a write that is
    a whole unit of work by itself (one statement that does everything, e.g. a CTE that
    inserts a ticket and its first message); outside a transaction it runs on its own, in
    the implicit transaction PostgreSQL gives every statement: no BEGIN, no COMMIT.

    `postgres` may replace the clause on PostgreSQL, where one statement can do what SQLite
    needs several for (`sqlite` is then the clause for SQLite, or None where the
    repository runs several statements instead).
    """

    __slots__ = ("_postgres", "atomic", "clause", "postgres_clause", "writes")

    def __init__(
        self,
        clause: ClauseElement | None,
        *,
        postgres: ClauseElement | None = None,
        writes: bool | None = None,
        atomic: bool = False,
    ) -> None:
        self.clause = clause
        self.postgres_clause = postgres if postgres is not None else clause
        assert self.postgres_clause is not None
        if writes is None:
            writes = _writes(self.postgres_clause) or isinstance(self.postgres_clause, TextClause)
        self.writes = writes or atomic
        self.atomic = atomic
        self._postgres: tuple[str, tuple[str, ...], dict[str, Any]] | None = None

    def for_postgres(self, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
        """The SQL with numbered placeholders, and the arguments in their order."""
        compiled = self._postgres
        if compiled is None:
            compiled = self._postgres = _compile(self.postgres_clause)
        sql, names, defaults = compiled
        return sql, [params[n] if n in params else defaults[n] for n in names]

    def for_sqlite(self) -> ClauseElement:
        if self.clause is None:
            raise NotImplementedError("this statement exists on PostgreSQL only")
        return self.clause


def _compile(clause: ClauseElement | None) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    assert clause is not None
    compiled = clause.compile(dialect=POSTGRES_DIALECT)
    assert isinstance(compiled, SQLCompiler)
    return compiled.string, tuple(compiled.positiontup or ()), dict(compiled.params)
