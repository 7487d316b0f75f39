"""Configuration from the environment and `.env`, under the old service's names where it had any."""

from __future__ import annotations

import logging
import os
import re
import secrets
import tempfile
from email.utils import parseaddr
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from fastapi import Depends, Request
from limits import parse_many
from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

from ticketdesk import sla
from ticketdesk.schemas import TRIAL_NAMES

log = logging.getLogger("ticketdesk")

MIN_JWT_KEY_BYTES = 32
DEFAULT_SQLITE_FILE = "ticketdesk.db"
JWT_KEY_FILE_NAME = "ticketdesk.jwt-key"
LEASE_MARGIN_S = 5.0
"""How much longer than a job's deadline its lease lasts at least: time to record the outcome."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    database_url: str | None = None
    db_host: str | None = None
    db_port: int = 5432
    db_user: str | None = None
    db_password: SecretStr | None = None
    db_name: str | None = None
    db_pool_size: int = Field(default=8, ge=1, le=1000)  # per worker process and pool
    db_pool_timeout: float = Field(default=30.0, gt=0)  # seconds to wait for a free connection
    db_connect_timeout: float = Field(default=5.0, gt=0)  # seconds to open a connection
    db_statement_timeout: float = Field(default=10.0, ge=0)  # seconds per statement; 0: none

    jwt_key: SecretStr | None = None
    jwt_key_file: Path | None = None
    token_lifetime_minutes: int = Field(default=30, ge=1, le=60 * 24 * 30)
    # Browser pages renew an active session's token; never past this long after sign-in.
    session_max_hours: int = Field(default=12, ge=1, le=24 * 90)
    staff_token: SecretStr | None = None
    cookie_secure: bool = False

    cors_origins: str = ""  # comma-separated origins allowed to call from a browser
    forwarded_allow_ips: str | None = None  # proxies whose X-Forwarded-For is believed

    redis_url: str | None = None  # rate-limit counters shared by every process
    rate_limit_prefix: str = "ticketdesk"  # of the counters' keys in Redis
    rate_limits: bool = True  # false: no limits at all (load tests)
    rate_limit_login_per_account: str = "10/minute"
    rate_limit_login_per_ip: str = "10/minute"
    rate_limit_login_failures: str = "100/hour"  # per account
    rate_limit_register_per_ip: str = "10/hour"
    rate_limit_writes_per_user: str = "60/minute"
    rate_limit_password_reset: str = "5/hour"  # noqa: S105 - reset mails per account
    rate_limit_password_reset_per_ip: str = "50/hour"  # noqa: S105 - reset requests per IP
    # open: anyone signs up; closed: customers come from agents, STAFF_TOKEN and inbound mail.
    registration: Literal["open", "closed"] = "open"
    # Top-level names of no real mail whose addresses a desk still takes (for trials):
    # comma-separated, of test, example, local, localhost. Empty: none of them.
    trial_domains: str = "test,example"
    # An agent who replies from the console to a ticket nobody has takes it (unless they
    # untick "Assign to me" in the composer).
    assign_on_reply: bool = True
    idempotency_hours: int = Field(default=24, ge=1, le=24 * 30)

    data_dir: Path = Path("data")  # attachments are kept under it, in attachments/
    attachment_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1)  # per file
    message_attachments_max_bytes: int = Field(default=25 * 1024 * 1024, ge=1)  # per message
    message_attachments_max_files: int = Field(default=10, ge=1, le=100)

    # Service levels: hours per priority, and the business hours they count in (unset: 24/7).
    sla_first_response_hours: str = sla.DEFAULT_FIRST_RESPONSE_HOURS
    sla_resolution_hours: str = sla.DEFAULT_RESOLUTION_HOURS
    sla_business_hours: str | None = None  # e.g. Mon-Fri 09:00-17:00 Europe/Berlin

    # Mail: off while SMTP_HOST is unset. SMTP_TLS: starttls, tls (implicit, port 465) or none.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: Literal["starttls", "tls", "none"] = "starttls"
    smtp_timeout: float = Field(default=10.0, gt=0)  # seconds per mail, the whole exchange
    mail_from: str = "ticketdesk <support@localhost>"  # also the support address mail comes to
    mail_reply_domain: str | None = None  # of the reply addresses; unset: MAIL_FROM's domain
    # Where people reach the service: the links in mail. Unset: http://SERVER_HOST:SERVER_PORT.
    public_url: str | None = None

    # Webhooks may call addresses in private, loopback and link-local ranges only when true.
    webhook_allow_private: bool = False
    # Seconds per call, all of it: connecting, sending, and the answer (of which at most
    # delivery.MAX_ANSWER_BYTES are read).
    webhook_timeout: float = Field(default=10.0, gt=0)
    webhook_concurrency: int = Field(default=4, ge=1, le=100)  # calls a worker makes at once
    # Calls in flight to one endpoint, all workers together.
    webhook_endpoint_concurrency: int = Field(default=2, ge=1, le=100)
    # An endpoint whose calls failed this many times in a row is paused; a probe tries it again
    # after WEBHOOK_PAUSE_SECONDS, twice as long after each failed probe, up to the maximum.
    webhook_pause_after: int = Field(default=10, ge=1, le=10_000)
    webhook_pause_seconds: float = Field(default=300.0, gt=0)
    webhook_pause_max_seconds: float = Field(default=3600.0, gt=0)

    # Jobs (mail, webhook calls) run inside `ticketdesk serve` unless this is false, when
    # `ticketdesk worker` processes run them instead.
    jobs_in_server: bool = True
    # Seconds between the attempts of a failing job; after the last, it is recorded as failed.
    job_retry_delays: str = "5,300,1800,7200,18000,36000,36000"
    # A silent worker's job is retaken then; longer than any job may take (see below).
    job_lease_seconds: float = Field(default=60.0, gt=0)
    job_poll_seconds: float = Field(default=1.0, gt=0)  # how often idle workers look for work
    # Mails a worker sends at once, in slots of their own: mail never waits for webhook calls.
    mail_concurrency: int = Field(default=2, ge=1, le=100)

    server_host: str = "127.0.0.1"
    server_port: int = Field(default=8089, ge=1, le=65535)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # A request's line and headers: at most this many bytes and headers (else 431), arriving
    # within this many seconds of their first byte (else the connection is closed).
    max_header_bytes: int = Field(default=64 * 1024, ge=1024)
    max_headers: int = Field(default=100, ge=10)
    header_timeout: float = Field(default=10.0, gt=0)
    shutdown_timeout: float = Field(default=30.0, gt=0)  # seconds in-flight requests may finish
    # GET /metrics answers a scraper that sends it as a Bearer token; unset: metrics are off.
    metrics_token: SecretStr | None = None
    log_level: str = "info"
    log_format: Literal["auto", "json", "console"] = "auto"  # auto: console on a terminal

    @field_validator("jwt_key")
    @classmethod
    def _jwt_key_is_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < MIN_JWT_KEY_BYTES:
            raise ValueError(f"JWT_KEY must be at least {MIN_JWT_KEY_BYTES} bytes long")
        return value

    @field_validator(
        "rate_limit_login_per_account",
        "rate_limit_login_per_ip",
        "rate_limit_login_failures",
        "rate_limit_register_per_ip",
        "rate_limit_writes_per_user",
        "rate_limit_password_reset",
        "rate_limit_password_reset_per_ip",
    )
    @classmethod
    def _is_a_rate(cls, value: str) -> str:
        try:
            parse_many(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a rate: write e.g. 10/minute, or 10/minute;100/hour"
            ) from None
        return value

    @field_validator("sla_first_response_hours", "sla_resolution_hours")
    @classmethod
    def _are_hours_per_priority(cls, value: str) -> str:
        sla.parse_hours(value)
        return value

    @field_validator("sla_business_hours")
    @classmethod
    def _is_a_calendar(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        sla.BusinessHours.parse(value)
        return value

    @field_validator("job_retry_delays")
    @classmethod
    def _are_delays(cls, value: str) -> str:
        try:
            delays = [float(item) for item in value.split(",") if item.strip()]
        except ValueError:
            delays = []
        if not delays or any(delay < 0 for delay in delays):
            raise ValueError(f"{value!r} is not a list of seconds: write e.g. 5,300,1800")
        return value

    @field_validator("job_lease_seconds")
    @classmethod
    def _lease_outlasts_every_job(cls, value: float, info: ValidationInfo) -> float:
        deadlines = [info.data.get(name) for name in ("webhook_timeout", "smtp_timeout")]
        longest = max((d for d in deadlines if d is not None), default=0.0)
        if value < longest + LEASE_MARGIN_S:
            raise ValueError(
                f"must be at least {LEASE_MARGIN_S:g} s longer than WEBHOOK_TIMEOUT and "
                f"SMTP_TIMEOUT ({longest:g}): else a second attempt could start while the "
                "first is still open"
            )
        return value

    @field_validator("webhook_pause_max_seconds")
    @classmethod
    def _longest_pause_is_longer(cls, value: float, info: ValidationInfo) -> float:
        if value < info.data.get("webhook_pause_seconds", 0.0):
            raise ValueError("may not be shorter than WEBHOOK_PAUSE_SECONDS")
        return value

    @field_validator("trial_domains")
    @classmethod
    def _are_trial_names(cls, value: str) -> str:
        names = {item.strip().lower().lstrip(".") for item in value.split(",") if item.strip()}
        if names - TRIAL_NAMES:
            raise ValueError(
                f"{value!r}: only {', '.join(sorted(TRIAL_NAMES))} may be named (addresses "
                "under the other reserved names never take mail)"
            )
        return ",".join(sorted(names))

    @property
    def trial_domain_names(self) -> frozenset[str]:
        """TRIAL_DOMAINS as a set, for `schemas.email_address`."""
        return frozenset(name for name in self.trial_domains.split(",") if name)

    @property
    def retry_delays(self) -> tuple[float, ...]:
        return tuple(float(item) for item in self.job_retry_delays.split(",") if item.strip())

    @field_validator("mail_from")
    @classmethod
    def _is_an_address(cls, value: str) -> str:
        _, address = parseaddr(value)
        if "@" not in address:
            raise ValueError(f"{value!r} is not a mail address: write e.g. support@example.com")
        return value

    @property
    def mail_enabled(self) -> bool:
        return bool(self.smtp_host)

    @property
    def support_address(self) -> str:
        """MAIL_FROM's address alone: where new tickets are mailed to."""
        return parseaddr(self.mail_from)[1].lower()

    @property
    def reply_domain(self) -> str:
        return (self.mail_reply_domain or self.support_address.rpartition("@")[2]).lower()

    @property
    def base_url(self) -> str:
        """PUBLIC_URL without a trailing slash, or the address the server listens on."""
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{self.server_host}:{self.server_port}"

    @field_validator("public_url")
    @classmethod
    def _is_a_base_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise ValueError(f"{value!r} is not a URL like https://support.example.com")
        return value.strip()

    @cached_property
    def sla_policy(self) -> sla.Policy:
        """The service-level targets, parsed."""
        return sla.Policy(
            sla.parse_hours(self.sla_first_response_hours),
            sla.parse_hours(self.sla_resolution_hours),
            sla.BusinessHours.parse(self.sla_business_hours) if self.sla_business_hours else None,
        )

    @field_validator("staff_token", "metrics_token")
    @classmethod
    def _empty_staff_token_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value() else None

    @field_validator("cors_origins")
    @classmethod
    def _cors_origins_are_origins(cls, value: str) -> str:
        return ",".join(_origin(item) for item in value.split(",") if item.strip())

    @property
    def cors_origin_list(self) -> list[str]:
        """CORS_ORIGINS as origins the way browsers send them: `https://host[:port]`."""
        return [origin for origin in self.cors_origins.split(",") if origin]

    @cached_property
    def database(self) -> URL:
        """DATABASE_URL, else the old service's DB_* settings, else a local SQLite file."""
        if self.database_url:
            return _async_driver(make_url(self.database_url))
        if self.db_host and self.db_name:
            return URL.create(
                "postgresql+asyncpg",
                username=self.db_user,
                password=self.db_password.get_secret_value() if self.db_password else None,
                host=self.db_host,
                port=self.db_port,
                database=self.db_name,
            )
        return make_url(f"sqlite+aiosqlite:///{DEFAULT_SQLITE_FILE}")

    @property
    def is_sqlite(self) -> bool:
        return self.database.get_backend_name() == "sqlite"

    @property
    def token_lifetime_seconds(self) -> int:
        return self.token_lifetime_minutes * 60

    def signing_key(self) -> bytes:
        """JWT_KEY, or a key generated once and kept (mode 0600) beside the SQLite database."""
        return self.jwt_signing_key

    @cached_property
    def jwt_signing_key(self) -> bytes:
        if self.jwt_key is not None:
            return self.jwt_key.get_secret_value().encode()
        return _load_or_create_key(self.key_file())

    def key_file(self) -> Path:
        """Where the generated signing key is kept when JWT_KEY is not set."""
        if self.jwt_key_file is not None:
            return self.jwt_key_file
        if self.is_sqlite and self.database.database not in (None, "", ":memory:"):
            return Path(str(self.database.database)).resolve().parent / JWT_KEY_FILE_NAME
        return Path.cwd() / JWT_KEY_FILE_NAME


