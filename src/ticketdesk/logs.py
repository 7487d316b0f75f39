"""JSON logs: the formatter, the one logging configuration, request lines and security events.

Nothing a client sent is logged but its method, path (no query string), request id and
address: no body, no header values, no exception messages (they may quote the input).
"""

from __future__ import annotations

import logging
import re
import sys
import time
import traceback
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonEncoder
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter
from starlette.types import Scope

_REQUEST = "ticketdesk.request"
REQUEST_LOG = logging.getLogger(_REQUEST)
SECURITY_LOG = logging.getLogger("ticketdesk.security")

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
"""The id of the request being handled, added to every line logged while handling it."""

LOG_FIELDS = "ticketdesk.log"
"""The scope key of the request line's fields, which `current_user` adds the user id to."""

# What a proxy or a client may pass as X-Request-ID: a UUID, a hex or base64 id, a trace id.
_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:+/=-]{1,128}")

_EVENT_BY_STATUS = {401: "access_denied", 403: "access_denied", 429: "rate_limited"}
LOGIN_PATHS = frozenset({"/login", "/login/"})

# uvicorn's startup line carries an ANSI-coloured copy of its message.
_NOT_FIELDS = [*RESERVED_ATTRS, "color_message", "taskName"]

# Loggers at LOG_LEVEL; everything else (root) logs warnings and errors only.
_SERVICE_LOGGERS = ("ticketdesk", "uvicorn", "uvicorn.error", "uvicorn.access", "alembic")
_TRACE = 5  # uvicorn's level below DEBUG


def _encoder_call(encoder: JsonEncoder) -> Callable[..., str]:
    def dumps(data: Any, **_options: Any) -> str:
        return encoder.encode(data)

    return dumps


# One encoder for every line: `json.dumps` with a `cls` builds a new one each time.
_ENCODER_CALL = _encoder_call(JsonEncoder())


class JsonFormatter(_JsonFormatter):
    """python-json-logger's formatter: `time` (UTC), `level`, `logger`, `message`, then the
    record's extra fields, and the request id when the line is logged during a request.

    A traceback keeps its stack frames and exception types, never the exception messages.
    """

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            reserved_attrs=_NOT_FIELDS,
            json_serializer=_ENCODER_CALL,
        )
        self._second = -1
        self._second_text = ""

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        """The base class's fields, found without its generic renaming: this runs per request."""
        log_data["time"] = record.asctime
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data["message"] = record.message
        log_data.update(message_dict)
        skip = self._skip_fields
        for key, value in record.__dict__.items():
            if key not in skip:
                log_data[key] = value
        if "request_id" not in log_data:
            request_id = REQUEST_ID.get()
            if request_id is not None:
                log_data["request_id"] = request_id

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """ISO 8601 in UTC, to the millisecond: 2026-11-26T18:45:31.042Z."""
        second = int(record.created)
        if second != self._second:  # formatted once a second, not once a line
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{int(record.msecs):03d}Z"

    def formatException(self, ei: Any) -> str:
        exc = ei[1]
        if exc is None:
            return ""
        lines: list[str] = []
        _describe(exc, lines, set())
        return "".join(lines).rstrip("\n")


def _describe(exc: BaseException, lines: list[str], seen: set[int]) -> None:
    """A traceback like Python's, with `module.Type` where the message would be."""
    seen.add(id(exc))
    cause = exc.__cause__
    context = None if exc.__suppress_context__ else exc.__context__
    if cause is not None and id(cause) not in seen:
        _describe(cause, lines, seen)
        lines.append("\nThe above exception was the direct cause of the following exception:\n\n")
    elif context is not None and id(context) not in seen:
        _describe(context, lines, seen)
        lines.append("\nDuring handling of the above exception, another exception occurred:\n\n")
    lines.append("Traceback (most recent call last):\n")
    lines.extend(traceback.format_tb(exc.__traceback__))
    kind = type(exc)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    lines.append(f"{name} (message not logged)\n")
    if isinstance(exc, BaseExceptionGroup):
        for number, inner in enumerate(exc.exceptions, 1):
            inner_lines: list[str] = []
            _describe(inner, inner_lines, seen)
            lines.append(f"+---- {number} ----\n")
            lines.extend(f"| {line}" for line in "".join(inner_lines).splitlines(keepends=True))


