"""Real peers for the delivery engine's tests: an SMTP server, a webhook receiver, and
endpoints that misbehave (never answer, trickle their answer, answer without end).

Both listen on loopback in threads of their own, so they answer while the test's event
loop (or another process) sends to them.
"""

from __future__ import annotations

import asyncio
import email
import json
import re
import select
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from conftest import _free_port


@dataclass
class Mailbox:
    """What the SMTP server received: each mail, parsed, with its envelope recipients."""

    mails: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.mails.append((list(envelope.rcpt_tos), message))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [message for rcpt, message in self.mails if address in rcpt]

    async def wait_for(self, count: int, seconds: float = 10.0) -> list[EmailMessage]:
        """Until `count` mails have come (no more, for a moment), or fail."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.mails) >= count:
                    break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # a mail too many would come now
        with self.lock:
            got = [message for _, message in self.mails]
        assert len(got) == count, [m["Subject"] for m in got]
        return got


@contextmanager
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    """aiosmtpd on a free loopback port: the mailbox and the port."""
    mailbox = Mailbox()
    port = _free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


@dataclass
class Call:
    webhook_id: str
    body: dict[str, Any]
    verified: bool


class WebhookReceiver:
    """An HTTP endpoint that verifies each call with the standardwebhooks library.

    `answer(webhook_id, attempt)` gives the status to answer with (default 204);
    `delay_s` holds each answer back, so a sender can be killed mid-call.
    """

    def __init__(
        self,
        answer: Callable[[str, int], int] | None = None,
        delay_s: float = 0.0,
    ) -> None:
        self.secret: str | None = None
        self.calls: list[Call] = []
        self.attempts: dict[str, int] = {}
        self.lock = threading.Lock()
        self.answer = answer or (lambda _id, _attempt: 204)
        self.delay_s = delay_s
        self.in_flight = 0
        self.most_in_flight = 0  # calls it held at once, at most
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                headers = {key: value for key, value in self.headers.items()}
                receiver._received(self, body, headers)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", _free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _received(
        self, handler: BaseHTTPRequestHandler, body: bytes, headers: dict[str, str]
    ) -> None:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            self._answer(handler, body, headers)
        finally:
            with self.lock:
                self.in_flight -= 1

    def _answer(
        self, handler: BaseHTTPRequestHandler, body: bytes, headers: dict[str, str]
    ) -> None:
        webhook_id = headers.get("webhook-id", "")
        verified = False
        if self.secret is not None:
            try:
                Webhook(self.secret).verify(body, headers)
                verified = True
            except WebhookVerificationError:
                verified = False
        with self.lock:
            attempt = self.attempts.get(webhook_id, 0) + 1
            self.attempts[webhook_id] = attempt
        status = self.answer(webhook_id, attempt)
        if self.delay_s:
            time.sleep(self.delay_s)
        if 200 <= status < 300:
            with self.lock:
                self.calls.append(Call(webhook_id, json.loads(body), verified))
        handler.send_response(status)
        handler.send_header("content-length", "0")
        handler.end_headers()

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    async def wait_for(self, count: int, seconds: float = 15.0) -> list[Call]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.calls) >= count:
                    return list(self.calls)
            await asyncio.sleep(0.05)
        with self.lock:
            raise AssertionError(f"{len(self.calls)} calls of {count} came")


@dataclass
class Connection:
    """One connection a RawPeer took: when it came and went, what it was sent and sent back."""

    opened: float
    path: str = ""
    closed: float | None = None
    sent: int = 0


class RawPeer:
    """A misbehaving HTTP endpoint on loopback, one thread per connection, that records each
    connection. `behave(peer, sock, connection)` writes the answer (or none) after the
    request's head was read; it returns when the peer is done or the client went away.

    `never_answers`, `trickles` and `answers_huge` are the usual behaviours.
    """

    def __init__(self, behave: Callable[[RawPeer, socket.socket, Connection], None]) -> None:
        self.behave = behave
        self.connections: list[Connection] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> RawPeer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.listener.close()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        connection = Connection(opened=time.monotonic())
        with self.lock:
            self.connections.append(connection)
        try:
            received = b""
            while b"\r\n\r\n" not in received:
                data = sock.recv(65536)
                if not data:
                    return
                received += data
            head, _, body = received.partition(b"\r\n\r\n")
            connection.path = head.split(b" ", 2)[1].decode()
            length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            unread = int(length[1]) - len(body) if length else 0
            while unread > 0:  # the request's body, read whole as a server would
                data = sock.recv(min(unread, 65536))
                if not data:
                    return
                unread -= len(data)
            self.behave(self, sock, connection)
        except OSError:
            pass  # the client went away
        finally:
            connection.closed = time.monotonic()
            sock.close()


def _gone(sock: socket.socket, seconds: float) -> bool:
    """Whether the client closed the connection within `seconds` (what it sends is read)."""
    readable, _, _ = select.select([sock], [], [], seconds)
    return bool(readable) and not sock.recv(65536)


def never_answers(peer: RawPeer, sock: socket.socket, connection: Connection) -> None:
    """Reads the request, answers nothing, and waits for the client to give up."""
    while not peer.stopping.is_set():
        if _gone(sock, 0.1):
            return


def trickles(every_s: float) -> Callable[[RawPeer, socket.socket, Connection], None]:
    """Sends its status and headers, then one byte of the body every `every_s` seconds."""

    def behave(peer: RawPeer, sock: socket.socket, connection: Connection) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n")
        while not peer.stopping.is_set():
            if _gone(sock, every_s):
                return
            connection.sent += sock.send(b"x")

    return behave


def answers_huge(size: int) -> Callable[[RawPeer, socket.socket, Connection], None]:
    """Answers 200 with a body of `size` bytes, streamed; `sent` counts what got out."""

    def behave(peer: RawPeer, sock: socket.socket, connection: Connection) -> None:
        sock.sendall(f"HTTP/1.1 200 OK\r\ncontent-length: {size}\r\n\r\n".encode())
        chunk = memoryview(b"x" * (1024 * 1024))
        while connection.sent < size and not peer.stopping.is_set():
            connection.sent += sock.send(chunk[: size - connection.sent])

    return behave


def sending_to(port: int, **overrides: Any) -> dict[str, Any]:
    """Settings of an app whose worker runs its jobs at once and mails the test's server."""
    return {
        "jobs_in_server": True,
        "job_poll_seconds": 0.1,
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_tls": "none",
        **overrides,
    }


@pytest.fixture
async def mailbox() -> AsyncIterator[tuple[Mailbox, int]]:
    """A test's own SMTP server: what it received, and its port."""
    with smtp_server() as server:
        yield server