def _async_driver(url: URL) -> URL:
    """Accept the plain `postgresql://` and `sqlite://` forms and pick the async drivers."""
    backend = url.get_backend_name()
    if backend in ("postgres", "postgresql"):
        return url.set(drivername="postgresql+asyncpg")
    if backend == "sqlite":
        return url.set(drivername="sqlite+aiosqlite")
    raise ValueError(f"unsupported database {backend!r}: use PostgreSQL or SQLite")


_HOST = re.compile(r"[a-z0-9.-]+|[0-9a-f:]+")  # a name (IDNs in their xn-- form) or IPv6


def _origin(text: str) -> str:
    """`scheme://host[:port]`, lower-cased, without a default port: how a browser sends it."""
    parts = urlsplit(text.strip().lower())
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or not _HOST.fullmatch(parts.hostname)
        or parts.username is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise ValueError(f"{text.strip()!r} is not an origin like https://support.example.com")
    default_port = {"http": 80, "https": 443}[parts.scheme]
    port = "" if parts.port in (None, default_port) else f":{parts.port}"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname  # IPv6
    return f"{parts.scheme}://{host}{port}"


def _load_or_create_key(path: Path) -> bytes:
    try:
        key = path.read_bytes().strip()
    except FileNotFoundError:
        key = secrets.token_urlsafe(48).encode()
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write beside, then link into place: atomic, and two workers starting together agree.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".jwt-key-")
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, key)
            os.close(fd)
            os.link(tmp, path)
            log.warning("JWT_KEY is not set: generated a signing key and stored it in %s", path)
        except FileExistsError:
            return path.read_bytes().strip()
        finally:
            os.unlink(tmp)
        return key
    if len(key) < MIN_JWT_KEY_BYTES:
        raise ValueError(f"the key in {path} is shorter than {MIN_JWT_KEY_BYTES} bytes")
    return key


async def _app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


AppSettings = Annotated[Settings, Depends(_app_settings)]
