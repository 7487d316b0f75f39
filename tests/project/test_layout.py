"""The imports point one way: the HTTP edge → features → auth → db; nothing below reaches up."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "ticketdesk"
FEATURES = (
    "tickets",
    "events",
    "attachments",
    "reports",
    "presence",
    "users",
    "staff_keys",
    "idempotency",
    "jobs",
    "mail",
    "notifications",
    "webhooks",
    "password_reset",
    "messages",
    "overview",
)
EDGE_MODULES = ("router.py", "dependencies.py", "schemas.py")
"""A feature's HTTP edge: its routes, its FastAPI dependencies, its request and answer shapes."""
HTTP = ("fastapi", "starlette", "uvicorn")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _modules(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (PACKAGE / folder).glob("*.py"))


def _below_the_edge(*folders: str) -> list[Path]:
    return [path for path in _modules(*folders) if path.name not in EDGE_MODULES]


def _reaches(path: Path, prefixes: tuple[str, ...]) -> list[str]:
    return sorted(
        name
        for name in _imports(path)
        if any(name.split(".")[0:2] == p.split(".") for p in prefixes)
    )


@pytest.mark.parametrize("path", _modules("db"), ids=lambda p: p.name)
def test_the_data_layer_imports_no_feature_and_no_http(path: Path) -> None:
    above = tuple(f"ticketdesk.{name}" for name in (*FEATURES, "auth", "web"))
    assert _reaches(path, above) == []
    assert not {name.split(".")[0] for name in _imports(path)} & set(HTTP) - {"starlette"}


@pytest.mark.parametrize("path", _below_the_edge("auth"), ids=lambda p: p.name)
def test_auth_below_its_edge_knows_no_feature_and_no_http(path: Path) -> None:
    above = tuple(f"ticketdesk.{name}" for name in (*FEATURES, "web"))
    assert _reaches(path, above) == []
    assert not {name.split(".")[0] for name in _imports(path)} & set(HTTP)


