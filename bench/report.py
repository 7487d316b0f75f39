"""The results: tables on stdout, everything as JSON in bench/results/<timestamp>.json."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from common import RESULTS_DIR


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain text table; numbers right-aligned."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]

    def line(values: Sequence[str], numeric: Sequence[bool]) -> str:
        parts = [
            v.rjust(w) if right else v.ljust(w)
            for v, w, right in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    numeric = [i > 0 for i in range(len(headers))]
    out = [line(headers, numeric), line(["-" * w for w in widths], numeric)]
    out += [line(row, numeric) for row in cells]
    return "\n".join(out)


def _cell(value: object) -> str:
    """Floats with one decimal; pre-formatted strings as they are; None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)


def _ratio(value: float | None) -> str | None:
    return None if value is None else f"{value:.3f}"


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _cpu(figures: dict[str, Any]) -> str:
    """server/PG CPU µs per request, e.g. '412/230'."""
    server, pg = figures.get("server_us_per_req"), figures.get("pg_us_per_req")
    return f"{_us(server)}/{_us(pg)}"


def _run_cpu(run: dict[str, Any]) -> str:
    return _cpu(run.get("cpu") or {})


CPU_NOTE = (
    "\nCPU µs/req: CPU time over the run ÷ completed requests, server (its whole process "
    "tree) / PostgreSQL (all its processes)"
)


def scenarios_table(results: dict[str, Any]) -> str:
    rows = []
    for name, result in results["scenarios"].items():
        median = result["median"]
        ceiling = result.get("pgbench") or {}
        hashing = result.get("hash_ceiling") or {}
        rows.append(
            [
                f"{result['letter']}) {name}",
                median["rps"],
                median["p50_ms"],
                median["p99_ms"],
                median["errors"],
                ceiling.get("median_tps") or hashing.get("logins_per_s"),
                _ratio(result.get("ratio")),
                _cpu(median),
            ]
        )
    headers = [
        "scenario",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "ceiling/s",
        "ratio",
        "CPU µs/req server/PG",
    ]
    note = "\nceiling/s: pgbench tps of the same SQL; for login, cores ÷ one argon2id verification"
    return table(headers, rows) + note + CPU_NOTE + _error_details(results["scenarios"])


def _error_details(scenarios: dict[str, Any]) -> str:
    """Which statuses and socket errors make up each scenario's error count."""
    lines = []
    for name, result in scenarios.items():
        line = _error_line(name, result)
        if line:
            lines.append(line)
    return "".join("\n" + line for line in lines)


def _error_line(name: str, result: dict[str, Any]) -> str | None:
    if not result["median"]["errors"]:
        return None
    sockets: dict[str, int] = {}
    for run in result["runs"]:
        for kind, count in run["socket_errors"].items():
            sockets[kind] = sockets.get(kind, 0) + count
    return (
        f"errors in {name}: statuses {result['median']['statuses']}, "
        f"socket errors { {k: v for k, v in sockets.items() if v} }"
    )


def high_table(high: dict[str, Any]) -> str:
    rows = [
        [name, r["rps"], r["p50_ms"], r["p99_ms"], r["errors"], _run_cpu(r), _statuses(r)]
        for name, r in high["scenarios"].items()
    ]
    headers = ["scenario", "req/s", "p50 ms", "p99 ms", "errors", "CPU µs/req", "statuses"]
    return f"at {high['connections']} connections:\n" + table(headers, rows)


def _statuses(result: dict[str, Any]) -> str:
    codes = " ".join(f"{code}:{count}" for code, count in sorted(result["statuses"].items()))
    sockets = {k: v for k, v in result["socket_errors"].items() if v}
    return codes + ("  " + " ".join(f"{k}:{v}" for k, v in sockets.items()) if sockets else "")


def flood_text(flood: dict[str, Any]) -> str:
    quiet, during, logins = flood["quiet"], flood["during_flood"], flood["logins"]
    rows = [
        [f"ticket read, quiet ({flood['probe_connections']} conn)", *_figures(quiet)],
        [f"ticket read, during flood ({flood['probe_connections']} conn)", *_figures(during)],
        [f"login flood ({flood['flood_connections']} conn)", *_figures(logins)],
    ]
    headers = ["login flood", "req/s", "p50 ms", "p99 ms", "errors", "CPU µs/req"]
    ratio = flood["p99_ratio"]
    return table(headers, rows) + f"\nticket-read p99 during the flood / quiet: {ratio:.2f}x"


