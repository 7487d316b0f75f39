"""The mails taken in, so that one delivered twice is stored once

Revision ID: 3d9a5f7c1e28
Revises: 8c4f1e6b2d07
Create Date: 2026-12-01 20:10:48.393734
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3d9a5f7c1e28"
down_revision: str | None = "8c4f1e6b2d07"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbound_mails",
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column(
            "ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_inbound_mails_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_inbound_mails")),
    )


def downgrade() -> None:
    op.drop_table("inbound_mails")
