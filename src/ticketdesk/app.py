"""The application factory: settings in, ASGI app out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from types import FrameType
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp

from ticketdesk import __version__
from ticketdesk.attachments.router import router as attachments_router
from ticketdesk.attachments.service import sweep
from ticketdesk.attachments.storage import LocalStorage
from ticketdesk.auth.router import router as auth_router
from ticketdesk.auth.security import dummy_hash
from ticketdesk.auth.tokens import TokenChecks
from ticketdesk.db import Database, open_database
from ticketdesk.events.router import router as events_router
from ticketdesk.events.stream import NewEvents
from ticketdesk.messages.router import router as messages_router
from ticketdesk.metrics import process_ended, record_memory
from ticketdesk.notifications.runners import start_worker, stop_worker
from ticketdesk.pages.assets import Assets
from ticketdesk.pages.console import router as console_router
from ticketdesk.pages.password_reset import router as reset_pages_router
from ticketdesk.pages.people import router as people_pages_router
from ticketdesk.pages.report import router as report_page_router
from ticketdesk.pages.router import last as last_pages_router
from ticketdesk.pages.router import router as pages_router
from ticketdesk.pages.signin import router as signin_pages_router
from ticketdesk.pages.staff_keys import router as staff_key_pages_router
from ticketdesk.pages.tickets import router as ticket_pages_router
from ticketdesk.password_reset.router import router as password_reset_router
from ticketdesk.reports.router import router as reports_router
from ticketdesk.settings import Settings
from ticketdesk.staff_keys.router import router as staff_keys_router
from ticketdesk.system import router as system_router
from ticketdesk.tags.router import router as tags_router
from ticketdesk.tickets.router import router as tickets_router
from ticketdesk.users.router import router as users_router
from ticketdesk.web.dispatch import index_routes
from ticketdesk.web.errors import install_error_handlers
from ticketdesk.web.headers import BrowserPolicy, add_cors, docs_csp
from ticketdesk.web.middleware import RequestEdge
from ticketdesk.web.openapi import customize_openapi
from ticketdesk.web.ratelimits import RateLimiter
from ticketdesk.webhooks.router import calls as webhook_calls
from ticketdesk.webhooks.router import router as webhooks_router

log = logging.getLogger("ticketdesk")

DESCRIPTION = """
A customer-support ticket service. Authenticate with the JWT from `POST /login`,
sent back as the cookie `token` or as `Authorization: Bearer <token>`.
Errors are JSON `{"detail": ...}`; validation errors list the offending fields.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.database = await open_database(settings)
        app.state.token_checks = TokenChecks()
        app.state.token_checks.listen(app.state.database)
        app.state.new_events = NewEvents(app.state.database)
        app.state.storage = LocalStorage(settings.data_dir / "attachments")
        sweeper = asyncio.get_running_loop().create_task(
            _sweep_attachments(app.state.database, app.state.storage), name="attachment sweep"
        )
        app.state.rate_limiter = RateLimiter(settings)
        worker = None
        if settings.jobs_in_server:
            worker = start_worker(app.state.database, settings)
        await anyio.to_thread.run_sync(dummy_hash)  # computed once, before the first login
        memory = asyncio.get_running_loop().create_task(_record_memory(), name="memory gauge")
        try:
            with _when_told_to_stop(app.state.new_events.close):
                yield
        finally:
            app.state.new_events.close()
            memory.cancel()
            sweeper.cancel()
            if worker is not None:
                await stop_worker(worker, settings.shutdown_timeout)
            await app.state.rate_limiter.close()
            # Runs once in-flight requests are done, or SHUTDOWN_TIMEOUT cut them short.
            await app.state.database.close(settings.db_connect_timeout)
            process_ended()

    # Swagger UI and ReDoc served from the package: self-hosted docs must not need a CDN.
    app = FastAPIOffline(
        title="ticketdesk",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        redirect_slashes=False,
        # No OpenTelemetry here: left on, FastAPI asks the OTel providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.assets = Assets()
    app.state.signing_key = settings.signing_key()
    install_error_handlers(app)
    # The routes go into the app's own list: an included router is one more layer of
    # matching on every request (FastAPI keeps it nested), and each router here has its
    # prefix already. A request tries only the routes of its path's first segment
    # (web/dispatch.py), in this order.
    routers = (
        pages_router,
        signin_pages_router,
        ticket_pages_router,
        people_pages_router,
        staff_key_pages_router,
        report_page_router,
        console_router,
        reset_pages_router,
        tickets_router,
        messages_router,
        tags_router,
        events_router,
        attachments_router,
        users_router,
        auth_router,
        password_reset_router,
        staff_keys_router,
        webhooks_router,
        reports_router,
        system_router,
        last_pages_router,
    )
    app.webhooks.routes.extend(webhook_calls.routes)
    docs_routes = list(app.router.routes)
    app.router.routes[:] = [route for router in routers for route in router.routes]
    app.router.routes.extend(docs_routes)
    index_routes(app.router)
    # Routes by path and method, for the Allow header of a 405 (the docs pages included).
    app.state.api_routes = [route for route in app.routes if hasattr(route, "methods")]
    add_cors(app, settings)
    _wrap_in_request_edge(app, BrowserPolicy(settings, docs_csp(app)), settings)
    customize_openapi(app)
    return app


_UPLOAD_PATH = re.compile(r"/tickets/[0-9]+/messages/?")
FORM_OVERHEAD_BYTES = 1024 * 1024
"""Room in a multipart body for its text and the parts' headers, beside the files."""


def _wrap_in_request_edge(app: FastAPI, policy: BrowserPolicy, settings: Settings) -> None:
    """`RequestEdge` outside the whole stack, Starlette's error middleware included.

    `add_middleware` would place it inside that, where a 500 passes it by.
    """
    build_stack = app.build_middleware_stack
    upload_bytes = settings.message_attachments_max_bytes + FORM_OVERHEAD_BYTES

    def forms(method: str, path: str, multipart: bool) -> int | None:
        """The browser pages' forms, and the API's messages with files (multipart only)."""
        if method != "POST":
            return None
        if path.startswith("/app/") or (multipart and _UPLOAD_PATH.fullmatch(path)):
            return upload_bytes
        return None

    def build_middleware_stack() -> ASGIApp:
        return RequestEdge(build_stack(), policy, settings.max_body_bytes, forms)

    app.build_middleware_stack = build_middleware_stack  # type: ignore[method-assign]


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
SignalHandler = Callable[[int, FrameType | None], Any]


@contextmanager
def _when_told_to_stop(callback: Callable[[], None]) -> Iterator[None]:
    """Call `callback` in the event loop as soon as the server is told to stop.

    The server (uvicorn) handles SIGTERM and SIGINT, then waits for the responses in flight
    before it tells the app anything; an event stream never ends by itself, so it would
    hold the stop for SHUTDOWN_TIMEOUT and be cancelled. The server's handlers are chained,
    not replaced, and put back when the app stops. Nothing is chained outside the main
    thread, nor to a signal no Python handler takes (SIGTERM, in a test's own process).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    chained: dict[signal.Signals, tuple[SignalHandler, SignalHandler]] = {}
    for number in STOP_SIGNALS:
        previous = signal.getsignal(number)
        if callable(previous):
            chained[number] = (_then(loop, callback, previous), previous)
            signal.signal(number, chained[number][0])
    try:
        yield
    finally:
        for number, (ours, previous) in chained.items():
            if signal.getsignal(number) is ours:
                signal.signal(number, previous)


def _then(
    loop: asyncio.AbstractEventLoop, callback: Callable[[], None], handler: SignalHandler
) -> SignalHandler:
    """A signal handler that schedules `callback`, then runs `handler`."""

    def told(signum: int, frame: FrameType | None) -> Any:
        with contextlib.suppress(RuntimeError):  # the loop has closed: nothing to end
            loop.call_soon_threadsafe(callback)
        return handler(signum, frame)

    return told


MEMORY_EVERY_S = 10.0


async def _record_memory() -> None:
    """Each process keeps its own memory figure fresh: a scrape reaches one process."""
    while True:
        record_memory()
        await asyncio.sleep(MEMORY_EVERY_S)


SWEEP_EVERY_S = 3600.0


async def _sweep_attachments(database: Database, storage: LocalStorage) -> None:
    """Now and then, the stored contents no attachment refers to (a failed upload's) go."""
    while True:
        await asyncio.sleep(SWEEP_EVERY_S)
        try:
            await sweep(database, storage)
        except Exception:
            log.exception("sweeping unused attachment contents failed; trying again later")
