"""Indexes for the report's periods: when tickets were resolved and rated

Revision ID: 7d2b9e4c1a58
Revises: 4c8e1a7f2d93
Create Date: 2026-12-01 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7d2b9e4c1a58"
down_revision: str | None = "4c8e1a7f2d93"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for column in ("resolved_at", "rated_at"):
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(
            f"ix_tickets_{column}",
            "tickets",
            [column],
            postgresql_where=where,
            sqlite_where=where,
        )


def downgrade() -> None:
    for column in ("rated_at", "resolved_at"):
        op.drop_index(f"ix_tickets_{column}", table_name="tickets")
