"""The imports point one way: the HTTP edge → features → auth → db; nothing below reaches up."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "ticketdesk"
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