@pytest.mark.parametrize(
    "path", _below_the_edge(*FEATURES), ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_services_and_repositories_know_no_http(path: Path) -> None:
    assert _reaches(path, ("ticketdesk.web",)) == []
    assert not {name.split(".")[0] for name in _imports(path)} & set(HTTP)


@pytest.mark.parametrize(
    "path", _below_the_edge(*FEATURES), ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_a_feature_uses_another_through_its_service_or_rows_never_its_router(path: Path) -> None:
    routers = tuple(f"ticketdesk.{name}.router" for name in FEATURES)
    assert [name for name in _imports(path) if name in routers] == []


def test_only_the_data_layer_knows_the_drivers() -> None:
    drivers = {"asyncpg", "aiosqlite"}
    outside = [
        path.relative_to(PACKAGE)
        for path in PACKAGE.rglob("*.py")
        if "db" not in path.relative_to(PACKAGE).parts[:1]
        and {name.split(".")[0] for name in _imports(path)} & drivers
    ]
    assert outside == []


# Loops and layers between packages. A feature's routes (`router.py`) are the top of the
# house, beside `app.py` that mounts them: they may call any package, and nothing but the
# app imports them. Below them, packages import each other one way only.
TOP = ("app.py", "__main__.py")


def _package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "ticketdesk" and len(parts) > 1 else None


def _package_graph() -> dict[str, dict[str, set[str]]]:
    """Package → the packages it imports → which of its files do (routes and migrations
    left out: see above)."""
    graph: dict[str, dict[str, set[str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in (*TOP, "migrations") or _is_routes(path):
            continue
        source = relative.parts[0].removesuffix(".py")
        for name in _imported_names(path):
            target = _package_of(name)
            if target is not None and target != source:
                graph.setdefault(source, {}).setdefault(target, set()).add(str(relative))
    return graph


def _imported_names(path: Path) -> set[str]:
    """Every module a file imports, a `from x import y` counted as both x and x.y."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _is_routes(path: Path) -> bool:
    """A module that declares routes (a top-level `router`): a feature's `router.py`, or a
    page area's module."""
    if path.name == "router.py":
        return True
    tree = ast.parse(path.read_text())
    return any(
        isinstance(node, ast.Assign | ast.AnnAssign)
        and any(
            isinstance(target, ast.Name) and target.id == "router"
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        )
        for node in tree.body
    )


def _loops(graph: dict[str, dict[str, set[str]]]) -> list[list[str]]:
    """The strongly connected groups of more than one package (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group: list[str] = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_loop_between_packages() -> None:
    graph = _package_graph()
    loops = _loops(graph)
    described = [
        {f"{a} -> {b}": sorted(graph[a][b]) for a in loop for b in loop if b in graph.get(a, {})}
        for loop in loops
    ]
    assert described == []


def test_the_loop_finder_finds_a_loop() -> None:
    graph = {"a": {"b": {"a/x.py"}}, "b": {"c": {"b/y.py"}}, "c": {"a": {"c/z.py"}}, "d": {}}
    assert _loops(graph) == [["a", "b", "c"]]
    assert _loops({"a": {"b": set()}, "b": {}}) == []


def test_settings_hold_values_and_import_no_feature() -> None:
    reached = {_package_of(name) for name in _imported_names(PACKAGE / "settings.py")}
    assert reached - {None} <= {"schemas", "sla"}  # value shapes and the SLA calendar's parser


@pytest.mark.parametrize(
    "path",
    [path for path in sorted(PACKAGE.rglob("*.py")) if _is_routes(path)],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_no_routes_module_imports_another(path: Path) -> None:
    routes = {
        ".".join(("ticketdesk", *other.relative_to(PACKAGE).with_suffix("").parts))
        for other in PACKAGE.rglob("*.py")
        if _is_routes(other) and other != path
    }
    assert sorted(_imported_names(path) & routes) == []


def test_only_the_app_imports_routes() -> None:
    routes = {
        ".".join(("ticketdesk", *path.relative_to(PACKAGE).with_suffix("").parts))
        for path in PACKAGE.rglob("*.py")
        if _is_routes(path)
    }
    importers = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.name not in TOP and not _is_routes(path) and _imported_names(path) & routes
    )
    assert importers == []


# One rule, one place: what an agent is, and the schema's copies of the rules it indexes.


def _restates_the_agent_rule(path: Path) -> list[int]:
    """Lines that combine `is_staff` and `is_superuser` with `or` or `|` themselves."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.BoolOp | ast.BinOp) and (
            (isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr))
            or (isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or))
        ):
            named = {
                sub.attr if isinstance(sub, ast.Attribute) else getattr(sub, "id", None)
                for sub in ast.walk(node)
            }
            if {"is_staff", "is_superuser"} <= named:
                found.append(node.lineno)
    return found


def test_only_the_auth_policy_says_what_an_agent_is() -> None:
    restated = {
        str(path.relative_to(PACKAGE)): lines
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.relative_to(PACKAGE).parts[0] != "migrations"
        and path != PACKAGE / "auth" / "policy.py"
        and (lines := _restates_the_agent_rule(path))
    }
    assert restated == {}


def test_the_restatement_finder_finds_one(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f(u):\n    return u.is_staff or u.is_superuser\n")
    assert _restates_the_agent_rule(module) == [2]


def test_the_schemas_indexes_cover_what_the_policies_ask() -> None:
    """The partial indexes of models.py repeat two predicates as SQL text (the schema cannot
    import the policies, which import it): the planner uses them only while they agree."""
    from sqlalchemy.dialects import postgresql

    from ticketdesk import models
    from ticketdesk.auth import policy as roles
    from ticketdesk.tickets import policy as tickets

    compiled = str(roles.ACTIVE_AGENT.compile(dialect=postgresql.dialect()))
    assert compiled.replace("users.", "") == models._AGENTS
    assert tickets.open_sql("status") == models._OPEN
    assert set(models.TICKET_STATUSES) == set(get_args(tickets.Status))


COMMON = {"errors", "models", "schemas", "pagination", "metrics", "logs", "__version__"}
"""Leaf modules everyone may use; the architecture page leaves them out of its graph."""
ARCHITECTURE = PACKAGE.parent.parent / "docs" / "architecture.md"


def test_the_architecture_page_shows_the_import_graph_as_it_is() -> None:
    graph = _package_graph()
    expected = [
        f"{source:<15}→ {', '.join(sorted(set(graph[source]) - COMMON))}"
        for source in sorted(graph)
        if source not in COMMON and set(graph[source]) - COMMON
    ]
    text = ARCHITECTURE.read_text()
    start = text.index("<!-- import graph -->")
    block = text[start:].split("```")[1].strip().splitlines()
    assert block == expected
