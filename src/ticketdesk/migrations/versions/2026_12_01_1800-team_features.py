"""A team's help desk: assignee, priority, SLA times, rating, internal notes, ticket events

Revision ID: 6a1c2e9d4b70
Revises: f70359c0c72d
Create Date: 2026-12-01 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6a1c2e9d4b70"
down_revision: str | None = "f70359c0c72d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OLD_TYPES = "type IN ('request', 'response', 'other')"
NEW_TYPES = "type IN ('request', 'response', 'other', 'note')"
KINDS = "kind IN ('created', 'status', 'assignee', 'priority', 'message', 'note', 'rating')"


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assignee_id", Id, nullable=True))
        batch_op.add_column(
            sa.Column("priority", sa.SmallInteger(), server_default="1", nullable=False)
        )
        for name in (
            "first_response_due_at",
            "resolution_due_at",
            "first_response_at",
            "resolved_at",
        ):
            batch_op.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("rating_score", sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column("rating_comment", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("rated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_tickets_assignee_id_users"),
            "users",
            ["assignee_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_check_constraint(
            op.f("ck_tickets_priority_valid"), "priority BETWEEN 0 AND 3"
        )
        batch_op.create_check_constraint(
            op.f("ck_tickets_rating_score_valid"), "rating_score BETWEEN 1 AND 5"
        )
        batch_op.create_index(
            "ix_tickets_assignee_id_created_at_id", ["assignee_id", "created_at", "id"]
        )
        batch_op.create_index("ix_tickets_priority_id", ["priority", "id"])
        batch_op.create_index("ix_tickets_status_priority_id", ["status", "priority", "id"])

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_messages_type_valid"), type_="check")
        batch_op.create_check_constraint(op.f("ck_messages_type_valid"), NEW_TYPES)

    op.create_table(
        "ticket_events",
        sa.Column("id", Id, nullable=False),
        sa.Column("ticket_id", Id, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", Id, nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
        sa.CheckConstraint(KINDS, name=op.f("ck_ticket_events_kind_valid")),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["users.id"],
            name=op.f("fk_ticket_events_actor_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_ticket_events_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_events")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_ticket_events_ticket_id_id", "ticket_events", ["ticket_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_ticket_events_ticket_id_id", table_name="ticket_events")
    op.drop_table("ticket_events")
    op.execute("DELETE FROM messages WHERE type = 'note'")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_messages_type_valid"), type_="check")
        batch_op.create_check_constraint(op.f("ck_messages_type_valid"), OLD_TYPES)
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_status_priority_id")
        batch_op.drop_index("ix_tickets_priority_id")
        batch_op.drop_index("ix_tickets_assignee_id_created_at_id")
        batch_op.drop_constraint(op.f("ck_tickets_rating_score_valid"), type_="check")
        batch_op.drop_constraint(op.f("ck_tickets_priority_valid"), type_="check")
        batch_op.drop_constraint(op.f("fk_tickets_assignee_id_users"), type_="foreignkey")
        for name in (
            "rated_at",
            "rating_comment",
            "rating_score",
            "resolved_at",
            "first_response_at",
            "resolution_due_at",
            "first_response_due_at",
            "priority",
            "assignee_id",
        ):
            batch_op.drop_column(name)
