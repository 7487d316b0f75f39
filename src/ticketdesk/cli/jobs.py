"""`ticketdesk worker` and `ticketdesk jobs`: the delivery jobs (mail, webhook calls) run in
a process of their own, and what the queue holds."""

from __future__ import annotations

import argparse
import asyncio
import signal

from ticketdesk.cli.common import (
    Commands,
    add_command,
    configure_logging,
    load_settings,
    log,
    say_whether_mail_is_on,
)


def add_commands(commands: Commands) -> None:
    add_command(
        commands,
        "worker",
        _worker,
        summary="run the delivery jobs (mail, webhooks) in this process",
        description="Run the jobs that events queue: mail and webhook calls. `serve` runs "
        "them too unless JOBS_IN_SERVER=false; start as many workers as you like, on as "
        "many machines: no job runs twice at once. SIGTERM or SIGINT stops it once the "
        "jobs in hand finish (SHUTDOWN_TIMEOUT at the most).",
    )

    jobs = add_command(
        commands,
        "jobs",
        _jobs,
        summary="list the lanes, paused webhook endpoints, and queued, running, failed and "
        "recent jobs",
        description="How many jobs are in each state and each lane (mail, webhook calls), "
        "the webhook endpoints paused after failing, and the latest jobs of each state.",
    )
    jobs.add_argument("--limit", type=int, default=20, help="jobs listed per state (default 20)")
    jobs.add_argument("--json", action="store_true", help="print JSON")


def _worker(args: argparse.Namespace) -> None:
    """Run the jobs until SIGTERM or SIGINT; the jobs in hand may finish first."""
    from ticketdesk.db import open_database
    from ticketdesk.notifications.runners import start_worker, stop_worker

    settings = load_settings()
    configure_logging(settings)
    say_whether_mail_is_on(settings)
    settings.signing_key()

    async def work() -> None:
        database = await open_database(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        task = start_worker(database, settings)
        log.info("worker started: running jobs")
        try:
            await stop.wait()
        finally:
            await stop_worker(task, settings.shutdown_timeout)
            await database.close(settings.db_connect_timeout)
        log.info("worker stopped")

    asyncio.run(work())


def _jobs(args: argparse.Namespace) -> None:
    import json

    from ticketdesk.admin import in_transaction
    from ticketdesk.overview import report
    from ticketdesk.overview.service import overview

    seen = in_transaction(load_settings(), lambda db: overview(db, limit=args.limit))
    print(json.dumps(report.as_json(seen), indent=2) if args.json else report.text(seen))
