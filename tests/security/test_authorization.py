"""Every endpoint, every role: anonymous 401, a role too low 403, someone else's object 404."""

from __future__ import annotations

import httpx
import pytest

from conftest import Account, MakeUser, open_ticket

# (method, path, body); {ticket}, {user} and {key} are filled in per test.
AUTHENTICATED = [
    ("POST", "/logout", None),
    ("GET", "/users", None),
    ("GET", "/users/me", None),
    ("PATCH", "/users/me", {"username": "x"}),
    ("PUT", "/users/me", {"username": "x"}),
    ("GET", "/users/{user}", None),
    ("PATCH", "/users/{user}", {"username": "x"}),
    ("PUT", "/users/{user}", {"username": "x"}),
    ("POST", "/staff-keys", {}),
    ("GET", "/staff-keys", None),
    ("DELETE", "/staff-keys/{key}", None),
    ("POST", "/tickets", {"topic": "t", "text": "x"}),
    ("GET", "/tickets", None),
    ("GET", "/tickets/{ticket}", None),
    ("PATCH", "/tickets/{ticket}", {"status": "canceled"}),
    ("PUT", "/tickets/{ticket}", {"status": "canceled"}),
    ("GET", "/tickets/{ticket}/messages", None),
    ("POST", "/tickets/{ticket}/messages", {"text": "x"}),
    ("GET", "/tickets/{ticket}/events", None),
    ("POST", "/tickets/{ticket}/rating", {"score": 5}),
    ("GET", "/events", None),
    ("GET", "/events/stream", None),
    ("GET", "/reports/summary", None),
    ("GET", "/attachments/1", None),
]
STAFF_ONLY = [
    ("GET", "/events", None),
    ("GET", "/events/stream", None),
    ("GET", "/reports/summary", None),
    ("GET", "/tickets?assignee=me", None),
    ("GET", "/tickets?priority=high", None),
    ("GET", "/tickets?sort=-priority", None),
    ("GET", "/tickets?sort=due", None),
    ("GET", "/tickets?breached=true", None),
    ("PATCH", "/tickets/{ticket}", {"priority": "high"}),
    ("PATCH", "/tickets/{ticket}", {"assignee_id": 1}),
    ("POST", "/tickets/{ticket}/messages", {"text": "x", "internal": True}),
    ("GET", "/users", None),
    ("GET", "/users/{user}", None),
    ("PATCH", "/users/{user}", {"username": "x"}),
    ("PUT", "/users/{user}", {"username": "x"}),
]
SUPERUSER_ONLY = [
    ("POST", "/staff-keys", {}),
    ("GET", "/staff-keys", None),
    ("DELETE", "/staff-keys/{key}", None),
]
SOMEONE_ELSES_TICKET = [
    ("GET", "/tickets/{ticket}", None),
    ("PATCH", "/tickets/{ticket}", {"status": "canceled"}),
    ("PUT", "/tickets/{ticket}", {"status": "canceled"}),
    ("GET", "/tickets/{ticket}/messages", None),
    ("POST", "/tickets/{ticket}/messages", {"text": "x"}),
    ("GET", "/tickets/{ticket}/events", None),
    ("POST", "/tickets/{ticket}/rating", {"score": 5}),
]
PUBLIC = [("GET", "/time"), ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/openapi.json")]


def ids(cases: list[tuple[str, str, object]]) -> list[str]:
    return [f"{method} {path}" for method, path, _ in cases]


async def call(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    body: object,
    account: Account | None,
    ticket: int = 1,
    user: int = 1,
    key: int = 1,
) -> httpx.Response:
    url = path.format(ticket=ticket, user=user, key=key)
    headers = account.headers if account else {}
    return await client.request(method, url, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "body"), AUTHENTICATED, ids=ids(AUTHENTICATED))
async def test_anonymous_is_401(
    client: httpx.AsyncClient, customer: Account, method: str, path: str, body: object
) -> None:
    ticket = await open_ticket(client, customer)
    response = await call(client, method, path, body, None, ticket=ticket, user=customer.id)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    still = await client.get(f"/tickets/{ticket}", headers=customer.headers)
    assert still.json()["status"] == "pending"


@pytest.mark.parametrize(("method", "path", "body"), STAFF_ONLY, ids=ids(STAFF_ONLY))
async def test_customer_on_staff_endpoints_is_403(
    client: httpx.AsyncClient,
    customer: Account,
    other_customer: Account,
    method: str,
    path: str,
    body: object,
) -> None:
    ticket = await open_ticket(client, customer)
    response = await call(
        client, method, path, body, customer, ticket=ticket, user=other_customer.id
    )
    assert response.status_code == 403
    mine = (await client.get(f"/tickets/{ticket}/messages", headers=customer.headers)).json()
    assert len(mine) == 1


@pytest.mark.parametrize(("method", "path", "body"), SUPERUSER_ONLY, ids=ids(SUPERUSER_ONLY))
@pytest.mark.parametrize("role", ["customer", "staff"])
async def test_non_superuser_on_superuser_endpoints_is_403(
    client: httpx.AsyncClient,
    make_user: MakeUser,
    superuser: Account,
    role: str,
    method: str,
    path: str,
    body: object,
) -> None:
    key = (await client.post("/staff-keys", json={}, headers=superuser.headers)).json()["id"]
    response = await call(client, method, path, body, await make_user(role), key=key)
    assert response.status_code == 403
    listed = (await client.get("/staff-keys", headers=superuser.headers)).json()
    assert [k["id"] for k in listed] == [key]


@pytest.mark.parametrize(
    ("method", "path", "body"), SOMEONE_ELSES_TICKET, ids=ids(SOMEONE_ELSES_TICKET)
)
async def test_someone_elses_ticket_is_404(
    client: httpx.AsyncClient,
    customer: Account,
    other_customer: Account,
    method: str,
    path: str,
    body: object,
) -> None:
    ticket = await open_ticket(client, customer)
    response = await call(client, method, path, body, other_customer, ticket=ticket)
    assert response.status_code == 404
    assert response.json() == {"detail": "no such ticket"}
    thread = (await client.get(f"/tickets/{ticket}/messages", headers=customer.headers)).json()
    assert len(thread) == 1
    assert (await client.get(f"/tickets/{ticket}", headers=customer.headers)).json()[
        "status"
    ] == "pending"


@pytest.mark.parametrize(("method", "path"), PUBLIC)
async def test_public_endpoints_need_no_token(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    assert (await client.request(method, path)).status_code == 200
