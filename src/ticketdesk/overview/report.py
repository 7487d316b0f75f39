"""What `ticketdesk jobs` prints: the lanes, the paused endpoints, the latest jobs by state."""

from __future__ import annotations

from typing import Any

from ticketdesk.db import row_as_json
from ticketdesk.overview.service import Overview

STATES = ("queued", "running", "failed", "done")
TITLES = {"failed": "failed", "queued": "queued", "running": "running", "done": "recently done"}
TIME = "%Y-%m-%d %H:%M:%S"


def as_json(seen: Overview) -> dict[str, Any]:
    return {
        "counts": seen.counts,
        "lanes": seen.lanes,
        "paused": [row_as_json(row) for row in seen.paused],
        **{state: [row_as_json(row) for row in getattr(seen, state)] for state in STATES},
    }


def text(seen: Overview) -> str:
    lines = ["jobs: " + ", ".join(f"{seen.counts.get(s, 0)} {s}" for s in STATES)]
    lines.append(
        "lanes: "
        + "; ".join(
            f"{kind} {states.get('queued', 0)} queued, {states.get('running', 0)} running"
            for kind, states in seen.lanes.items()
        )
    )
    if seen.paused:
        lines += [
            "",
            "paused webhook endpoints (their calls wait; a probe tries again at 'until'):",
        ]
        lines.append(f"  {'id':>6}  {'failures':>8}  {'until':<20} {'waiting':>7}  url / reason")
        for row in seen.paused:
            lines.append(
                f"  {row.id:>6}  {row.consecutive_failures:>8}  "
                f"{row.paused_until.strftime(TIME):<20} {row.queued:>7}  {row.url}"
            )
            lines.append(f"  {'':>6}  {'':>8}  {'':<20} {'':>7}  {row.paused_reason or ''}")
    for state, title in TITLES.items():
        rows = getattr(seen, state)
        if not rows:
            continue
        lines += ["", f"{title}:"]
        lines.append(f"  {'id':>8}  {'kind':<8} {'attempts':>8}  {'when':<20} {'key':<28} result")
        for row in rows:
            when = (row.finished_at or row.run_at).strftime(TIME)
            result = f"{row.last_code or ''} {row.last_error or ''}".strip()
            lines.append(
                f"  {row.id:>8}  {row.kind:<8} {row.attempts:>8}  {when:<20} {row.key:<28} {result}"
            )
    return "\n".join(lines)