def _figures(result: dict[str, Any]) -> list[object]:
    """The CPU only for a run that had the server to itself (not during the flood)."""
    cpu = _run_cpu(result) if result.get("cpu") else "-"
    return [result["rps"], result["p50_ms"], result["p99_ms"], result["errors"], cpu]


def _role(command: str) -> str:
    if "spawn_main" in command:
        return "worker"
    if "resource_tracker" in command:
        return "multiprocessing resource tracker"
    return "supervisor (ticketdesk serve)"


def memory_text(memory: list[dict[str, Any]]) -> str:
    rows = [
        [
            _role(str(p.get("command", ""))),
            str(p["pid"]),
            f"{p.get('vmrss_kib', 0) / 1024:.1f}",
            f"{p.get('vmhwm_kib', 0) / 1024:.1f}",
        ]
        for p in memory
    ]
    workers = sum(p.get("vmrss_kib", 0) for p in memory if _role(str(p.get("command"))) == "worker")
    total = f"\nworkers' RSS in all: {workers / 1024:.1f} MiB"
    return table(["process", "pid", "RSS MiB", "peak RSS MiB"], rows) + total


def scale_text(curve: dict[str, Any]) -> str:
    sizes = list(curve["sizes"])
    headers = ["endpoint", *(f"p50/p99 {size}" for size in sizes), "p99 ratio"]
    rows = []
    for name, ratio in curve["p99_ratio"].items():
        cells = [
            f"{curve['sizes'][size][name]['p50_ms']:.1f}/{curve['sizes'][size][name]['p99_ms']:.1f}"
            for size in sizes
        ]
        rows.append([name, *cells, f"{ratio:.2f}"])
    return f"latency in ms at {curve['connections']} connections:\n" + table(headers, rows)


def compare_table(found: dict[str, Any]) -> str:
    """Both services side by side: medians over the rounds."""
    other = found["other"]["name"]
    ours = "ticketdesk"
    rows = []
    details = []
    for name, result in found["scenarios"].items():
        theirs, mine = result["sides"][other]["median"], result["sides"][ours]["median"]
        rows.append(
            [
                f"{result['letter']}) {name}",
                theirs["rps"],
                mine["rps"],
                _ratio(result["ratio"]),
                theirs["p99_ms"],
                mine["p99_ms"],
                _cpu(theirs),
                _cpu(mine),
                f"{theirs['errors']}/{mine['errors']}",
            ]
        )
        for side in (other, ours):
            line = _error_line(f"{name} ({side})", result["sides"][side])
            if line:
                details.append(line)
    headers = [
        "scenario",
        f"{other} req/s",
        f"{ours} req/s",
        "ratio",
        f"{other} p99 ms",
        f"{ours} p99 ms",
        f"{other} CPU µs/req server/PG",
        f"{ours} CPU µs/req server/PG",
        f"errors {other}/{ours}",
    ]
    rounds = len(next(iter(found["scenarios"].values()))["order"]) // 2 if rows else 0
    notes = [
        f"medians of {rounds} round(s), the two services alternating (ABBA); "
        f"ratio: {ours} req/s ÷ {other} req/s",
        CPU_NOTE.strip(),
    ]
    if not found["other"].get("pid"):
        notes.append(f"{other}'s server CPU is not measured without --compare-pid")
    return table(headers, rows) + "".join("\n" + line for line in notes + details)


def compare_memory(found: dict[str, Any]) -> str:
    parts = []
    for side, processes in found["memory"].items():
        if processes:
            total = sum(p.get("vmrss_kib", 0) for p in processes) / 1024
            parts.append(f"{side} {total:.1f} MiB in {len(processes)} process(es)")
    return "RSS after the load: " + ", ".join(parts) if parts else ""


def print_report(results: dict[str, Any]) -> None:
    if results.get("compare"):
        found = results["compare"]
        text = compare_table(found)
        memory = compare_memory(found)
        if memory:
            text += "\n" + memory
        print(f"\n== ticketdesk and {found['other']['name']}\n{text}")
        return
    sections = []
    if results.get("scenarios"):
        sections.append(("Scenarios", scenarios_table(results)))
    if results.get("high_concurrency"):
        sections.append(("High concurrency", high_table(results["high_concurrency"])))
    if results.get("login_flood"):
        sections.append(("Login flood", flood_text(results["login_flood"])))
    if results.get("memory"):
        sections.append(("Server memory after the load", memory_text(results["memory"])))
    if results.get("scale_curve"):
        sections.append(("Scale curve", scale_text(results["scale_curve"])))
    for title, text in sections:
        print(f"\n== {title}\n{text}")


def save(results: dict[str, Any], started: datetime) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return path
