"""Configuration: the old service's names, the database URL, and the signing key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from ticketdesk.settings import Settings


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("DATABASE_URL", "DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME"):
        monkeypatch.delenv(name, raising=False)
    for name in ("JWT_KEY", "JWT_KEY_FILE", "STAFF_TOKEN", "SERVER_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults() -> None:
    s = settings()
    assert s.server_port == 8089
    assert s.token_lifetime_seconds == 1800
    assert s.max_body_bytes == 1024 * 1024
    assert s.database.render_as_string() == "sqlite+aiosqlite:///ticketdesk.db"
    assert s.staff_token is None


def test_short_jwt_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        settings(jwt_key="x" * 31)
    assert settings(jwt_key="x" * 32).signing_key() == b"x" * 32


def test_old_db_settings_are_used_without_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "DB_HOST": "db.internal",
        "DB_PORT": "6543",
        "DB_USER": "tickets",
        "DB_PASSWORD": "p@ss/word",
        "DB_NAME": "helpdesk",
    }.items():
        monkeypatch.setenv(name, value)
    url = settings().database
    assert (url.drivername, url.host, url.port, url.username, url.password, url.database) == (
        "postgresql+asyncpg",
        "db.internal",
        6543,
        "tickets",
        "p@ss/word",
        "helpdesk",
    )
    monkeypatch.setenv("DATABASE_URL", "postgresql://other/db")
    assert settings().database.host == "other"


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgres://u@h/d", "postgresql+asyncpg"),
        ("postgresql://u@h/d", "postgresql+asyncpg"),
        ("postgresql+asyncpg://u@h/d", "postgresql+asyncpg"),
        ("sqlite:///x.db", "sqlite+aiosqlite"),
    ],
)
def test_database_url_forms(given: str, driver: str) -> None:
    assert settings(database_url=given).database.drivername == driver


def test_unsupported_database_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database"):
        _ = settings(database_url="mysql://u@h/d").database


def test_key_is_generated_once_beside_the_sqlite_database(tmp_path: Path) -> None:
    db = tmp_path / "data" / "desk.db"
    first = settings(database_url=f"sqlite:///{db}").signing_key()
    key_file = tmp_path / "data" / "ticketdesk.jwt-key"
    assert key_file.read_bytes() == first
    assert len(first) >= 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert settings(database_url=f"sqlite:///{db}").signing_key() == first


def test_short_key_file_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "short.key"
    key_file.write_bytes(b"tiny")
    with pytest.raises(ValueError, match="shorter than 32 bytes"):
        settings(jwt_key_file=key_file).signing_key()


def test_empty_staff_token_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAFF_TOKEN", "")
    assert settings().staff_token is None
    monkeypatch.setenv("STAFF_TOKEN", "abc")
    token = settings().staff_token
    assert token is not None
    assert token.get_secret_value() == "abc"
    assert "abc" not in repr(settings())


def test_every_setting_is_in_the_configuration_table_and_in_env_example() -> None:
    import re
    from pathlib import Path

    from ticketdesk.settings import Settings

    root = Path(__file__).resolve().parents[2]
    names = {name.upper() for name in Settings.model_fields}
    configuration = (root / "docs" / "configuration.md").read_text()
    table = configuration.split("\n## Every setting", 1)[1].split("\n## ", 1)[0]
    documented = {
        name
        for row in table.splitlines()
        if row.startswith("| `")
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])
    }
    example = set(re.findall(r"^# ([A-Z][A-Z0-9_]+)=", (root / ".env.example").read_text(), re.M))
    assert names - documented == set(), "settings missing from the configuration table"
    assert documented - names == set(), "the configuration table names settings that do not exist"
    assert names - example == set(), "settings missing from .env.example"
    assert example - names == set(), ".env.example names settings that do not exist"


def test_a_lease_shorter_than_a_jobs_deadline_is_refused() -> None:
    """Else a second attempt could start while the first call is still open."""
    with pytest.raises(ValidationError, match="job_lease_seconds"):
        settings(job_lease_seconds=60, webhook_timeout=58)
    with pytest.raises(ValidationError, match="job_lease_seconds"):
        settings(job_lease_seconds=12, smtp_timeout=10)
    assert settings(job_lease_seconds=15, webhook_timeout=10, smtp_timeout=10)
    with pytest.raises(ValidationError, match="webhook_pause_max_seconds"):
        settings(webhook_pause_seconds=600, webhook_pause_max_seconds=300)
