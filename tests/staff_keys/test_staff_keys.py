"""Staff keys: issued by superusers, each registers exactly one member of staff."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import Account, MakeUser
from ticketdesk.models import staff_keys, users

KEY_FIELDS = {"id", "created_at", "created_by", "expires_at", "used_at", "used_by"}


# helpers


async def create_key(client: httpx.AsyncClient, superuser: Account, **body: Any) -> dict[str, Any]:
    response = await client.post("/staff-keys", json=body, headers=superuser.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def register_staff(
    client: httpx.AsyncClient, key: str, email: str = "new.staff@example.com"
) -> httpx.Response:
    body = {"email": email, "password": "a fine password", "username": "new", "isStaff": True}
    return await client.post("/users", json=body, headers={"Authorization": f"Bearer {key}"})


async def rows(engine: AsyncEngine, table: Any) -> list[Row[Any]]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(table).order_by(table.c.id))).all())


async def user_ids(engine: AsyncEngine) -> list[int]:
    return [row.id for row in await rows(engine, users)]


async def set_expiry(engine: AsyncEngine, key_id: int, expires_at: datetime) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            update(staff_keys).where(staff_keys.c.id == key_id).values(expires_at=expires_at)
        )


def assert_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert set(response.json()) == {"detail"}
    assert isinstance(response.json()["detail"], str)


def in_an_hour() -> str:
    return (datetime.now(UTC) + timedelta(hours=1)).isoformat()


# who may manage keys


@pytest.mark.parametrize(("role", "status"), [(None, 401), ("customer", 403), ("staff", 403)])
@pytest.mark.parametrize("operation", ["create", "list", "delete"])
async def test_only_superusers_manage_staff_keys(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    make_user: MakeUser,
    superuser: Account,
    role: str | None,
    status: int,
    operation: str,
) -> None:
    key = await create_key(client, superuser)
    before = await rows(engine, staff_keys)
    headers = (await make_user(role)).headers if role else {}
    method, path = {
        "create": ("POST", "/staff-keys"),
        "list": ("GET", "/staff-keys"),
        "delete": ("DELETE", f"/staff-keys/{key['id']}"),
    }[operation]
    body = {} if method == "POST" else None
    response = await client.request(method, path, json=body, headers=headers)
    assert_error(response, status)
    assert key["key"] not in response.text
    assert await rows(engine, staff_keys) == before


# creating and listing


async def test_create_returns_the_key_once_with_its_record(
    client: httpx.AsyncClient, superuser: Account
) -> None:
    response = await client.post("/staff-keys", json={}, headers=superuser.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == KEY_FIELDS | {"key"}
    assert body["key"].startswith("tdsk_")
    assert len(body["key"]) > len("tdsk_") + 20
    assert body["created_by"] == superuser.id
    assert (body["expires_at"], body["used_at"], body["used_by"]) == (None, None, None)
    assert body["created_at"].endswith("Z")


async def test_create_keeps_the_expiry_in_utc(
    client: httpx.AsyncClient, superuser: Account
) -> None:
    expires_at = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    local = expires_at.astimezone(timezone(timedelta(hours=2))).isoformat()
    assert local.endswith("+02:00")
    key = await create_key(client, superuser, expires_at=local)
    assert key["expires_at"].endswith("Z")
    assert datetime.fromisoformat(key["expires_at"]) == expires_at


async def test_create_needs_no_body(
    client: httpx.AsyncClient, engine: AsyncEngine, superuser: Account
) -> None:
    response = await client.post("/staff-keys", headers=superuser.headers)
    assert response.status_code == 201, response.text
    assert response.json()["expires_at"] is None
    assert [row.id for row in await rows(engine, staff_keys)] == [response.json()["id"]]


async def test_create_refuses_an_expiry_that_is_out_of_range_in_utc(
    app: FastAPI, engine: AsyncEngine, superuser: Account
) -> None:
    """9999-12-31T23:00-05:00 is year 10000 in UTC: a bad value (400), not a server error."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.post(
            "/staff-keys",
            json={"expires_at": "9999-12-31T23:00:00-05:00"},
            headers=superuser.headers,
        )
    assert response.status_code == 400, response.text
    assert await rows(engine, staff_keys) == []


async def test_every_key_is_different(client: httpx.AsyncClient, superuser: Account) -> None:
    keys = [(await create_key(client, superuser))["key"] for _ in range(3)]
    assert len(set(keys)) == 3


async def test_list_shows_keys_without_their_secret(
    client: httpx.AsyncClient, superuser: Account
) -> None:
    first = await create_key(client, superuser)
    second = await create_key(client, superuser, expires_at=in_an_hour())
    response = await client.get("/staff-keys", headers=superuser.headers)
    assert response.status_code == 200, response.text
    listed = response.json()
    assert all(set(item) == KEY_FIELDS for item in listed)
    assert listed == [
        {field: first[field] for field in KEY_FIELDS},
        {field: second[field] for field in KEY_FIELDS},
    ]
    for key in (first["key"], second["key"]):
        assert key not in response.text
        assert key.removeprefix("tdsk_") not in response.text


async def test_the_database_keeps_only_a_hash_of_the_key(
    client: httpx.AsyncClient, engine: AsyncEngine, superuser: Account
) -> None:
    key = (await create_key(client, superuser))["key"]
    [row] = await rows(engine, staff_keys)
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert all(key.removeprefix("tdsk_") not in str(value) for value in row)


