"""Real peers for the delivery engine's tests: an SMTP server and a webhook receiver.

Both listen on loopback in threads of their own, so they answer while the test's event
loop (or another process) sends to them.
"""

from __future__ import annotations

import asyncio
import email
import json
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
