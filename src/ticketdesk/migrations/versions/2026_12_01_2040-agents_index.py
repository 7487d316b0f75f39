"""An index of the active agents by name (the assignee lists)

Revision ID: 5e1d7b2a9c64
Revises: 2f6a8c3e9b41
Create Date: 2026-12-01 20:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5e1d7b2a9c64"
down_revision: str | None = "2f6a8c3e9b41"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AGENTS = sa.text("is_active AND (is_staff OR is_superuser)")


def upgrade() -> None:
    op.create_index(
        "ix_users_agents_by_username",
        "users",
        ["username", "id"],
        postgresql_where=AGENTS,
        sqlite_where=AGENTS,
    )


def downgrade() -> None:
    op.drop_index("ix_users_agents_by_username", table_name="users")
