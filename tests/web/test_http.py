"""The HTTP surface: paths, methods, bodies, errors and documentation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import Account, open_ticket
from ticketdesk.db import Db, Row, Statement
from ticketdesk.db.handle import NO_PARAMS
from ticketdesk.models import tickets


async def ticket_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(tickets))).scalar_one())


async def test_trailing_slashes_are_accepted(client: httpx.AsyncClient, customer: Account) -> None:
    response = await client.post(
        "/tickets/", json={"topic": "slash", "text": "x"}, headers=customer.headers
    )
    assert response.status_code == 201
    ticket_id = response.json()["id"]
    assert (await client.get(f"/tickets/{ticket_id}/", headers=customer.headers)).json()[
        "topic"
    ] == "slash"
    response = await client.put(
        f"/tickets/{ticket_id}/", json={"status": "canceled"}, headers=customer.headers
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        # HEAD is answered wherever GET is.
        ("DELETE", "/tickets", {"GET", "HEAD", "POST"}),
        ("POST", "/tickets/1", {"GET", "HEAD", "PUT", "PATCH"}),
        ("PUT", "/tickets/1/messages", {"GET", "HEAD", "POST"}),
        ("GET", "/login", {"POST"}),
        ("DELETE", "/users", {"GET", "HEAD", "POST"}),
        ("DELETE", "/users/me", {"GET", "HEAD", "PUT", "PATCH"}),
        ("POST", "/openapi.json", {"GET", "HEAD"}),
        ("POST", "/docs", {"GET", "HEAD"}),
    ],
)
async def test_wrong_method_is_405_with_allow(
    client: httpx.AsyncClient, method: str, path: str, allowed: set[str]
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == allowed
    assert response.json() == {"detail": "Method Not Allowed"}


async def test_unknown_path_is_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/nothing/here")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


@pytest.mark.parametrize(
    "raw",
    [b'{"topic": "a", "text": "b"} trailing', b'{"topic": "a",', b"", b"\xff\xfe", b"null"],
)
async def test_malformed_json_is_400(
    client: httpx.AsyncClient, customer: Account, engine: AsyncEngine, raw: bytes
) -> None:
    response = await client.post(
        "/tickets", content=raw, headers={**customer.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert "detail" in response.json()
    assert await ticket_count(engine) == 0


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded", "text/plain"])
async def test_bodies_are_json_whatever_the_content_type(
    client: httpx.AsyncClient, customer: Account, content_type: str | None
) -> None:
    headers = dict(customer.headers)
    if content_type:
        headers["Content-Type"] = content_type
    response = await client.post(
        "/tickets", content=b'{"topic": "curl -d", "text": "x"}', headers=headers
    )
    assert response.status_code == 201


async def test_oversized_body_is_413(
    client: httpx.AsyncClient, customer: Account, engine: AsyncEngine, app: FastAPI
) -> None:
    limit = app.state.settings.max_body_bytes
    body = b'{"topic": "big", "text": "' + b"a" * limit + b'"}'
    response = await client.post(
        "/tickets", content=body, headers={**customer.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json() == {"detail": "request body too large"}
    assert await ticket_count(engine) == 0


async def test_oversized_streamed_body_is_413(
    client: httpx.AsyncClient, customer: Account, engine: AsyncEngine, app: FastAPI
) -> None:
    limit = app.state.settings.max_body_bytes

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"topic": "big", "text": "'
        for _ in range(limit // 65536 + 2):
            yield b"a" * 65536
        yield b'"}'

    response = await client.post(
        "/tickets",
        content=chunks(),
        headers={**customer.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert "detail" in response.json()
    assert await ticket_count(engine) == 0


async def test_body_just_under_the_limit_is_accepted(
    client: httpx.AsyncClient, customer: Account, app: FastAPI
) -> None:
    limit = app.state.settings.max_body_bytes
    envelope = b'{"topic": "big", "text": ""}'
    body = envelope[:-2] + b"a" * (limit - len(envelope)) + b'"}'
    assert len(body) == limit
    response = await client.post(
        "/tickets", content=body, headers={**customer.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 201


async def test_validation_errors_name_fields_and_hide_input(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/users", json={"email": "not-an-email", "password": "Zq9x!", "username": "x"}
    )
    assert response.status_code == 400
    fields = {tuple(error["loc"]) for error in response.json()["detail"]}
    assert fields == {("body", "email"), ("body", "password")}
    assert "Zq9x!" not in response.text
    assert all(set(error) == {"loc", "msg", "type"} for error in response.json()["detail"])


async def test_time(client: httpx.AsyncClient) -> None:
    response = await client.get("/time")
    assert response.status_code == 200
    assert response.json()["time"].endswith("Z")


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ok"}


async def test_openapi_documents_every_operation(client: httpx.AsyncClient, app: FastAPI) -> None:
    schema = (await client.get("/openapi.json")).json()
    documented = {(path, method.upper()) for path, ops in schema["paths"].items() for method in ops}
    for route in app.state.api_routes:
        if not route.include_in_schema:
            continue
        for method in route.methods - {"HEAD"}:
            assert (route.path, method) in documented
    idempotent = {("/tickets", "post"), ("/tickets/{ticket_id}/messages", "post")}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            # Validation errors are 400; 422 only for an Idempotency-Key used with another body.
            responses = operation["responses"]
            assert ("422" in responses) == ((path, method) in idempotent), (path, method)
            if "422" in responses:
                assert responses["422"]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorOut"
                }
            assert operation.get("description") or operation.get("summary")
    assert "400" in schema["paths"]["/tickets"]["post"]["responses"]
    assert "401" in schema["paths"]["/tickets"]["post"]["responses"]
    assert "409" in schema["paths"]["/tickets/{ticket_id}"]["patch"]["responses"]
    assert {"HTTPBearer", "APIKeyCookie"} <= set(schema["components"]["securitySchemes"])


async def test_openapi_says_where_the_token_is_optional(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    # Registration serves requests without a token; only `isStaff: true` needs one.
    assert paths["/users"]["post"]["security"] == [{"HTTPBearer": []}, {}]
    required = [{"HTTPBearer": []}, {"APIKeyCookie": []}]
    assert paths["/users"]["get"]["security"] == required
    assert paths["/tickets"]["post"]["security"] == required
    assert "security" not in paths["/login"]["post"]


async def test_openapi_documents_the_headers_and_the_body_limit(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    paged = ("/tickets", "/tickets/{ticket_id}/messages", "/tickets/{ticket_id}/events", "/users")
    for path in (*paged, "/users/{user_id}"):
        assert set(paths[path]["get"]["responses"]["200"]["headers"]) == {"Link", "X-Total-Count"}
    assert paths["/tickets"]["post"]["responses"]["401"]["headers"]["WWW-Authenticate"]["required"]
    with_body = {
        (path, method)
        for path, operations in paths.items()
        for method, operation in operations.items()
        if "requestBody" in operation
    }
    assert len(with_body) == 20
    for path, method in with_body:
        assert "413" in paths[path][method]["responses"], (path, method)


async def test_openapi_documents_503_wherever_the_database_is_reached(
    client: httpx.AsyncClient,
) -> None:
    schema = (await client.get("/openapi.json")).json()
    without = {
        (path, method)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "503" not in operation["responses"]
    }
    assert without == {("/time", "get"), ("/healthz", "get"), ("/password-reset", "post")}
    outage = schema["paths"]["/tickets/{ticket_id}"]["get"]["responses"]["503"]
    assert "Retry-After" in outage["headers"]
    assert outage["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorOut"
    }
    readiness = schema["paths"]["/readyz"]["get"]["responses"]["503"]
    assert readiness["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/HealthOut"
    }


async def test_docs_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert "cdn." not in response.text  # self-hosted: no CDN needed
    script = await client.get("/static-offline-docs/swagger-ui-bundle.js")
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.text


async def test_unexpected_errors_are_500_without_details(
    app: FastAPI, customer: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = app.state.database
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        await client.get("/tickets", headers=customer.headers)  # the token is remembered
        monkeypatch.setattr(database, "handle", _BrokenDb)  # every statement fails
        responses = [
            await client.get("/tickets", headers=customer.headers),
            await client.post(
                "/tickets", json={"topic": "a", "text": "b"}, headers=customer.headers
            ),
        ]
    for response in responses:
        assert response.status_code == 500
        assert response.json() == {"detail": "internal server error"}
        assert "hunter2" not in response.text


class _BrokenDb(Db):
    dialect = "postgresql"

    async def all(self, statement: Statement, params: Mapping[str, Any] = NO_PARAMS) -> list[Row]:
        raise RuntimeError("secret internals: password=hunter2")

    async def execute(self, statement: Statement, params: Mapping[str, Any] = NO_PARAMS) -> int:
        raise RuntimeError("secret internals: password=hunter2")

    async def finish(self, *, commit: bool) -> None:
        pass


async def test_ticket_ids_do_not_leak_between_users(
    client: httpx.AsyncClient, customer: Account, other_customer: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    for path in (f"/tickets/{ticket_id}", f"/tickets/{ticket_id}/messages"):
        response = await client.get(path, headers=other_customer.headers)
        assert response.status_code == 404


async def test_length_errors_count_characters(client: httpx.AsyncClient, customer: Account) -> None:
    response = await client.post(
        "/tickets", json={"topic": "t" * 21, "text": "x"}, headers=customer.headers
    )
    assert response.status_code == 400
    assert response.json()["detail"][0]["msg"] == "String should have at most 20 characters"
