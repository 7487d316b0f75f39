"""The migrations build exactly the schema that models.py describes."""

from __future__ import annotations

from sqlalchemy.engine import URL

from ticketdesk import migrate


def test_models_and_migrations_agree(database_url: URL) -> None:
    migrate.check(database_url)  # raises when autogenerate would find a difference


def test_upgrade_is_idempotent(database_url: URL) -> None:
    migrate.upgrade(database_url)
    migrate.check(database_url)
