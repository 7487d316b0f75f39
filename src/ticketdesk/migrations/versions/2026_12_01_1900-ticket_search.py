"""Full-text search of tickets: PostgreSQL tsvectors with GIN indexes, SQLite FTS5

Each ticket has one document of its topic and public messages, and one of its internal
notes. PostgreSQL keeps them as two tsvector columns, which the repository's statements
extend as messages arrive; SQLite keeps them in an FTS5 table that triggers maintain.
Neither is in models.py: the migration environment leaves them out of its comparison.

Revision ID: 9b3f0d2c7e15
Revises: 6a1c2e9d4b70
Create Date: 2026-12-01 19:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "9b3f0d2c7e15"
down_revision: str | None = "6a1c2e9d4b70"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POSTGRES_UP = [
    "ALTER TABLE tickets ADD COLUMN search_public tsvector NOT NULL DEFAULT ''",
    "ALTER TABLE tickets ADD COLUMN search_notes tsvector NOT NULL DEFAULT ''",
    """
    UPDATE tickets SET
        search_public = to_tsvector('english', tickets.topic)
            || to_tsvector('english', coalesce(public.text, '')),
        search_notes = to_tsvector('english', coalesce(notes.text, ''))
    FROM tickets AS t
    LEFT JOIN LATERAL (
        SELECT string_agg(left(text, 100000), ' ' ORDER BY id) AS text FROM messages
        WHERE ticket_id = t.id AND type <> 'note'
    ) AS public ON true
    LEFT JOIN LATERAL (
        SELECT string_agg(left(text, 100000), ' ' ORDER BY id) AS text FROM messages
        WHERE ticket_id = t.id AND type = 'note'
    ) AS notes ON true
    WHERE tickets.id = t.id
    """,
    "CREATE INDEX ix_tickets_search_public ON tickets USING gin (search_public)",
    "CREATE INDEX ix_tickets_search_all ON tickets USING gin ((search_public || search_notes))",
]
POSTGRES_DOWN = [
    "DROP INDEX ix_tickets_search_all",
    "DROP INDEX ix_tickets_search_public",
    "ALTER TABLE tickets DROP COLUMN search_notes",
    "ALTER TABLE tickets DROP COLUMN search_public",
]

SQLITE_UP = [
    """
    CREATE VIRTUAL TABLE ticket_search USING fts5(public, notes, tokenize = 'porter unicode61')
    """,
    """
    INSERT INTO ticket_search (rowid, public, notes)
    SELECT t.id,
           t.topic || ' ' || coalesce((SELECT group_concat(text, ' ') FROM messages
                                       WHERE ticket_id = t.id AND type <> 'note'), ''),
           coalesce((SELECT group_concat(text, ' ') FROM messages
                     WHERE ticket_id = t.id AND type = 'note'), '')
    FROM tickets AS t
    """,
    """
    CREATE TRIGGER ticket_search_ticket AFTER INSERT ON tickets BEGIN
        INSERT INTO ticket_search (rowid, public, notes) VALUES (new.id, new.topic, '');
    END
    """,
    """
    CREATE TRIGGER ticket_search_message AFTER INSERT ON messages WHEN new.type <> 'note' BEGIN
        UPDATE ticket_search SET public = public || ' ' || new.text WHERE rowid = new.ticket_id;
    END
    """,
    """
    CREATE TRIGGER ticket_search_note AFTER INSERT ON messages WHEN new.type = 'note' BEGIN
        UPDATE ticket_search SET notes = notes || ' ' || new.text WHERE rowid = new.ticket_id;
    END
    """,
    """
    CREATE TRIGGER ticket_search_gone AFTER DELETE ON tickets BEGIN
        DELETE FROM ticket_search WHERE rowid = old.id;
    END
    """,
]
SQLITE_DOWN = [
    "DROP TRIGGER ticket_search_gone",
    "DROP TRIGGER ticket_search_note",
    "DROP TRIGGER ticket_search_message",
    "DROP TRIGGER ticket_search_ticket",
    "DROP TABLE ticket_search",
]


def _run(postgres: list[str], sqlite: list[str]) -> None:
    statements = postgres if op.get_bind().dialect.name == "postgresql" else sqlite
    for statement in statements:
        op.execute(statement)


def upgrade() -> None:
    _run(POSTGRES_UP, SQLITE_UP)


def downgrade() -> None:
    _run(POSTGRES_DOWN, SQLITE_DOWN)
