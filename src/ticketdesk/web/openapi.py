"""The OpenAPI document as the service answers: post-processing of FastAPI's schema.

Validation errors are 400 (FastAPI's generated 422 entries go), both token schemes, the
page headers and the body limit, 503 wherever the database is reached, and links.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from ticketdesk.auth.dependencies import bearer_scheme, cookie_scheme, current_user
from ticketdesk.web.errors import DATABASE_ERRORS, responses
from ticketdesk.web.pagination import page_request
from ticketdesk.web.routing import DATABASE_DEPENDENCY


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
        if not _documented(route):
            continue
        operations = [schema["paths"][route.path_format][m.lower()] for m in route.methods or ()]
        if _depends_on(route.dependant, current_user):
            for operation in operations:
                operation["security"] = security
        elif _depends_on(route.dependant, bearer_scheme):
            # A token the route reads only when it has one (staff registration): `{}` says
            # that a request without any is served too.
            for operation in operations:
                operation["security"] = [{bearer_scheme.scheme_name: []}, {}]


def _documented(route: object) -> bool:
    """An operation of the schema (not a browser page, nor a route documented by another)."""
    return isinstance(route, APIRoute) and route.include_in_schema


_PAGE_HEADERS = {
    "Link": {
        "description": 'The next page, as `<url>; rel="next"` (relative to this request\'s URL, '
        "or under PUBLIC_URL); absent on the last page",
        "schema": {"type": "string"},
    },
    "X-Total-Count": {
        "description": "With `count=true`: how many rows match in all",
        "schema": {"type": "integer", "minimum": 0},
    },
}


def _document_pages_and_body_limit(schema: dict[str, Any], app: FastAPI) -> None:
    """The headers of a paginated list; the 413 of the body limit where a body is expected."""
    for route in app.state.api_routes:
        if _documented(route) and _depends_on(route.dependant, page_request):
            for method in route.methods or ():
                ok = schema["paths"][route.path_format][method.lower()]["responses"]["200"]
                ok["headers"] = _PAGE_HEADERS
    too_large = {
        "description": responses(413)[413]["description"],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
    }
    for path_item in schema["paths"].values():
        for operation in path_item.values():
            if "requestBody" in operation:
                operation["responses"]["413"] = too_large


_NEW_ID = "$response.body#/id"
_SAME_TICKET = "$request.path.ticket_id"
# OpenAPI links: where the answer of one operation leads, for clients and for stateful tests.
# (method, path, status) of the answer -> link name -> (method, path, parameters, request body)
_LINKS: dict[tuple[str, str, str], dict[str, tuple[str, str, dict[str, str], Any]]] = {
    ("post", "/tickets", "201"): {
        "GetTicket": ("get", "/tickets/{ticket_id}", {"ticket_id": _NEW_ID}, None),
        "ChangeStatus": ("patch", "/tickets/{ticket_id}", {"ticket_id": _NEW_ID}, None),
        "SetStatus": ("put", "/tickets/{ticket_id}", {"ticket_id": _NEW_ID}, None),
        "ListMessages": ("get", "/tickets/{ticket_id}/messages", {"ticket_id": _NEW_ID}, None),
        "PostMessage": ("post", "/tickets/{ticket_id}/messages", {"ticket_id": _NEW_ID}, None),
    },
    ("post", "/tickets/{ticket_id}/messages", "201"): {
        "ListMessages": ("get", "/tickets/{ticket_id}/messages", {"ticket_id": _SAME_TICKET}, None),
        "ChangeStatus": ("patch", "/tickets/{ticket_id}", {"ticket_id": _SAME_TICKET}, None),
    },
    ("patch", "/tickets/{ticket_id}", "200"): {
        "PostMessage": ("post", "/tickets/{ticket_id}/messages", {"ticket_id": _NEW_ID}, None),
    },
    ("put", "/tickets/{ticket_id}", "200"): {
        "PostMessage": ("post", "/tickets/{ticket_id}/messages", {"ticket_id": _NEW_ID}, None),
    },
    ("post", "/users", "201"): {
        "GetUser": ("get", "/users/{user_id}", {"user_id": _NEW_ID}, None),
        "UpdateUser": ("patch", "/users/{user_id}", {"user_id": _NEW_ID}, None),
        "ReplaceUser": ("put", "/users/{user_id}", {"user_id": _NEW_ID}, None),
        "Login": (
            "post",
            "/login",
            {},
            {"email": "$request.body#/email", "password": "$request.body#/password"},
        ),
    },
    ("post", "/staff-keys", "201"): {
        "DeleteStaffKey": ("delete", "/staff-keys/{key_id}", {"key_id": _NEW_ID}, None),
    },
}


def _document_links(schema: dict[str, Any]) -> None:
    paths = schema["paths"]
    for (method, path, status), links in _LINKS.items():
        response = paths[path][method]["responses"][status]
        for name, (target_method, target_path, parameters, body) in links.items():
            link: dict[str, Any] = {"operationId": paths[target_path][target_method]["operationId"]}
            if parameters:
                link["parameters"] = parameters
            if body is not None:
                link["requestBody"] = body
            response.setdefault("links", {})[name] = link


def _is_validation_error(response: dict[str, Any] | None) -> bool:
    """FastAPI's generated 422, not one an operation documents itself (Idempotency-Key)."""
    if response is None:
        return False
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))


def _document_database_errors(schema: dict[str, Any], app: FastAPI) -> None:
    """503 on every operation that reaches the database: it may be away, busy or slow."""
    dependencies = (DATABASE_DEPENDENCY, current_user)  # the token check reads it too
    for route in app.state.api_routes:
        if _documented(route) and any(
            _depends_on(route.dependant, dependency) for dependency in dependencies
        ):
            for method in route.methods or ():
                operation = schema["paths"][route.path_format][method.lower()]
                operation["responses"].setdefault("503", DATABASE_ERRORS)


def customize_openapi(app: FastAPI) -> None:
    """The schema as the service answers: validation errors are 400 (FastAPI's generated 422
    entries go), both token schemes, page headers and the body limit, 503s, and links."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                webhooks=app.webhooks.routes,
            )
            for path in schema["paths"].values():
                for operation in path.values():
                    responses = operation.get("responses", {})
                    if _is_validation_error(responses.get("422")):
                        del responses["422"]
            _document_token_auth(schema, app)
            _document_pages_and_body_limit(schema, app)
            _document_links(schema)
            _document_database_errors(schema, app)
            schemas = schema.get("components", {}).get("schemas", {})
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
