"""The suite drops the schema of the database it runs on: it must take only one of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from conftest import own_engine
from databases import PUBLIC_TABLES, create_database_if_missing, drop_database, take_database

pytestmark = pytest.mark.postgresql_only


@pytest.fixture
async def scratch_url(database_url: URL) -> AsyncIterator[URL]:
    """A database name beside the tests' own, dropped before and after."""
    url = database_url.set(database=f"{database_url.database}_guard")
    await drop_database(url)
    try:
        yield url
    finally:
        await drop_database(url)


async def _public_tables(url: URL) -> list[str]:
    async with own_engine(url) as engine, engine.connect() as conn:
        return list((await conn.execute(text(PUBLIC_TABLES))).scalars())


async def test_a_database_holding_tables_of_someone_else_is_refused_and_left_alone(
    scratch_url: URL,
) -> None:
    await create_database_if_missing(scratch_url)
    async with own_engine(scratch_url) as engine, engine.begin() as conn:
        await conn.execute(text("CREATE TABLE invoices (id integer PRIMARY KEY)"))
        await conn.execute(text("INSERT INTO invoices VALUES (1), (2)"))

    with pytest.raises(pytest.UsageError, match=r"refusing .*\(invoices\)"):
        await take_database(scratch_url)

    async with own_engine(scratch_url) as engine, engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM invoices")) == 2


async def test_a_database_the_tests_took_is_emptied_when_taken_again(scratch_url: URL) -> None:
    await take_database(scratch_url)  # created, as it is missing
    assert await _public_tables(scratch_url) == []
    async with own_engine(scratch_url) as engine, engine.begin() as conn:
        await conn.execute(text("CREATE TABLE tickets_of_an_earlier_run (id integer)"))

    await take_database(scratch_url)

    assert await _public_tables(scratch_url) == []
