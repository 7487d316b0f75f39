"""Field types shared by the request and response schemas of every feature."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, StringConstraints

from ticketdesk.errors import NotFound

MAX_ID = 2**63 - 1


def _storable(value: str) -> str:
    # PostgreSQL refuses NUL in text, and lone surrogates cannot be encoded as UTF-8.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


def normalize_email(value: str) -> str:
    """The form emails are stored in: email-validator's normalization, lower-cased.

    Surrounding spaces go first, everywhere: an address registered with them logs in with
    them too."""
    value = value.strip()
    try:
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return value.lower()  # matches no stored address


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


Storable = AfterValidator(_storable)
"""Text that both PostgreSQL and SQLite store as sent."""
NotBlank = AfterValidator(_not_blank)

# Length constraints come first, so pydantic reports them in characters.
Username = Annotated[str, StringConstraints(min_length=1, max_length=64), Storable, NotBlank]
Password = Annotated[str, StringConstraints(min_length=8, max_length=1024), Storable]
AnyPassword = Annotated[str, StringConstraints(min_length=1, max_length=1024), Storable]
"""A password as typed at login: checked, never stored, so no rules beyond the bounds."""


def _timestamp_text(value: object) -> object:
    # pydantic reads a number, or a string of one, as Unix time; the schema says RFC 3339 text.
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return value
    elif isinstance(value, datetime):
        return value
    raise ValueError("must be an RFC 3339 timestamp, such as 2030-01-01T00:00:00Z")


Timestamp = Annotated[datetime, BeforeValidator(_timestamp_text)]
"""A timestamp as RFC 3339 text, never as Unix time."""


def _as_utc(value: datetime) -> datetime:
    # A timestamp without an offset is taken as UTC, the zone of every timestamp here.
    try:
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp out of range") from None


UtcDatetime = Annotated[Timestamp, AfterValidator(_as_utc)]


class RequestBody(BaseModel):
    """A JSON body: strict about types, silent about fields it does not know."""

    model_config = ConfigDict(strict=True, extra="ignore")


def _existing_id(value: int) -> int:
    # A number no row can have is a missing object, not a malformed request.
    if not 0 < value <= MAX_ID:
        raise NotFound()
    return value


ObjectId = Annotated[int, AfterValidator(_existing_id)]
"""A path id: non-numeric is a 400, a number no row can have is a 404."""
