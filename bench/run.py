"""The ticketdesk benchmark: data set, load runs with wrk, pgbench ceilings, scale curve.

    .venv/bin/python bench/run.py                      # 1M tickets, every scenario, 15 s runs
    .venv/bin/python bench/run.py --skip-generate --only ticket_read,login --duration 5
    .venv/bin/python bench/run.py --compare-url http://127.0.0.1:8300 --compare-name go \
        --compare-pid 1234 --compare-staff-token KEY      # side by side with another service
    .venv/bin/python bench/run.py --peer django-helpdesk --duration 10    # beside django-helpdesk

See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import django_helpdesk
import pgbench_ceiling
from capture_sql import capture_and_restore, compare_scripts
from common import PGBENCH_DIR, REPO_DIR, RESULTS_DIR, log
from compare import TICKETDESK, Other, compare, select_compared
from dataset import Targets, find_targets, restore, watermark
from generate import Sizes, dataset_info, generate
from measure import (
    Plan,
    hash_ceiling,
    high_concurrency,
    login_all,
    login_flood,
    measure_scenario,
    median,
)
from report import print_report, save
from scale import scale_curve
from scenarios import Scenario, select
from server import Server, ServerConfig

SCALE_PORT = 8203
CAPTURE_DIR = RESULTS_DIR / "pgbench"  # this run's scripts; bench/pgbench/ is the reference


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    add = parser.add_argument
    add("--only", help="comma-separated scenarios (names or letters a-i); default all")
    add(
        "--repeat",
        type=int,
        help="measured runs per scenario, medians reported (default 1; comparison: 3 rounds)",
    )
    add("--workers", type=int, default=2, help="server worker processes (default 2)")
    add("--connections", type=int, default=32, help="wrk and pgbench connections (default 32)")
    add("--threads", type=int, default=2, help="wrk threads (default 2)")
    add("--duration", type=int, default=15, help="seconds per measured run (default 15)")
    add("--warmup", type=int, default=5, help="seconds of warm-up per scenario (default 5)")
    add("--timeout", type=int, default=10, help="wrk's per-request timeout, seconds")
    add("--pool-size", type=int, help="DB_POOL_SIZE per worker (default: the service's)")
    add("--port", type=int, default=8201, help="server port (8201-8209)")
    add("--skip-generate", action="store_true", help="use the data set already there")
    add("--tickets", type=int, default=1_000_000, help="tickets to generate (default 1M)")
    add("--users", type=int, help="users to generate (default tickets / 10)")
    add("--messages", type=int, help="messages to generate (default tickets * 4)")
    add("--jobs", type=int, default=2, help="generator connections (default 2)")
    add("--no-capture", action="store_true", help="reuse bench/pgbench/*.sql as they are")
    add("--no-pgbench", action="store_true", help="skip the pgbench ceilings")
    add("--high-connections", type=int, default=256, help="read scenarios again at this (0: off)")
    add("--flood-connections", type=int, default=128, help="login flood connections (0: off)")
    add("--probe-connections", type=int, default=8, help="ticket reads during the flood")
    add("--scale-curve", action="store_true", help="also measure 10k, 100k and 1M tickets")
    add("--scale-only", action="store_true", help="only the scale curve")
    add("--scale-sizes", default="10000,100000,1000000", help="ticket counts of the curve")
    add("--scale-connections", type=int, default=4, help="connections of the curve")
    compare = parser.add_argument_group(
        "comparison with another service of the same API (only the load runs, ABBA rounds)"
    )
    add = compare.add_argument
    add("--compare-url", help="the other service's base URL, e.g. http://127.0.0.1:8300")
    add("--compare-name", default="other", help="its name in the tables (default: other)")
    add("--compare-pid", type=int, help="its process id, for its CPU per request (optional)")
    add("--compare-staff-token", help="its key for registering staff (Authorization: Bearer)")
    add("--compare-probe", default="/time", help="a cheap path to wait on between runs (/time)")
    add("--compare-reset", help="a shell command that empties its database first (optional)")
    peer = parser.add_argument_group(
        "beside another help desk, on equivalent pages (only the load runs, ABBA rounds, "
        "ports 8206 and 8207; see bench/README.md)"
    )
    add = peer.add_argument
    add("--peer", choices=[django_helpdesk.NAME], help="the other help desk")
    add(
        "--peer-dir",
        type=Path,
        default=django_helpdesk.DEFAULT_DIR,
        help=f"its virtual environment and project (default {django_helpdesk.DEFAULT_DIR})",
    )
    add("--peer-clean", action="store_true", help="remove --peer-dir at the end")
    add("--peer-worker-class", default="sync", help="its gunicorn worker class (default sync)")
    args = parser.parse_args()
    if args.peer:
        if args.compare_url or args.scale_curve or args.scale_only:
            parser.error("--peer does not combine with --compare-url or the scale curve")
        if args.only:
            unknown = set(args.only.split(",")) - set(django_helpdesk.SCENARIO_NAMES)
            if unknown:
                parser.error(f"--peer runs {', '.join(django_helpdesk.SCENARIO_NAMES)}")
    if args.compare_url:
        if not args.compare_staff_token:
            parser.error("--compare-url needs --compare-staff-token")
        if args.compare_name == TICKETDESK:
            parser.error(f"--compare-name must not be {TICKETDESK!r}")
        if args.scale_curve or args.scale_only:
            parser.error("--compare-url does not combine with the scale curve")
    if args.repeat is None:
        args.repeat = 3 if args.compare_url or args.peer else 1
    return args


def plan_of(args: argparse.Namespace) -> Plan:
    return Plan(
        connections=args.connections,
        threads=args.threads,
        duration_s=args.duration,
        warmup_s=args.warmup,
        timeout_s=args.timeout,
        repeat=max(1, args.repeat),
    )


def server_config(args: argparse.Namespace, port: int | None = None) -> ServerConfig:
    return ServerConfig(port=port or args.port, workers=args.workers, pool_size=args.pool_size)


def git_state() -> dict[str, str]:
    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=REPO_DIR, capture_output=True, text=True)
        return done.stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "changed": git("status", "--porcelain", "src")}


def tool_version(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True)
    return (done.stdout or done.stderr).splitlines()[0] if (done.stdout or done.stderr) else ""


def environment(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "args": vars(args),
        "git": git_state(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "wrk": tool_version(["wrk", "--version"]),
        "pgbench": tool_version(["pgbench", "--version"]),
    }


def prepare_data(args: argparse.Namespace) -> dict[str, Any]:
    if args.skip_generate:
        info = asyncio.run(dataset_info()) or {}
        return {"generated": False, **info}
    sizes = Sizes.scaled(args.tickets, args.users, args.messages)
    return {"generated": True, **asyncio.run(generate(sizes, args.jobs))}


def serve_phase(
    args: argparse.Namespace, scenarios: list[Scenario], targets: Targets
) -> dict[str, Any]:
    """Every load run against one server, and its memory afterwards."""
    plan = plan_of(args)
    found: dict[str, Any] = {"scenarios": {}}
    with Server(server_config(args)) as server:
        tokens = login_all(server)
        found["memory_idle"] = server.memory()
        for scenario in scenarios:
            measured = measure_scenario(server, scenario, targets, tokens, plan)
            found["scenarios"][scenario.name] = {"letter": scenario.letter, **measured}
        reads = [s for s in scenarios if s.reads and s.ceiling]
        if args.high_connections and reads:
            found["high_concurrency"] = high_concurrency(
                server, reads, targets, tokens, plan, args.high_connections
            )
        names = {s.name for s in scenarios}
        if args.flood_connections and {"ticket_read", "login"} <= names:
            found["login_flood"] = login_flood(
                server, targets, tokens, plan, args.probe_connections, args.flood_connections
            )
        found["memory"] = server.memory()
    return found


def pgbench_runs(
    scenario: Scenario, targets: Targets, args: argparse.Namespace, scripts: Path
) -> list[Any]:
    runs = []
    script = pgbench_ceiling.script_path(scenario.name, scripts)
    for _ in range(max(1, args.repeat)):
        mark = asyncio.run(watermark(targets.post_ticket)) if scenario.writes else None
        try:
            runs.append(pgbench_ceiling.run(script, args.connections, args.duration))
        finally:
            if mark is not None:
                asyncio.run(restore(mark))
    return runs


def pgbench_phase(
    args: argparse.Namespace, scenarios: list[Scenario], targets: Targets, found: dict[str, Any]
) -> None:
    """pgbench per scenario, with the server stopped; adds the ceiling and the ratio."""
    scripts = PGBENCH_DIR if args.no_capture else CAPTURE_DIR
    for scenario in (s for s in scenarios if s.has_pgbench):
        runs = pgbench_runs(scenario, targets, args, scripts)
        tps = median([r.tps for r in runs])
        log(f"pgbench {scenario.name}: {tps:.1f} tps")
        result = found["scenarios"][scenario.name]
        result["pgbench"] = {
            "median_tps": tps,
            "runs": [asdict(r) for r in runs],
            "script": pgbench_ceiling.script_path(scenario.name, scripts).read_text(),
        }
        result["ratio"] = round(result["median"]["rps"] / tps, 3) if tps else None


def hash_ceiling_phase(found: dict[str, Any], repeat: int) -> None:
    """Login's ceiling: cores ÷ the time of one argon2id verification, with the server stopped."""
    result = found["scenarios"].get("login")
    if result is None:
        return
    ceiling = hash_ceiling(max(3, repeat))
    log(
        f"argon2id verify: {ceiling['median_ms']:.1f} ms (median of {len(ceiling['runs_ms'])}); "
        f"ceiling {ceiling['logins_per_s']:.1f} logins/s on {ceiling['cores']} cores; "
        f"one thread per core verifies {ceiling['parallel_per_s']:.1f}/s"
    )
    result["hash_ceiling"] = ceiling
    result["ratio"] = round(result["median"]["rps"] / ceiling["logins_per_s"], 3)


