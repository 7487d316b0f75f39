"""Indexes for the report's periods (when tickets were resolved and rated) and for the
console's breaching queue (open tickets by their due times)

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


OPEN = "status IN ('pending', 'unresolved')"
WHERE = {
    "resolved_at": "resolved_at IS NOT NULL",
    "rated_at": "rated_at IS NOT NULL",
    "first_response_due_at": f"{OPEN} AND first_response_at IS NULL",
    "resolution_due_at": OPEN,
}


def upgrade() -> None:
    for column, where in WHERE.items():
        op.create_index(
            f"ix_tickets_{column}",
            "tickets",
            [column],
            postgresql_where=sa.text(where),
            sqlite_where=sa.text(where),
        )


def downgrade() -> None:
    for column in reversed(WHERE):
        op.drop_index(f"ix_tickets_{column}", table_name="tickets")
