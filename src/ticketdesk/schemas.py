"""Field types shared by the request and response schemas of every feature."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Annotated

from email_validator import validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

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


TRIAL_NAMES = frozenset({"test", "example", "local", "localhost"})
"""Top-level names that never carry mail on the internet: `test` and `example` are reserved
for testing and documentation (RFC 2606), `localhost` for this machine (RFC 6761) and
`local` for the local network (RFC 6762). A desk takes addresses under those its
TRIAL_DOMAINS setting names; `invalid`, `onion` and `arpa` never."""
SPECIAL_USE = (
    "The part after the @-sign is a special-use or reserved name that cannot be used with email."
)
_STAND_IN = "example"
"""A trial name email-validator checks as any other: an accepted trial name is checked as it."""


def email_address(value: str, *, trial_domains: Collection[str] = TRIAL_NAMES) -> str:
    """`value` as an address is stored: email-validator's normalization, lower-cased; else
    ValueError, in email-validator's plain words.

    Every address a person or a mail gives is checked here, with the desk's TRIAL_DOMAINS
    where an account is made; the request bodies let every trial name through (their
    shape is all they check), so an address is refused in one place, for one reason."""
    value = value.strip()
    top = value.rpartition("@")[2].rpartition(".")[2]
    trial = top.lower() if top.lower() in TRIAL_NAMES else None
    if trial is not None and trial not in trial_domains:
        raise ValueError(SPECIAL_USE)
    checked = value if trial is None else value[: len(value) - len(top)] + _STAND_IN
    address = validate_email(checked, check_deliverability=False).normalized.lower()
    if trial is not None:
        return address[: len(address) - len(_STAND_IN)] + trial
    if address.rpartition(".")[2] in TRIAL_NAMES - set(trial_domains):
        raise ValueError(SPECIAL_USE)  # spelled otherwise (full-width letters, say) at first
    return address


def normalize_email(value: str) -> str:
    """The form emails are stored in: email-validator's normalization, lower-cased.

    Surrounding spaces go first, everywhere: an address registered with them logs in with
    them too."""
    try:
        return email_address(value)
    except ValueError:  # email-validator's errors are ValueErrors too
        return value.strip().lower()  # matches no stored address


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _shaped_as_address(value: str) -> str:
    try:
        return email_address(value)
    except ValueError as exc:
        reason = str(exc)
        raise PydanticCustomError(
            "value_error", "value is not a valid email address: {reason}", {"reason": reason}
        ) from None


EmailAddress = Annotated[
    str,
    StringConstraints(max_length=320),
    AfterValidator(_shaped_as_address),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": 320}),
]
"""An address in a request: its shape checked, and normalized (see `email_address`)."""

Storable = AfterValidator(_storable)
"""Text that both PostgreSQL and SQLite store as sent."""
NotBlank = AfterValidator(_not_blank)

# Length constraints come first, so pydantic reports them in characters.
Username = Annotated[str, StringConstraints(min_length=1, max_length=64), Storable, NotBlank]
Password = Annotated[str, StringConstraints(min_length=8, max_length=1024), Storable]
AnyPassword = Annotated[str, StringConstraints(min_length=1, max_length=1024), Storable]
"""A password as typed at login: checked, never stored, so no rules beyond the bounds."""
MessageText = Annotated[str, StringConstraints(min_length=1), Storable, NotBlank]
"""A message's text: a ticket's first message, a reply, a note."""


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