def check_reference_scripts() -> dict[str, str]:
    """Does bench/pgbench/ still hold the SQL the service sends? Warn when it does not."""
    verdicts = compare_scripts(CAPTURE_DIR, PGBENCH_DIR)
    stale = [name for name, verdict in verdicts.items() if verdict != "current"]
    if stale:
        log(
            f"note: bench/pgbench/ differs from the service's SQL for {', '.join(stale)}; "
            "this run uses its fresh capture (bench/capture_sql.py updates the reference)"
        )
    return verdicts


def main_phases(args: argparse.Namespace, scenarios: list[Scenario]) -> dict[str, Any]:
    """Data set, SQL capture, load runs, pgbench ceilings."""
    results: dict[str, Any] = {"dataset": prepare_data(args)}
    if args.no_capture:
        targets = asyncio.run(find_targets())
    else:
        targets = capture_and_restore(scenarios, CAPTURE_DIR)
        results["pgbench_scripts"] = check_reference_scripts()
    results["targets"] = asdict(targets)
    results |= serve_phase(args, scenarios, targets)
    if not args.no_pgbench:
        pgbench_phase(args, scenarios, targets, results)
    hash_ceiling_phase(results, args.repeat)
    return results


def compare_phase(args: argparse.Namespace) -> dict[str, Any]:
    other = Other(
        name=args.compare_name,
        url=args.compare_url,
        pid=args.compare_pid,
        staff_token=args.compare_staff_token,
        probe=args.compare_probe,
        reset=args.compare_reset,
    )
    return compare(other, select_compared(args.only), plan_of(args), server_config(args))


