"""Attachments of messages: their names, sniffed types and content hashes

Revision ID: 4c8e1a7f2d93
Revises: 9b3f0d2c7e15
Create Date: 2026-12-01 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4c8e1a7f2d93"
down_revision: str | None = "9b3f0d2c7e15"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("attachment_count", sa.SmallInteger(), server_default="0", nullable=False)
        )
    op.create_table(
        "attachments",
        sa.Column("id", Id, nullable=False),
        sa.Column("message_id", Id, nullable=False),
        sa.Column("ticket_id", Id, nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_attachments_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_attachments_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachments")),
    )
    op.create_index("ix_attachments_sha256", "attachments", ["sha256"])
    op.create_index(
        "ix_attachments_ticket_id_message_id", "attachments", ["ticket_id", "message_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_attachments_ticket_id_message_id", table_name="attachments")
    op.drop_index("ix_attachments_sha256", table_name="attachments")
    op.drop_table("attachments")
    # Not a batch, which would rebuild the table without its search triggers on SQLite.
    op.execute("ALTER TABLE messages DROP COLUMN attachment_count")