class ConsoleFormatter(logging.Formatter):
    """One line a person reads: local time, level, message, then the extra fields as
    `key=value` (`LOG_FORMAT=console`, or `auto` on a terminal)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S")
        self._skip = set(_NOT_FIELDS) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = {k: v for k, v in record.__dict__.items() if k not in self._skip}
        request_id = REQUEST_ID.get()
        if request_id is not None and "request_id" not in fields:
            fields["request_id"] = request_id
        if not fields:
            return line
        head, newline, rest = line.partition("\n")  # a traceback stays below the line
        extra = " ".join(f"{key}={value}" for key, value in fields.items())
        return f"{head}  {extra}{newline}{rest}"


def log_format(wanted: str, stream: Any = None) -> str:
    """`json` or `console`: `auto` is console on a terminal, JSON otherwise."""
    if wanted != "auto":
        return wanted
    stream = stream if stream is not None else sys.stderr
    return "console" if getattr(stream, "isatty", lambda: False)() else "json"


def logging_config(
    level: str, stream: Any = "ext://sys.stderr", fmt: str = "json"
) -> dict[str, Any]:
    """The one configuration, for `logging.config.dictConfig` and uvicorn's `log_config`.

    Every line, the service's and uvicorn's alike, goes to stderr, as JSON (`fmt="json"`)
    or for people (`"console"`). uvicorn's access log is left without a handler:
    `RequestEdge` writes a better line for each request.
    """
    service_level: int | str = _TRACE if level.lower() == "trace" else level.upper()
    formatter = (
        "ticketdesk.logs.JsonFormatter" if fmt == "json" else "ticketdesk.logs.ConsoleFormatter"
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": formatter}},
        "handlers": {
            "json": {"class": "logging.StreamHandler", "formatter": "json", "stream": stream}
        },
        "root": {"level": "WARNING", "handlers": ["json"]},
        "loggers": {
            name: {"level": service_level, "handlers": [], "propagate": name != "uvicorn.access"}
            for name in _SERVICE_LOGGERS
        },
    }


def request_id(header: bytes | None) -> bytes | None:
    """The client's X-Request-ID when it is short and made of safe characters, else None."""
    if header is not None and _SANE_REQUEST_ID.fullmatch(header):
        return header
    return None


def request_fields(request_id: str, method: str, path: str, client: str | None) -> dict[str, Any]:
    """The start of a request's line; `log_request` adds the status and the duration."""
    return {
        "message": "request",
        "request_id": request_id,
        "method": method,
        "path": path,
        "client": client,
    }


def record_user(scope: Scope, user_id: int) -> None:
    """Note the authenticated user in the request's log line."""
    fields = scope.get(LOG_FIELDS)
    if fields is not None:
        fields["user_id"] = user_id


def log_request(fields: dict[str, Any], event: str | None = None) -> None:
    """The request's line, and a security event when its answer was one (or `event` says so).

    The fields are the message itself: python-json-logger writes a dict message as the
    line's fields, which costs less than passing them as `extra`. The record is made
    directly: `info()` would first walk the stack for a source line no one reads.
    """
    if REQUEST_LOG.isEnabledFor(logging.INFO):
        REQUEST_LOG.handle(REQUEST_LOG.makeRecord(_REQUEST, logging.INFO, "", 0, fields, (), None))
    if event is None:
        status = fields["status"]
        if status in (400, 404) and fields["method"] == "POST" and fields["path"] in LOGIN_PATHS:
            event = "login_failed"
        else:
            event = _EVENT_BY_STATUS.get(status)
    if event is not None:
        SECURITY_LOG.warning({**fields, "message": event, "event": event})
