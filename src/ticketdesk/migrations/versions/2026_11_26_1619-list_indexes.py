"""Indexes for every list order and filter; users by ticket count as one ascending key

Revision ID: 0315bf6a5f85
Revises: 3da621599b06
Create Date: 2026-11-26 16:19:26.695682
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0315bf6a5f85"
down_revision: str | None = "3da621599b06"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tickets_author_id_updated_at_id", ["author_id", "updated_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_tickets_status_created_at_id", ["status", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_tickets_status_updated_at_id", ["status", "updated_at", "id"], unique=False
        )
        batch_op.create_index("ix_tickets_updated_at_id", ["updated_at", "id"], unique=False)

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index("ix_users_tickets_count_id")
        batch_op.create_index(
            "ix_users_by_tickets_count", [sa.text("(-tickets_count)"), "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index("ix_users_by_tickets_count")
        batch_op.create_index(
            "ix_users_tickets_count_id", [sa.text("tickets_count DESC"), "id"], unique=False
        )

    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_updated_at_id")
        batch_op.drop_index("ix_tickets_status_updated_at_id")
        batch_op.drop_index("ix_tickets_status_created_at_id")
        batch_op.drop_index("ix_tickets_author_id_updated_at_id")
