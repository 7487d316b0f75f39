"""Users: registration, the staff views of users, and changes to accounts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Row, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import (
    PASSWORD,
    STAFF_TOKEN,
    Account,
    MakeUser,
    client_with,
    open_ticket,
)
from ticketdesk.models import users

PUBLIC_FIELDS = {"id", "created_at", "username", "email", "is_staff"}
LIST_FIELDS = PUBLIC_FIELDS | {"tickets_count"}
DETAIL_FIELDS = LIST_FIELDS | {"is_active", "tickets"}
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
NEW_PASSWORD = "newpassword1"


# helpers


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def signup(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "email": "new.user@example.com",
        "password": "a fine password",
        "username": "newbie",
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}


async def register(
    client: httpx.AsyncClient, headers: dict[str, str] | None = None, **changes: Any
) -> httpx.Response:
    return await client.post("/users", json=signup(**changes), headers=headers or {})


async def db_users(engine: AsyncEngine) -> list[Row[Any]]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(users).order_by(users.c.id))).all())


async def db_user(engine: AsyncEngine, user_id: int) -> Row[Any]:
    async with engine.connect() as conn:
        return (await conn.execute(select(users).where(users.c.id == user_id))).one()


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    response = await client.post("/login", json={"email": email, "password": password})
    client.cookies.clear()  # the jar must not authenticate later "anonymous" requests
    return response


async def login_token(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    response = await login(client, email, password)
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def assert_validation_error(response: httpx.Response, field: str) -> None:
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list)
    assert all(set(error) == {"loc", "msg", "type"} for error in detail)
    assert ["body", field] in [error["loc"] for error in detail]


def assert_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert set(response.json()) == {"detail"}
    assert isinstance(response.json()["detail"], str)


async def update_user(
    client: httpx.AsyncClient,
    actor: Account | None,
    user_id: int,
    body: dict[str, Any],
    method: str = "PATCH",
) -> httpx.Response:
    headers = actor.headers if actor else {}
    return await client.request(method, f"/users/{user_id}", json=body, headers=headers)


# registration


async def test_register_returns_exactly_the_public_fields(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    response = await register(client, password="secret password 1")
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == PUBLIC_FIELDS
    assert body["username"] == "newbie"
    assert body["email"] == "new.user@example.com"
    assert body["is_staff"] is False
    assert RFC3339_UTC.match(body["created_at"])
    [row] = await db_users(engine)
    assert body["id"] == row.id
    assert "secret password 1" not in response.text
    assert row.password_hash not in response.text


async def test_register_stores_the_email_lower_cased(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    response = await register(client, email="Bob@X.io")
    assert response.status_code == 201, response.text
    assert response.json()["email"] == "bob@x.io"
    assert [row.email for row in await db_users(engine)] == ["bob@x.io"]


async def test_register_refuses_an_email_that_differs_only_in_case(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    assert (await register(client, email="Bob@X.io")).status_code == 201
    response = await register(client, email="bob@x.io", username="second")
    assert_error(response, 400)
    assert [(row.email, row.username) for row in await db_users(engine)] == [("bob@x.io", "newbie")]


@pytest.mark.parametrize("email", ["not-an-email", "bob@", "@x.io", "bob@@x.io", "bob x@x.io"])
async def test_register_refuses_an_invalid_email(
    client: httpx.AsyncClient, engine: AsyncEngine, email: str
) -> None:
    response = await register(client, email=email)
    assert_validation_error(response, "email")
    assert await db_users(engine) == []


@pytest.mark.parametrize(
    "password",
    ["x" * 8, "é" * 8, "\N{GRINNING FACE}" * 8, "x" * 1024],
    ids=["8-ascii", "8-two-byte", "8-emoji", "1024"],
)
async def test_register_accepts_a_password_of_8_to_1024_characters(
    client: httpx.AsyncClient, engine: AsyncEngine, password: str
) -> None:
    response = await register(client, password=password)
    assert response.status_code == 201, response.text
    [row] = await db_users(engine)
    assert (await login(client, row.email, password)).status_code == 200


@pytest.mark.parametrize(
    "password",
    ["x" * 7, "é" * 7, "\N{GRINNING FACE}" * 7, "x" * 1025, ""],
    ids=["7-ascii", "7-two-byte", "7-emoji", "1025", "empty"],
)
async def test_register_refuses_a_password_outside_8_to_1024_characters(
    client: httpx.AsyncClient, engine: AsyncEngine, password: str
) -> None:
    response = await register(client, password=password)
    assert_validation_error(response, "password")
    assert await db_users(engine) == []


@pytest.mark.parametrize("username", ["x", "x" * 64, "élan \N{GRINNING FACE}"])
async def test_register_accepts_a_username_of_1_to_64_characters(
    client: httpx.AsyncClient, engine: AsyncEngine, username: str
) -> None:
    response = await register(client, username=username)
    assert response.status_code == 201, response.text
    assert response.json()["username"] == username
    assert [row.username for row in await db_users(engine)] == [username]


@pytest.mark.parametrize(
    "username",
    ["", "x" * 65, "   ", "\t\n", "nul\x00byte"],
    ids=["empty", "65", "spaces", "whitespace", "nul"],
)
async def test_register_refuses_an_empty_blank_or_long_username(
    client: httpx.AsyncClient, engine: AsyncEngine, username: str
) -> None:
    response = await register(client, username=username)
    assert_validation_error(response, "username")
    assert await db_users(engine) == []


@pytest.mark.parametrize("field", ["email", "password", "username"])
async def test_register_names_a_missing_field(
    client: httpx.AsyncClient, engine: AsyncEngine, field: str
) -> None:
    body = signup()
    del body[field]
    response = await client.post("/users", json=body)
    assert_validation_error(response, field)
    assert "a fine password" not in response.text
    assert await db_users(engine) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", 12345),
        ("isStaff", "yes"),
        ("isStaff", 1),
        ("username", ["newbie"]),
        ("password", 123456789),
    ],
)
async def test_register_names_a_field_of_the_wrong_type(
    client: httpx.AsyncClient, engine: AsyncEngine, field: str, value: object
) -> None:
    response = await register(client, **{field: value})
    assert_validation_error(response, field)
    assert await db_users(engine) == []


@pytest.mark.parametrize(
    "changes",
    [
        {"email": "not-an-email"},
        {"username": ""},
        {"isStaff": "yes"},
        {"password": "pw-echo-" + "x" * 1020},
        {"password": "pw-echo\x00-with-nul"},
    ],
    ids=["bad-email", "bad-username", "bad-isStaff", "long-password", "nul-password"],
)
async def test_validation_errors_never_echo_the_password(
    client: httpx.AsyncClient, engine: AsyncEngine, changes: dict[str, Any]
) -> None:
    body = {**signup(password="pw-echo-secret-value"), **changes}
    response = await client.post("/users", json=body)
    assert response.status_code == 400, response.text
    assert "pw-echo" not in response.text
    assert await db_users(engine) == []


@pytest.mark.parametrize(
    "extra",
    [{"isSuperuser": True}, {"is_superuser": True}, {"is_staff": True}, {"is_active": False}],
)
async def test_register_ignores_unknown_fields_and_creates_a_common_user(
    client: httpx.AsyncClient, engine: AsyncEngine, extra: dict[str, Any]
) -> None:
    response = await client.post("/users", json={**signup(), **extra})
    assert response.status_code == 201, response.text
    assert response.json()["is_staff"] is False
    [row] = await db_users(engine)
    assert (row.is_staff, row.is_superuser, row.is_active) == (False, False, True)


# staff registration


async def test_staff_registration_without_authorization_is_refused(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    response = await register(client, isStaff=True)
    assert_error(response, 401)
    assert await db_users(engine) == []


async def test_staff_registration_with_the_staff_token_creates_staff(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    response = await register(client, headers=bearer(STAFF_TOKEN), isStaff=True)
    assert response.status_code == 201, response.text
    assert response.json()["is_staff"] is True
    [row] = await db_users(engine)
    assert (row.is_staff, row.is_superuser) == (True, False)


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer not-the-staff-token",
        f"Bearer {STAFF_TOKEN}x",
        f"Bearer{STAFF_TOKEN}",
        f"Basic {STAFF_TOKEN}",
        f"Token {STAFF_TOKEN}",
        STAFF_TOKEN,
        "Bearer ",
    ],
    ids=["wrong", "longer", "no-space", "basic", "token-scheme", "no-scheme", "empty"],
)
async def test_staff_registration_needs_exactly_the_bearer_staff_token(
    client: httpx.AsyncClient, engine: AsyncEngine, authorization: str
) -> None:
    response = await register(client, headers={"Authorization": authorization}, isStaff=True)
    assert_error(response, 401)
    assert await db_users(engine) == []


async def test_staff_token_value_is_refused_when_no_staff_token_is_configured(
    database_url: URL, tmp_path: Path, engine: AsyncEngine, superuser: Account
) -> None:
    async with client_with(database_url, tmp_path, staff_token=None) as other:
        refused = await register(other, headers=bearer(STAFF_TOKEN), isStaff=True)
        assert_error(refused, 401)
        assert [row.id for row in await db_users(engine)] == [superuser.id]

        key = await other.post("/staff-keys", json={}, headers=superuser.headers)
        assert key.status_code == 201, key.text
        accepted = await register(other, headers=bearer(key.json()["key"]), isStaff=True)
        assert accepted.status_code == 201, accepted.text
        assert accepted.json()["is_staff"] is True


# GET /users


async def test_list_users_needs_authentication(
    client: httpx.AsyncClient, customer: Account
) -> None:
    assert_error(await client.get("/users"), 401)


async def test_list_users_is_refused_to_customers(
    client: httpx.AsyncClient, customer: Account
) -> None:
    assert_error(await client.get("/users", headers=customer.headers), 403)


@pytest.mark.parametrize("role", ["staff", "superuser"])
async def test_list_users_shows_staff_every_user(
    client: httpx.AsyncClient, make_user: MakeUser, customer: Account, role: str
) -> None:
    viewer = await make_user(role)
    response = await client.get("/users", headers=viewer.headers)
    assert response.status_code == 200, response.text
    items = response.json()
    assert all(set(item) == LIST_FIELDS for item in items)
    assert {item["id"]: item["email"] for item in items} == {
        customer.id: customer.email,
        viewer.id: viewer.email,
    }


async def test_list_users_orders_by_tickets_count_then_id(
    client: httpx.AsyncClient, make_user: MakeUser, staff: Account
) -> None:
    a, b, c, d = [await make_user() for _ in range(4)]
    for account, count in ((b, 2), (c, 2), (d, 3), (a, 1)):
        for _ in range(count):
            await open_ticket(client, account)
    response = await client.get("/users", headers=staff.headers)
    assert response.status_code == 200, response.text
    assert [(item["id"], item["tickets_count"]) for item in response.json()] == [
        (d.id, 3),
        (b.id, 2),
        (c.id, 2),
        (a.id, 1),
        (staff.id, 0),
    ]


# GET /users/{id}


@pytest.mark.parametrize(("role", "status"), [(None, 401), ("customer", 403)])
async def test_user_detail_is_for_staff_only(
    client: httpx.AsyncClient, make_user: MakeUser, role: str | None, status: int
) -> None:
    target = await make_user()
    headers = (await make_user(role)).headers if role else {}
    assert_error(await client.get(f"/users/{target.id}", headers=headers), status)


async def test_user_detail_lists_the_users_tickets_with_their_author(
    client: httpx.AsyncClient, customer: Account, other_customer: Account, staff: Account
) -> None:
    first = await open_ticket(client, customer, topic="first")
    await open_ticket(client, other_customer, topic="not theirs")
    second = await open_ticket(client, customer, topic="second")
    response = await client.get(f"/users/{customer.id}", headers=staff.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == DETAIL_FIELDS
    assert (body["id"], body["email"], body["is_staff"]) == (customer.id, customer.email, False)
    assert (body["is_active"], body["tickets_count"]) == (True, 2)
    assert [(t["id"], t["topic"], t["author"]) for t in body["tickets"]] == [
        (first, "first", customer.email),
        (second, "second", customer.email),
    ]


@pytest.mark.parametrize(
    ("user_id", "status"),
    [("123456", 404), ("0", 404), ("abc", 400), ("99999999999999999999", 404)],
)
async def test_user_detail_of_a_missing_or_malformed_id(
    client: httpx.AsyncClient, staff: Account, user_id: str, status: int
) -> None:
    response = await client.get(f"/users/{user_id}", headers=staff.headers)
    assert response.status_code == status, response.text
    if status == 400:
        assert [error["loc"] for error in response.json()["detail"]] == [["path", "user_id"]]
    else:
        assert_error(response, status)


# /users/me


async def test_me_needs_authentication(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/users/me"), 401)
    assert_error(await client.patch("/users/me", json={"username": "x"}), 401)


async def test_me_returns_the_callers_own_account(
    client: httpx.AsyncClient, customer: Account, other_customer: Account
) -> None:
    response = await client.get("/users/me", headers=customer.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == PUBLIC_FIELDS
    assert (body["id"], body["email"], body["is_staff"]) == (customer.id, customer.email, False)
    assert RFC3339_UTC.match(body["created_at"])


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
async def test_me_can_change_the_username(
    client: httpx.AsyncClient, engine: AsyncEngine, customer: Account, method: str
) -> None:
    response = await client.request(
        method, "/users/me", json={"username": "new"}, headers=customer.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["username"] == "new"
    assert (await db_user(engine, customer.id)).username == "new"
    assert (await client.get("/users/me", headers=customer.headers)).json()["username"] == "new"


@pytest.mark.parametrize(
    "extra", [{}, {"current_password": "wrong password"}], ids=["no-current", "wrong-current"]
)
async def test_me_password_change_needs_the_right_current_password(
    client: httpx.AsyncClient, engine: AsyncEngine, customer: Account, extra: dict[str, str]
) -> None:
    before = await db_user(engine, customer.id)
    response = await client.patch(
        "/users/me",
        json={"password": NEW_PASSWORD, "username": "changed", **extra},
        headers=customer.headers,
    )
    assert_error(response, 400)
    assert "set-cookie" not in response.headers
    assert await db_user(engine, customer.id) == before
    assert (await login(client, customer.email, PASSWORD)).status_code == 200
    assert (await login(client, customer.email, NEW_PASSWORD)).status_code == 404
    assert (await client.get("/users/me", headers=customer.headers)).status_code == 200


async def test_me_password_change_issues_a_new_token_and_revokes_the_old(
    client: httpx.AsyncClient, customer: Account
) -> None:
    response = await client.patch(
        "/users/me",
        json={"password": NEW_PASSWORD, "current_password": PASSWORD},
        headers=customer.headers,
    )
    new_token = response.cookies.get("token")
    client.cookies.clear()
    assert response.status_code == 200, response.text
    assert response.json()["id"] == customer.id
    assert new_token
    assert_error(await client.get("/users/me", headers=customer.headers), 401)
    assert (await client.get("/users/me", headers=bearer(new_token))).status_code == 200
    assert (await login(client, customer.email, NEW_PASSWORD)).status_code == 200
    assert_error(await login(client, customer.email, PASSWORD), 404)


# PATCH and PUT /users/{id}

METHODS = pytest.mark.parametrize("method", ["PATCH", "PUT"])


@METHODS
@pytest.mark.parametrize(("role", "status"), [(None, 401), ("customer", 403)])
async def test_update_user_is_for_staff_only(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    make_user: MakeUser,
    method: str,
    role: str | None,
    status: int,
) -> None:
    target = await make_user()
    actor = await make_user(role) if role else None
    before = await db_user(engine, target.id)
    response = await update_user(client, actor, target.id, {"username": "x"}, method)
    assert_error(response, status)
    assert await db_user(engine, target.id) == before


@METHODS
async def test_staff_can_rename_a_customer(
    client: httpx.AsyncClient, engine: AsyncEngine, staff: Account, customer: Account, method: str
) -> None:
    response = await update_user(client, staff, customer.id, {"username": "renamed"}, method)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == DETAIL_FIELDS
    assert (body["id"], body["username"], body["is_active"]) == (customer.id, "renamed", True)
    assert (await db_user(engine, customer.id)).username == "renamed"


@METHODS
async def test_staff_can_block_a_customer(
    client: httpx.AsyncClient, engine: AsyncEngine, staff: Account, customer: Account, method: str
) -> None:
    response = await update_user(client, staff, customer.id, {"is_active": False}, method)
    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is False
    assert (await db_user(engine, customer.id)).is_active is False
    assert_error(await client.get("/tickets", headers=customer.headers), 401)
    assert_error(await login(client, customer.email, PASSWORD), 404)


async def test_unblocking_does_not_revive_old_tokens(
    client: httpx.AsyncClient, staff: Account, customer: Account
) -> None:
    assert (await update_user(client, staff, customer.id, {"is_active": False})).status_code == 200
    unblocked = await update_user(client, staff, customer.id, {"is_active": True})
    assert unblocked.status_code == 200, unblocked.text
    assert unblocked.json()["is_active"] is True
    assert_error(await client.get("/tickets", headers=customer.headers), 401)
    token = await login_token(client, customer.email)
    assert (await client.get("/tickets", headers=bearer(token))).status_code == 200


@METHODS
@pytest.mark.parametrize("target_role", ["staff", "superuser"])
@pytest.mark.parametrize("body", [{"username": "x"}, {"is_active": False}])
async def test_staff_cannot_change_staff_or_superusers(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    make_user: MakeUser,
    staff: Account,
    method: str,
    target_role: str,
    body: dict[str, Any],
) -> None:
    target = await make_user(target_role)
    before = await db_user(engine, target.id)
    assert_error(await update_user(client, staff, target.id, body, method), 403)
    assert await db_user(engine, target.id) == before
    assert (await client.get("/users/me", headers=target.headers)).status_code == 200


@METHODS
@pytest.mark.parametrize("is_staff", [True, False])
async def test_staff_cannot_set_is_staff(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    staff: Account,
    customer: Account,
    method: str,
    is_staff: bool,
) -> None:
    before = await db_user(engine, customer.id)
    body = {"is_staff": is_staff, "username": "promoted"}
    assert_error(await update_user(client, staff, customer.id, body, method), 403)
    assert await db_user(engine, customer.id) == before


@METHODS
async def test_superuser_can_grant_and_withdraw_staff_status(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    superuser: Account,
    customer: Account,
    method: str,
) -> None:
    granted = await update_user(client, superuser, customer.id, {"is_staff": True}, method)
    assert granted.status_code == 200, granted.text
    assert granted.json()["is_staff"] is True
    assert (await db_user(engine, customer.id)).is_staff is True
    assert (await client.get("/users", headers=customer.headers)).status_code == 200

    withdrawn = await update_user(client, superuser, customer.id, {"is_staff": False}, method)
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["is_staff"] is False
    assert (await db_user(engine, customer.id)).is_staff is False
    assert_error(await client.get("/users", headers=customer.headers), 403)


@METHODS
@pytest.mark.parametrize("actor_role", ["staff", "superuser"])
@pytest.mark.parametrize("value", [True, False])
async def test_is_superuser_can_never_be_changed(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    make_user: MakeUser,
    customer: Account,
    method: str,
    actor_role: str,
    value: bool,
) -> None:
    actor = await make_user(actor_role)
    before = await db_user(engine, customer.id)
    body = {"is_superuser": value, "username": "changed"}
    assert_error(await update_user(client, actor, customer.id, body, method), 403)
    assert await db_user(engine, customer.id) == before


async def test_is_superuser_null_is_refused_too(
    client: httpx.AsyncClient, engine: AsyncEngine, staff: Account, customer: Account
) -> None:
    """The schema says of is_superuser: "never changeable through the API: any value is a 403"."""
    before = await db_user(engine, customer.id)
    body = {"is_superuser": None, "username": "changed"}
    assert_error(await update_user(client, staff, customer.id, body), 403)
    assert await db_user(engine, customer.id) == before


@METHODS
async def test_superuser_cannot_block_themselves(
    client: httpx.AsyncClient, engine: AsyncEngine, superuser: Account, method: str
) -> None:
    before = await db_user(engine, superuser.id)
    response = await update_user(client, superuser, superuser.id, {"is_active": False}, method)
    assert_error(response, 409)
    assert await db_user(engine, superuser.id) == before
    assert (await client.get("/users/me", headers=superuser.headers)).status_code == 200


async def test_staff_cannot_block_themselves(
    client: httpx.AsyncClient, engine: AsyncEngine, staff: Account
) -> None:
    before = await db_user(engine, staff.id)
    response = await update_user(client, staff, staff.id, {"is_active": False})
    # Staff accounts are changed by superusers only, their own included.
    assert_error(response, 403)
    assert await db_user(engine, staff.id) == before
    assert (await client.get("/users/me", headers=staff.headers)).status_code == 200


@METHODS
async def test_update_of_an_unknown_user_is_not_found(
    client: httpx.AsyncClient, engine: AsyncEngine, staff: Account, method: str
) -> None:
    response = await update_user(client, staff, staff.id + 1000, {"username": "ghost"}, method)
    assert_error(response, 404)
    assert [row.username for row in await db_users(engine)] == ["someone"]


# trial addresses: the reserved names a desk takes (TRIAL_DOMAINS), checked in one place


def test_an_address_under_a_reserved_name_is_taken_only_when_the_desk_names_it() -> None:
    from ticketdesk.schemas import SPECIAL_USE, TRIAL_NAMES, email_address, normalize_email

    assert email_address(" Ann@Lab.TEST ", trial_domains={"test"}) == "ann@lab.test"
    assert email_address("ann@lab.example", trial_domains={"example"}) == "ann@lab.example"
    assert email_address("ann@printer.local", trial_domains={"local"}) == "ann@printer.local"
    assert email_address("ann@dev.localhost", trial_domains={"localhost"}) == "ann@dev.localhost"
    for address, names in [
        ("ann@lab.test", {"example"}),
        ("ann@lab.example", {"test"}),
        ("ann@lab.\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45", set()),  # "example", full-width
        ("ann@printer.local", {"test", "example"}),
        ("ann@dev.localhost", set()),
        ("ann@lab.invalid", TRIAL_NAMES),
        ("ann@hidden.onion", TRIAL_NAMES),
    ]:
        with pytest.raises(ValueError, match="special-use or reserved name"):
            email_address(address, trial_domains=names)
    with pytest.raises(ValueError, match="should have a period"):
        email_address("ann@localhost", trial_domains=TRIAL_NAMES)
    assert SPECIAL_USE.endswith("cannot be used with email.")
    # Signing in finds an account whatever the desk takes now.
    assert normalize_email(" Ann@Printer.LOCAL ") == "ann@printer.local"


def test_trial_domains_names_only_the_reserved_trial_names() -> None:
    from pydantic import ValidationError

    from ticketdesk.settings import Settings

    assert Settings(_env_file=None).trial_domain_names == {"test", "example"}
    spelled = Settings(_env_file=None, trial_domains=" .Local, localhost,")
    assert spelled.trial_domains == "local,localhost"
    assert Settings(_env_file=None, trial_domains="").trial_domain_names == frozenset()
    for wrong in ("onion", "com", "test,invalid"):
        with pytest.raises(ValidationError, match="only example, local, localhost, test"):
            Settings(_env_file=None, trial_domains=wrong)


async def test_registration_takes_test_and_example_addresses_and_refuses_local_ones(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    for n, email in enumerate(["tess@lab.test", "erik@lab.example"]):
        response = await register(client, email=email, username=f"n{n}")
        assert response.status_code == 201, response.text
    for email in ("lou@printer.local", "hal@dev.localhost"):
        response = await register(client, email=email)
        assert_error(response, 400)
        assert "special-use or reserved name" in response.json()["detail"]
    assert_validation_error(await register(client, email="ivy@lab.invalid"), "email")
    assert [row.email for row in await db_users(engine)] == ["tess@lab.test", "erik@lab.example"]


async def test_trial_domains_can_take_local_addresses_and_refuse_test_ones(
    database_url: URL, tmp_path: Path, engine: AsyncEngine
) -> None:
    async with client_with(database_url, tmp_path, trial_domains="local,localhost") as client:
        assert (await register(client, email="lou@printer.local")).status_code == 201
        assert (await register(client, email="hal@dev.localhost")).status_code == 201
        for email in ("tess@lab.test", "erik@lab.example"):
            response = await register(client, email=email)
            assert_error(response, 400)
            assert "special-use or reserved name" in response.json()["detail"]
    assert [row.email for row in await db_users(engine)] == [
        "lou@printer.local",
        "hal@dev.localhost",
    ]


async def test_a_first_mail_from_an_address_the_desk_does_not_take_makes_no_account(
    database_url: URL, tmp_path: Path, engine: AsyncEngine
) -> None:
    from conftest import make_settings
    from ticketdesk.attachments.storage import LocalStorage
    from ticketdesk.db import open_database
    from ticketdesk.mail import inbound, receive

    raw = (
        b"From: Tess <tess@lab.test>\r\nTo: support@support.example.com\r\n"
        b"Subject: The printer\r\nMessage-ID: <m1@lab.test>\r\n\r\nIt jams.\r\n"
    )
    mail = inbound.parse(raw)
    assert mail.sender == "tess@lab.test"
    storage = LocalStorage(tmp_path / "data" / "attachments")
    outcomes = []
    for trial_domains in ("local", "test"):
        settings = make_settings(
            database_url,
            tmp_path,
            trial_domains=trial_domains,
            mail_from="Support <support@support.example.com>",
        )
        database = await open_database(settings)
        try:
            async with database.session() as db:
                outcomes.append((await receive.receive(db, storage, settings, mail, raw)).outcome)
        except receive.Refused as exc:
            outcomes.append(str(exc))
        finally:
            await database.close(1.0)
    assert outcomes == [
        "tess@lab.test: The part after the @-sign is a special-use or reserved name that "
        "cannot be used with email.",
        "opened",
    ]
    assert [row.email for row in await db_users(engine)] == ["tess@lab.test"]
