"""The scale curve: list-endpoint latency at low concurrency on 10k, 100k and 1M tickets."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, replace
from typing import Any

import asyncpg
from common import log
from dataset import find_targets
from generate import Sizes, dataset_info, generate
from measure import Plan, login_all, measure_scenario
from scenarios import SCENARIOS
from server import Server, ServerConfig

CURVE_ENDPOINTS = ("own_list", "staff_list", "staff_deep", "messages_read", "users_list")


async def current_sizes() -> Any:
    try:
        info = await dataset_info()
    except asyncpg.InvalidCatalogNameError:
        return None
    return info.get("sizes") if info else None


def ensure_dataset(sizes: Sizes, jobs: int) -> dict[str, object]:
    """Generate the data set unless the bench database already holds one of these sizes."""
    if asyncio.run(current_sizes()) == asdict(sizes):
        log(f"the bench database already holds {sizes.tickets} tickets")
        info = asyncio.run(dataset_info())
        return info or {}
    return asyncio.run(generate(sizes, jobs))


def measure_size(config: ServerConfig, plan: Plan) -> dict[str, Any]:
    targets = asyncio.run(find_targets())
    scenarios = [s for s in SCENARIOS if s.name in CURVE_ENDPOINTS]
    results: dict[str, Any] = {}
    with Server(config) as server:
        tokens = login_all(server)
        for scenario in scenarios:
            measured = measure_scenario(server, scenario, targets, tokens, plan)
            results[scenario.name] = {**measured["median"], "runs": measured["runs"]}
    return results


def scale_curve(
    sizes: list[int], config: ServerConfig, plan: Plan, connections: int, jobs: int
) -> dict[str, object]:
    """Measure each size, smallest first; the largest data set stays in the database."""
    plan = replace(plan, connections=connections, warmup_s=min(plan.warmup_s, 3))
    by_size: dict[str, dict[str, Any]] = {}
    generation: dict[str, object] = {}
    for tickets in sorted(sizes):
        log(f"scale curve: {tickets} tickets")
        generation[str(tickets)] = ensure_dataset(Sizes.scaled(tickets), jobs)
        by_size[str(tickets)] = measure_size(config, plan)
    smallest, largest = by_size[str(min(sizes))], by_size[str(max(sizes))]
    ratios = {
        name: round(largest[name]["p99_ms"] / smallest[name]["p99_ms"], 2)
        for name in CURVE_ENDPOINTS
        if name in smallest
    }
    return {
        "connections": connections,
        "sizes": by_size,
        "generation": generation,
        "p99_ratio": ratios,
    }
