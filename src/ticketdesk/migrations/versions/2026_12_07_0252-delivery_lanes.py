"""Delivery lanes: jobs claimed per kind and per endpoint, and each endpoint's health

Revision ID: b41e7c9a2f60
Revises: 3d9a5f7c1e28
Create Date: 2026-12-07 02:52:18.650629
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b41e7c9a2f60"
down_revision: str | None = "3d9a5f7c1e28"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNFINISHED = sa.text("status IN ('queued', 'running')")


def upgrade() -> None:
    op.drop_index("ix_jobs_due", table_name="jobs")
    op.create_index(
        "ix_jobs_kind_due",
        "jobs",
        ["kind", "run_at"],
        postgresql_where=UNFINISHED,
        sqlite_where=UNFINISHED,
    )
    op.create_index(
        "ix_jobs_webhook_due",
        "jobs",
        ["webhook_id", "run_at"],
        postgresql_where=UNFINISHED,
        sqlite_where=UNFINISHED,
    )
    op.add_column(
        "webhooks",
        sa.Column("consecutive_failures", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column("webhooks", sa.Column("paused_until", sa.DateTime(timezone=True)))
    op.add_column("webhooks", sa.Column("paused_reason", sa.Text()))
    op.add_column("webhooks", sa.Column("served_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("webhooks", "served_at")
    op.drop_column("webhooks", "paused_reason")
    op.drop_column("webhooks", "paused_until")
    op.drop_column("webhooks", "consecutive_failures")
    op.drop_index("ix_jobs_webhook_due", table_name="jobs")
    op.drop_index("ix_jobs_kind_due", table_name="jobs")
    op.create_index(
        "ix_jobs_due", "jobs", ["run_at"], postgresql_where=UNFINISHED, sqlite_where=UNFINISHED
    )
