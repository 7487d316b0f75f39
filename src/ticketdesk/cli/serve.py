"""`ticketdesk serve`: the HTTP server, in uvicorn's worker processes, with the start-up
work done once in the parent: migrations, the signing key, the metrics directory."""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType

from sqlalchemy.engine import make_url

from ticketdesk import migrate
from ticketdesk.cli.common import (
    Commands,
    add_command,
    configure_logging,
    load_settings,
    log,
    say_whether_mail_is_on,
)
from ticketdesk.settings import Settings

WORKER_START_TIMEOUT_S = 30
METRICS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"


def add_commands(commands: Commands) -> None:
    serve = add_command(
        commands,
        "serve",
        _serve,
        summary="run the HTTP server",
        description="Run the HTTP server: apply the database migrations (unless "
        "--no-migrate), then answer on HOST:PORT with WORKERS processes. Configured by "
        "environment variables or a .env file. SIGTERM stops it gracefully: it refuses new "
        "connections, lets the requests in flight finish (SHUTDOWN_TIMEOUT at the most) "
        "and exits 0.",
        epilog="exit status:\n"
        "  0   stopped by SIGTERM\n"
        "  1   it could not start (an invalid configuration, say): stderr's last lines say why",
    )
    serve.add_argument("--host", help="address to listen on (default: SERVER_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: SERVER_PORT, 8089)")
    serve.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="worker processes, each with its own pool of DB_POOL_SIZE connections "
        "(default: the number of CPUs)",
    )
    serve.add_argument(
        "--no-migrate",
        action="store_true",
        help="do not apply database migrations on start",
    )


def _serve(args: argparse.Namespace) -> None:
    _metrics_directory()  # before anything imports prometheus_client
    import uvicorn

    from ticketdesk.web.server import BoundedHttpToolsProtocol

    settings = load_settings()
    log_config = configure_logging(settings)  # the lines before uvicorn starts are JSON too
    host = args.host or settings.server_host
    port = args.port or settings.server_port
    _say_what_runs(settings, host, port, args.workers)
    if not args.no_migrate:
        migrate.upgrade(settings.database)
    try:
        settings.signing_key()  # generated here once, not by each worker
    except ValueError as exc:
        sys.exit(f"ticketdesk: {exc}")
    if settings.jwt_key is None:
        log.info("JWT_KEY is not set: tokens are signed with the key in %s", settings.key_file())
    signal.signal(signal.SIGTERM, _stopped)
    uvicorn.run(
        "ticketdesk.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=args.workers,
        # A worker must answer uvicorn's first ping within this (else it is killed, "Child
        # process died"): importing and building the app takes 2 s here, 5.5 s with the
        # cores overloaded three times over.
        timeout_worker_healthcheck=WORKER_START_TIMEOUT_S,
        loop="uvloop",
        http=BoundedHttpToolsProtocol,  # httptools, with limits on a request's head
        log_level=settings.log_level,
        log_config=log_config,
        access_log=False,  # RequestEdge logs each request
        server_header=False,
        # Whose X-Forwarded-For to believe for the client's address (rate limits, logs).
        forwarded_allow_ips=settings.forwarded_allow_ips,
        # In-flight requests get this long after SIGTERM; uvicorn counts whole seconds.
        timeout_graceful_shutdown=math.ceil(settings.shutdown_timeout),
    )


def _metrics_directory() -> None:
    """Where the worker processes keep their counts for /metrics (PROMETHEUS_MULTIPROC_DIR,
    or a new temporary directory), emptied of an earlier run's: set before any starts."""
    # Not imported from ticketdesk.metrics: prometheus_client reads the variable on import.
    given = os.environ.get(METRICS_DIRECTORY)
    if given:
        for stale in Path(given).glob("*.db"):
            stale.unlink()
    else:
        os.environ[METRICS_DIRECTORY] = tempfile.mkdtemp(prefix="ticketdesk-metrics-")


def _say_what_runs(settings: Settings, host: str, port: int, workers: int) -> None:
    """The first lines: what runs, on what, and where to open it."""
    from ticketdesk import __version__

    shown_host = f"[{host}]" if ":" in host else host
    log.info("ticketdesk %s, %d worker process(es)", __version__, workers)
    log.info("database: %s", settings.database.render_as_string(hide_password=True))
    if settings.redis_url:
        redis = make_url(settings.redis_url).render_as_string(hide_password=True)
        log.info("rate limits: counted in Redis at %s", redis)
    else:
        log.info("rate limits: counted in each process's memory (REDIS_URL is not set)")
    say_whether_mail_is_on(settings)
    log.info("listening on http://%s:%d: open it in a browser", shown_host, port)
    if settings.public_url:
        log.info("people reach it at %s (PUBLIC_URL)", settings.base_url)


def _stopped(signum: int, frame: FrameType | None) -> None:
    """SIGTERM, raised again by uvicorn once its graceful shutdown is done: a clean exit.

    uvicorn hands the signal on to the handler it found, and the default one would end
    the process by the signal, as if the stop had not been orderly.
    """
    sys.exit(0)
