"""Full-text search of tickets: the SQL condition on each backend, and the query it takes.

A ticket's document is its topic and its public messages; agents also search its internal
notes. Words are stemmed (English) and must all match; a "phrase in quotes" matches as a
phrase. PostgreSQL reads the query with `websearch_to_tsquery` against tsvector columns
with GIN indexes; SQLite matches an FTS5 table with the Porter stemmer. Both are kept up
to date in the transaction that writes the ticket or message (the migration
`ticket_search` describes them).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, literal_column, select, text

from ticketdesk.models import tickets

CONFIG = "english"
"""PostgreSQL's text-search configuration; SQLite's tokenizer is `porter unicode61`."""
MAX_LENGTH = 500
INDEXED_CHARACTERS = 100_000
"""Of each message, the first this many characters are searchable."""
MAX_LEXEMES = 50_000
"""A ticket's document stops growing at this many distinct words (PostgreSQL caps a tsvector
at 1 MB, and a write must never fail because a thread is long)."""

_TERMS = re.compile(r'"([^"]*)"|([^\s"]+)')


def terms(query: str) -> list[str]:
    """The words and quoted phrases of a query that have anything to search for."""
    found = [phrase or word for phrase, word in _TERMS.findall(query)]
    return [term for term in found if any(character.isalnum() for character in term)]


def fts5_query(query: str) -> str:
    """The query in FTS5's syntax: each word or phrase quoted, so nothing in it is an operator."""
    return " ".join('"' + term.replace('"', '""') + '"' for term in terms(query))


def matches(viewer_is_agent: bool, dialect: str) -> ColumnElement[bool]:
    """Tickets whose document matches the parameter `search` (`fts_search` on SQLite)."""
    if dialect == "postgresql":
        document = (
            "(tickets.search_public || tickets.search_notes)"
            if viewer_is_agent
            else "tickets.search_public"
        )
        query = text(f"websearch_to_tsquery('{CONFIG}', :search)").bindparams(
            bindparam("search", type_=tickets.c.topic.type)
        )
        return literal_column(document).op("@@")(query)
    match = (
        "ticket_search MATCH :fts_search"
        if viewer_is_agent
        else ("ticket_search.public MATCH :fts_search")
    )
    found: Select[Any] = (
        select(literal_column("rowid")).select_from(text("ticket_search")).where(text(match))
    )
    return tickets.c.id.in_(found.scalar_subquery())


def bound(value: str) -> str:
    """The part of a text (an SQL expression) that search indexes."""
    return f"left({value}, {INDEXED_CHARACTERS})"


def extend(column: str, value: str, *, bounded: bool = False) -> str:
    """SQL that adds the text `value` (an SQL expression) to a tsvector column, within bounds.

    `bounded`: `value` is already cut to INDEXED_CHARACTERS per text (`bound`).
    """
    if not bounded:
        value = bound(value)
    addition = f"to_tsvector('{CONFIG}', {value})"
    return (
        f"{column} = CASE WHEN length({column}) < {MAX_LEXEMES} "
        f"THEN {column} || {addition} ELSE {column} END"
    )
