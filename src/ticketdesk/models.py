"""The tables. Every constraint is named, so migrations can refer to it on every backend."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)

TICKET_STATUSES = ("pending", "resolved", "unresolved", "canceled")
MESSAGE_TYPES = ("request", "response", "other", "note")
JOB_KINDS = ("mail", "webhook")
JOB_STATES = ("queued", "running", "done", "failed")
EVENT_KINDS = ("created", "status", "assignee", "priority", "message", "note", "rating", "tags")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite gives rowid aliases auto-increment only to INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, whatever the backend keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


_AGENTS = "is_active AND (is_staff OR is_superuser)"

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),  # stored lower-cased
    Column("username", String(64), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("is_staff", Boolean, nullable=False, default=False),
    Column("is_superuser", Boolean, nullable=False, default=False),
    Column("is_active", Boolean, nullable=False, default=True),
    Column("tickets_count", Integer, nullable=False, default=0),
    # Raised to revoke every token issued before (password change, blocking).
    Column("token_version", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    # Which mail an agent gets: of new tickets, and of customers' replies.
    # Server defaults alone: an insert that names neither column gets them on every path.
    Column("mail_new_tickets", Boolean, nullable=False, server_default=text("true")),
    Column("mail_customer_replies", Boolean, nullable=False, server_default=text("true")),
    CheckConstraint("tickets_count >= 0", name="tickets_count_not_negative"),
)
# Most tickets first, then by id: one ascending key, so a keyset cursor can seek in it.
Index("ix_users_by_tickets_count", -users.c.tickets_count, users.c.id)
# Who a ticket can be assigned to, by name.
Index(
    "ix_users_agents_by_username",
    users.c.username,
    users.c.id,
    postgresql_where=text(_AGENTS),
    sqlite_where=text(_AGENTS),
)

revoked_tokens = Table(
    "revoked_tokens",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
)

staff_keys = Table(
    "staff_keys",
    metadata,
    Column("id", Id, primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),  # SHA-256 of the key
    Column("created_by", Id, ForeignKey("users.id", ondelete="SET NULL")),
    Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    Column("expires_at", UTCDateTime),
    Column("used_by", Id, ForeignKey("users.id", ondelete="SET NULL")),
    Column("used_at", UTCDateTime),
)

_OPEN = "status IN ('pending', 'unresolved')"
_OPEN_UNANSWERED = f"{_OPEN} AND first_response_at IS NULL"

tickets = Table(
    "tickets",
    metadata,
    Column("id", Id, primary_key=True),
    Column("author_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("topic", String(20), nullable=False),
    Column("status", String(16), nullable=False, default="pending"),
    Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    Column("updated_at", UTCDateTime, nullable=False, default=utcnow),
    Column("assignee_id", Id, ForeignKey("users.id", ondelete="SET NULL")),
    Column("priority", SmallInteger, nullable=False, default=1, server_default="1"),
    # SLA: when the first response and the resolution are due, and when they came.
    Column("first_response_due_at", UTCDateTime),
    Column("resolution_due_at", UTCDateTime),
    Column("first_response_at", UTCDateTime),
    Column("resolved_at", UTCDateTime),
    # Satisfaction: the author's one rating, once the ticket is resolved.
    Column("rating_score", SmallInteger),
    Column("rating_comment", Text),
    Column("rated_at", UTCDateTime),
    CheckConstraint(_in("status", TICKET_STATUSES), name="status_valid"),
    # A priority is kept as its rank, 0 (low) to 3 (urgent), so urgent sorts first in one index.
    CheckConstraint("priority BETWEEN 0 AND 3", name="priority_valid"),
    CheckConstraint("rating_score BETWEEN 1 AND 5", name="rating_score_valid"),
    # One index per list order, alone and under the author or status filters.
    Index("ix_tickets_created_at_id", "created_at", "id"),
    Index("ix_tickets_updated_at_id", "updated_at", "id"),
    Index("ix_tickets_author_id_created_at_id", "author_id", "created_at", "id"),
    Index("ix_tickets_author_id_updated_at_id", "author_id", "updated_at", "id"),
    Index("ix_tickets_status_created_at_id", "status", "created_at", "id"),
    Index("ix_tickets_status_updated_at_id", "status", "updated_at", "id"),
    Index("ix_tickets_assignee_id_created_at_id", "assignee_id", "created_at", "id"),
    Index("ix_tickets_priority_id", "priority", "id"),
    Index("ix_tickets_status_priority_id", "status", "priority", "id"),
    # The report's periods: when tickets were resolved and rated (most never are).
    Index(
        "ix_tickets_resolved_at",
        "resolved_at",
        postgresql_where=text("resolved_at IS NOT NULL"),
        sqlite_where=text("resolved_at IS NOT NULL"),
    ),
    # The console's breaching queue: open tickets by the due time they wait for.
    Index(
        "ix_tickets_first_response_due_at",
        "first_response_due_at",
        postgresql_where=text(_OPEN_UNANSWERED),
        sqlite_where=text(_OPEN_UNANSWERED),
    ),
    Index(
        "ix_tickets_resolution_due_at",
        "resolution_due_at",
        postgresql_where=text(_OPEN),
        sqlite_where=text(_OPEN),
    ),
    Index(
        "ix_tickets_rated_at",
        "rated_at",
        postgresql_where=text("rated_at IS NOT NULL"),
        sqlite_where=text("rated_at IS NOT NULL"),
    ),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Id, primary_key=True),
    Column("ticket_id", Id, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
    Column("author_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    # How many attachments it has: a page of messages looks them up only when one has any.
    Column("attachment_count", SmallInteger, nullable=False, default=0, server_default="0"),
    CheckConstraint(_in("type", MESSAGE_TYPES), name="type_valid"),
    Index("ix_messages_ticket_id_id", "ticket_id", "id"),
    Index("ix_messages_author_id", "author_id"),
)

attachments = Table(
    "attachments",
    metadata,
    Column("id", Id, primary_key=True),
    Column("message_id", Id, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("ticket_id", Id, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
    Column("filename", String(255), nullable=False),
    Column("content_type", String(100), nullable=False),  # sniffed from the content
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),  # where the content is kept
    Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    Index("ix_attachments_ticket_id_message_id", "ticket_id", "message_id"),
    Index("ix_attachments_sha256", "sha256"),
)

ticket_events = Table(
    "ticket_events",
    metadata,
    # Never reused (SQLite AUTOINCREMENT): a follower's position must stay unique.
    Column("id", Id, primary_key=True),
    Column("ticket_id", Id, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor_id", Id, ForeignKey("users.id", ondelete="SET NULL")),
    Column("kind", String(16), nullable=False),
    Column("before", Text),  # JSON: the fields the change replaced
    Column("after", Text),  # JSON: their new values
    CheckConstraint(_in("kind", EVENT_KINDS), name="kind_valid"),
    Index("ix_ticket_events_ticket_id_id", "ticket_id", "id"),
    sqlite_autoincrement=True,
)

tags = Table(
    "tags",
    metadata,
    # Agents' labels for tickets (`tags/policy.py`: lower-cased, at most 40 characters).
    Column("id", Id, primary_key=True),
    Column("name", String(40), nullable=False, unique=True),
)

ticket_tags = Table(
    "ticket_tags",
    metadata,
    Column("ticket_id", Id, ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", Id, ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
    # A tag's tickets: the filters and the counts read this, not the tickets.
    Index("ix_ticket_tags_tag_id_ticket_id", "tag_id", "ticket_id"),
)

ticket_presence = Table(
    "ticket_presence",
    metadata,
    # Who has a ticket open in the agent console, and whether they are writing on it.
    Column("ticket_id", Id, ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("seen_at", UTCDateTime, nullable=False),
    CheckConstraint(_in("state", ("viewing", "typing")), name="state_valid"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("id", Id, primary_key=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(255), nullable=False),
    Column("request_hash", String(64), nullable=False),  # SHA-256 of method, path and body
    Column("status_code", Integer),  # the answer, once the request succeeded
    Column("response_body", Text),
    Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    UniqueConstraint("user_id", "key", name="uq_idempotency_keys_user_id_key"),
    Index("ix_idempotency_keys_created_at", "created_at"),
)

password_resets = Table(
    "password_resets",
    metadata,
    Column("id", Id, primary_key=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),  # SHA-256 of the token
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Id, primary_key=True),
    Column("url", String(2048), nullable=False),
    Column("events", Text, nullable=False),  # JSON: the event kinds it receives
    # Kept as given: each delivery is signed with it (the receiver holds it too).
    Column("secret", String(64), nullable=False),
    Column("is_active", Boolean, nullable=False, default=True),
    Column("disabled_reason", Text),
    Column("created_by", Id, ForeignKey("users.id", ondelete="SET NULL")),
    Column("created_at", UTCDateTime, nullable=False),
    # Its health: calls failed in a row; while paused, when a probe may go, and why.
    Column("consecutive_failures", Integer, nullable=False, server_default="0"),
    Column("paused_until", UTCDateTime),
    Column("paused_reason", Text),
    # When a worker last took calls for it: the least recently served endpoint goes first.
    Column("served_at", UTCDateTime),
)

_UNFINISHED = "status IN ('queued', 'running')"

jobs = Table(
    "jobs",
    metadata,
    Column("id", Id, primary_key=True),
    # Stable across retries and dispatches: a job is queued once per key.
    Column("key", String(200), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("payload", Text, nullable=False),  # JSON: everything the job needs to run
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    # When it may run next; while it runs, when its lease ends (then another worker takes it).
    Column("run_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("last_error", Text),
    Column("last_code", Integer),  # the HTTP status or SMTP reply of the last attempt
    Column("event_id", Id),
    Column("webhook_id", Id, ForeignKey("webhooks.id", ondelete="CASCADE")),
    CheckConstraint(_in("kind", JOB_KINDS), name="kind_valid"),
    CheckConstraint(_in("status", JOB_STATES), name="status_valid"),
    # Each lane (kind) claims its own due jobs; webhook calls are claimed per endpoint.
    Index(
        "ix_jobs_kind_due",
        "kind",
        "run_at",
        postgresql_where=text(_UNFINISHED),
        sqlite_where=text(_UNFINISHED),
    ),
    Index(
        "ix_jobs_webhook_due",
        "webhook_id",
        "run_at",
        postgresql_where=text(_UNFINISHED),
        sqlite_where=text(_UNFINISHED),
    ),
    Index("ix_jobs_webhook_id_id", "webhook_id", "id"),
    Index("ix_jobs_status_id", "status", "id"),
)

job_cursors = Table(
    "job_cursors",
    metadata,
    # How far into the event feed the dispatcher has turned events into jobs.
    Column("name", String(32), primary_key=True),
    Column("position", Id, nullable=False),
)

inbound_mails = Table(
    "inbound_mails",
    metadata,
    # Each mail taken in, by its Message-ID (or the SHA-256 of its bytes when it has none):
    # the same mail delivered twice is stored once.
    Column("message_id", String(255), primary_key=True),
    Column("ticket_id", Id, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
)
