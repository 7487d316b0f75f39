"""uvicorn as serve runs it: the httptools protocol with the limits it lacks on a request's
head, and a supervisor that notices at once when a worker process dies.

uvicorn bounds headers only in its h11 protocol; under httptools a request line and headers
of any size are buffered and parsed (a header of 128 MiB cost a worker 16 s of CPU), and a
client that never finishes its headers holds the connection for ever. Here a request's head
(its line and headers) may have so many bytes and so many headers, or it gets 431;
it must arrive within so many seconds of its first byte (of the connection, for the first
request), or the connection is closed without an answer. The three are MAX_HEADER_BYTES,
MAX_HEADERS and HEADER_TIMEOUT, read from the environment by each worker process.

uvicorn's supervisor asks each worker every half second whether it is alive, over a pipe,
and waits up to its health-check timeout (WORKER_START_TIMEOUT_S, 30 s) for the answer. It
keeps both ends of each pipe open, so a worker that dies while the supervisor waits on it
(a worker killed while it was too busy to answer, or killed by the OOM killer) goes unseen
until that wait times out: half a minute with one worker fewer. Each worker's handle here
closes the worker's end in the supervisor once the worker has its own copy, so a death ends
the wait at once and a new worker is started. Importing this module (serve does, before
uvicorn starts) makes uvicorn's supervisor use these handles.
"""

from __future__ import annotations

import asyncio
import logging
from functools import cache
from typing import NamedTuple

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import multiprocess

from ticketdesk.settings import Settings

log = logging.getLogger("ticketdesk")

_END_OF_HEAD = b"\r\n\r\n"
_TOO_LARGE = b"request header fields too large"


class Limits(NamedTuple):
    head_bytes: int
    headers: int
    timeout_s: float


@cache
def limits() -> Limits:
    settings = Settings()
    return Limits(settings.max_header_bytes, settings.max_headers, settings.header_timeout)


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a refused request."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._limits = limits()
        self._refused = False
        self._new_head()
        self._start_head_timer()

    def _new_head(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._header_count = 0
        self._tail = b""
        self._head_timer: asyncio.TimerHandle | None = None

    def _start_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self._limits.timeout_s, self._head_too_slow)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._in_head and not self._refused and not self.transport.is_closing():
            log.warning(
                "closed a connection whose request head took over %g s", self._limits.timeout_s
            )
            self._refused = True
            self.transport.close()

    def _refuse(self) -> None:
        self._refused = True
        self._stop_head_timer()
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(_TOO_LARGE)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + _TOO_LARGE
        )
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head:
            if self._head_timer is None:
                self._start_head_timer()
            seen = self._tail + data
            end = seen.find(_END_OF_HEAD)
            head_part = len(data) if end < 0 else end + len(_END_OF_HEAD) - len(self._tail)
            self._head_bytes += head_part
            self._tail = seen[-3:]
            if self._head_bytes > self._limits.head_bytes:
                self._refuse()
                return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if not isinstance(exc.__cause__, _Refused):
                self._invalid()
        except httptools.HttpParserError:
            self._invalid()
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()

    def _invalid(self) -> None:
        msg = "Invalid HTTP request received."
        self.logger.warning(msg)
        self.send_400_response(msg)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._stop_head_timer()
        if self._header_count > self._limits.headers:
            self._refuse()
            raise _Refused
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._new_head()  # a kept-alive connection's next request starts its own head


class WorkerHandle(multiprocess.Process):
    """A worker's handle in uvicorn's supervisor that lets go of the worker's end of their
    health-check pipe once the worker holds its own: its death then reads as the end of
    the pipe, at once, instead of as a health check that times out."""

    def start(self) -> None:
        super().start()  # the worker has its copy of the pipe once this returns
        self.child_conn.close()


multiprocess.Process = WorkerHandle  # type: ignore[misc]
