"""The application factory: settings in, ASGI app out."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline

from ticketdesk import __version__
from ticketdesk.auth.dependencies import bearer_scheme, cookie_scheme, current_user
from ticketdesk.auth.router import router as auth_router
from ticketdesk.auth.security import dummy_hash
from ticketdesk.db import DATABASE_DEPENDENCIES, close_database, create_engine, create_reader
from ticketdesk.errors import DATABASE_ERRORS, install_error_handlers
from ticketdesk.middleware import LimitBodySize, OldClientCompatibility, ReadsPerRequest
from ticketdesk.settings import Settings
from ticketdesk.staff_keys.router import router as staff_keys_router
from ticketdesk.system import router as system_router
from ticketdesk.tickets.router import router as tickets_router
from ticketdesk.users.router import router as users_router

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
        app.state.engine = create_engine(settings)
        app.state.reader = await create_reader(settings, app.state.engine)
        await anyio.to_thread.run_sync(dummy_hash)  # computed once, before the first login
        try:
            yield
        finally:
            # Runs once in-flight requests are done, or SHUTDOWN_TIMEOUT cut them short.
            await close_database(app.state.engine, app.state.reader, settings.db_connect_timeout)

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
    app.state.signing_key = settings.signing_key()
    install_error_handlers(app)
    # The busiest first: FastAPI tries the routers in turn, and each match has a cost.
    routers = (tickets_router, users_router, auth_router, staff_keys_router, system_router)
    for router in routers:
        app.include_router(router)
    # Routes by path and method, for the Allow header of a 405 (the docs pages included).
    app.state.api_routes = [
        *(route for route in app.routes if hasattr(route, "methods")),
        *(route for router in routers for route in router.routes),
    ]
    app.add_middleware(ReadsPerRequest)
    app.add_middleware(OldClientCompatibility)
    app.add_middleware(LimitBodySize, max_bytes=settings.max_body_bytes)
    _document_400_not_422(app)
    return app


def _depends_on(dependant: Dependant, target: Callable[..., Any]) -> bool:
    return any(sub.call is target or _depends_on(sub, target) for sub in dependant.dependencies)


def _document_token_auth(schema: dict[str, Any], app: FastAPI) -> None:
    """Both ways of sending the token, on every operation that reads it."""
    components = schema.setdefault("components", {}).setdefault("securitySchemes", {})
    for scheme in (bearer_scheme, cookie_scheme):
        components[scheme.scheme_name] = scheme.model.model_dump(
            mode="json", by_alias=True, exclude_none=True
        )
    security: list[dict[str, list[str]]] = [
        {bearer_scheme.scheme_name: []},
        {cookie_scheme.scheme_name: []},
    ]
    for route in app.state.api_routes:
        if isinstance(route, APIRoute) and _depends_on(route.dependant, current_user):
            for method in route.methods or ():
                schema["paths"][route.path_format][method.lower()]["security"] = security


def _document_database_errors(schema: dict[str, Any], app: FastAPI) -> None:
    """503 on every operation that reaches the database: it may be away, busy or slow."""
    dependencies = (*DATABASE_DEPENDENCIES, current_user)  # the token check reads it too
    for route in app.state.api_routes:
        if isinstance(route, APIRoute) and any(
            _depends_on(route.dependant, dependency) for dependency in dependencies
        ):
            for method in route.methods or ():
                operation = schema["paths"][route.path_format][method.lower()]
                operation["responses"].setdefault("503", DATABASE_ERRORS)


def _document_400_not_422(app: FastAPI) -> None:
    """Validation errors are answered with 400 here; drop FastAPI's generated 422 entries."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            for path in schema["paths"].values():
                for operation in path.values():
                    operation.get("responses", {}).pop("422", None)
            _document_token_auth(schema, app)
            _document_database_errors(schema, app)
            schemas = schema.get("components", {}).get("schemas", {})
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