@pytest.mark.parametrize(
    "expires_at",
    [
        "2020-01-01T00:00:00Z",
        (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        (datetime.now(UTC) + timedelta(days=1)).replace(tzinfo=None).isoformat(),
        "2030-01-01",
        "soon",
        12,
    ],
    ids=["long-past", "just-past", "no-timezone", "date-only", "text", "number"],
)
async def test_create_refuses_a_past_or_unzoned_expiry(
    client: httpx.AsyncClient, engine: AsyncEngine, superuser: Account, expires_at: object
) -> None:
    response = await client.post(
        "/staff-keys", json={"expires_at": expires_at}, headers=superuser.headers
    )
    assert response.status_code == 400, response.text
    assert "key" not in response.json()
    assert await rows(engine, staff_keys) == []


@pytest.mark.parametrize("expires_at", [4102444800, 4102444800.5, "4102444800"])
async def test_create_refuses_an_expiry_in_unix_time(
    client: httpx.AsyncClient, engine: AsyncEngine, superuser: Account, expires_at: object
) -> None:
    # 2100-01-01 as a number of seconds: the schema asks for RFC 3339 text.
    response = await client.post(
        "/staff-keys", json={"expires_at": expires_at}, headers=superuser.headers
    )
    assert response.status_code == 400, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "expires_at"]
    assert await rows(engine, staff_keys) == []


# registering staff with a key


async def test_a_key_registers_a_staff_user_and_records_the_use(
    client: httpx.AsyncClient, engine: AsyncEngine, superuser: Account
) -> None:
    key = await create_key(client, superuser)
    response = await register_staff(client, key["key"])
    assert response.status_code == 201, response.text
    new_user = response.json()
    assert new_user["is_staff"] is True
    [row] = [r for r in await rows(engine, users) if r.id == new_user["id"]]
    assert (row.is_staff, row.is_superuser) == (True, False)
    [listed] = (await client.get("/staff-keys", headers=superuser.headers)).json()
    assert listed["used_by"] == new_user["id"]
    assert listed["used_at"] is not None
    assert listed["used_at"].endswith("Z")


async def test_a_key_registers_only_one_user(
    client: httpx.AsyncClient, engine: AsyncEngine, superuser: Account
) -> None:
    key = await create_key(client, superuser)
    first = await register_staff(client, key["key"], email="first@example.com")
    assert first.status_code == 201, first.text
    before = await user_ids(engine)
    assert_error(await register_staff(client, key["key"], email="second@example.com"), 401)
    assert await user_ids(engine) == before
    [listed] = (await client.get("/staff-keys", headers=superuser.headers)).json()
    assert listed["used_by"] == first.json()["id"]


async def test_an_expired_key_is_refused(
    client: httpx.AsyncClient, engine: AsyncEngine, superuser: Account
) -> None:
    key = await create_key(client, superuser, expires_at=in_an_hour())
    await set_expiry(engine, key["id"], datetime.now(UTC) - timedelta(seconds=1))
    assert_error(await register_staff(client, key["key"]), 401)
    assert await user_ids(engine) == [superuser.id]
    [row] = await rows(engine, staff_keys)
    assert (row.used_at, row.used_by) == (None, None)


async def test_a_key_works_until_its_expiry(
    client: httpx.AsyncClient, engine: AsyncEngine, superuser: Account
) -> None:
    key = await create_key(client, superuser, expires_at=in_an_hour())
    await set_expiry(engine, key["id"], datetime.now(UTC) + timedelta(minutes=1))
    response = await register_staff(client, key["key"])
    assert response.status_code == 201, response.text
    assert response.json()["is_staff"] is True


async def test_a_deleted_key_is_refused(
    client: httpx.AsyncClient, engine: AsyncEngine, superuser: Account
) -> None:
    key = await create_key(client, superuser)
    response = await client.delete(f"/staff-keys/{key['id']}", headers=superuser.headers)
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert (await client.get("/staff-keys", headers=superuser.headers)).json() == []
    assert_error(await register_staff(client, key["key"]), 401)
    assert await user_ids(engine) == [superuser.id]


@pytest.mark.parametrize(
    ("key_id", "status"),
    [("123456", 404), ("0", 404), ("99999999999999999999", 404), ("abc", 400)],
)
async def test_delete_of_a_missing_or_malformed_id(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    superuser: Account,
    key_id: str,
    status: int,
) -> None:
    await create_key(client, superuser)
    before = await rows(engine, staff_keys)
    response = await client.delete(f"/staff-keys/{key_id}", headers=superuser.headers)
    assert response.status_code == status, response.text
    if status == 400:
        assert [error["loc"] for error in response.json()["detail"]] == [["path", "key_id"]]
    else:
        assert_error(response, status)
    assert await rows(engine, staff_keys) == before


async def test_a_duplicate_email_does_not_spend_the_key(
    client: httpx.AsyncClient, engine: AsyncEngine, superuser: Account, customer: Account
) -> None:
    key = await create_key(client, superuser)
    assert_error(await register_staff(client, key["key"], email=customer.email.upper()), 400)
    assert await user_ids(engine) == [superuser.id, customer.id]
    [row] = await rows(engine, staff_keys)
    assert (row.used_at, row.used_by) == (None, None)
    response = await register_staff(client, key["key"], email="fresh@example.com")
    assert response.status_code == 201, response.text
    assert response.json()["is_staff"] is True
