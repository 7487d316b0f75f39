"""Tags: agents' labels for tickets, and the event of a ticket's tags changing

Revision ID: 6f0c2d8e4a17
Revises: b41e7c9a2f60
Create Date: 2026-12-07 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6f0c2d8e4a17"
down_revision: str | None = "b41e7c9a2f60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

OLD_KINDS = "kind IN ('created', 'status', 'assignee', 'priority', 'message', 'note', 'rating')"
NEW_KINDS = (
    "kind IN ('created', 'status', 'assignee', 'priority', 'message', 'note', 'rating', 'tags')"
)
KIND_VALID = "ck_ticket_events_kind_valid"


def _kinds(check: str) -> None:
    """Replace the check of the events' kinds (SQLite: by copying the table, keeping its ids'
    sequence where it was, so that no id is ever handed out twice)."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.drop_constraint(op.f(KIND_VALID), "ticket_events", type_="check")
        op.create_check_constraint(op.f(KIND_VALID), "ticket_events", sa.text(check))
        return
    sequence = bind.execute(
        sa.text("SELECT seq FROM sqlite_sequence WHERE name = 'ticket_events'")
    ).scalar()
    with op.batch_alter_table(
        "ticket_events",
        recreate="always",
        table_kwargs={"sqlite_autoincrement": True},
    ) as batch_op:
        batch_op.drop_constraint(op.f(KIND_VALID), type_="check")
        batch_op.create_check_constraint(op.f(KIND_VALID), sa.text(check))
    if sequence is not None:
        bind.execute(
            sa.text("UPDATE sqlite_sequence SET seq = :seq WHERE name = 'ticket_events'"),
            {"seq": sequence},
        )


def upgrade() -> None:
    op.create_table(
        "tags",
        sa.Column("id", Id, nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tags")),
        sa.UniqueConstraint("name", name=op.f("uq_tags_name")),
    )
    op.create_table(
        "ticket_tags",
        sa.Column("ticket_id", Id, nullable=False),
        sa.Column("tag_id", Id, nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_ticket_tags_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tags.id"], name=op.f("fk_ticket_tags_tag_id_tags"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("ticket_id", "tag_id", name=op.f("pk_ticket_tags")),
    )
    op.create_index(
        "ix_ticket_tags_tag_id_ticket_id", "ticket_tags", ["tag_id", "ticket_id"], unique=False
    )
    _kinds(NEW_KINDS)


def downgrade() -> None:
    op.execute("DELETE FROM ticket_events WHERE kind = 'tags'")
    _kinds(OLD_KINDS)
    op.drop_index("ix_ticket_tags_tag_id_ticket_id", table_name="ticket_tags")
    op.drop_table("ticket_tags")
    op.drop_table("tags")