def peer_phase(args: argparse.Namespace) -> dict[str, Any]:
    peer = django_helpdesk.Peer(args.peer_dir)
    only = args.only.split(",") if args.only else None
    with django_helpdesk.removed_afterwards(peer, args.peer_clean):
        return django_helpdesk.compare(
            peer, plan_of(args), args.workers, args.pool_size, only, args.peer_worker_class
        )


def main() -> None:
    args = parse_args()
    started = datetime.now(UTC)
    results: dict[str, Any] = {"started": started.isoformat(), "environment": environment(args)}
    if args.peer:
        results["peer"] = peer_phase(args)
        results["finished"] = datetime.now(UTC).isoformat()
        print(f"\n== ticketdesk beside {args.peer}\n{django_helpdesk.markdown(results['peer'])}")
        print(f"\nresults: {save(results, started)}")
        return
    if args.compare_url:
        results["compare"] = compare_phase(args)
        results["finished"] = datetime.now(UTC).isoformat()
        print_report(results)
        print(f"\nresults: {save(results, started)}")
        return
    scenarios = select(args.only)
    if not args.scale_only:
        results |= main_phases(args, scenarios)
    if args.scale_curve or args.scale_only:
        sizes = [int(size) for size in args.scale_sizes.split(",")]
        config = server_config(args, SCALE_PORT)
        curve = scale_curve(sizes, config, plan_of(args), args.scale_connections, args.jobs)
        results["scale_curve"] = curve
    results["finished"] = datetime.now(UTC).isoformat()
    print_report(results)
    print(f"\nresults: {save(results, started)}")


if __name__ == "__main__":
    main()
