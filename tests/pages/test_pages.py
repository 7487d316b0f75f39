"""The browser pages over HTTP: sessions, forms from other sites, caching, errors."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from conftest import PASSWORD, Account, MakeUser, open_ticket
from ticketdesk.auth.security import create_token, decode_token
from ticketdesk.models import utcnow

SAME_SITE = {"Origin": "http://testserver"}


def sign_in_form(email: str, password: str = PASSWORD, next: str = "/app") -> dict[str, str]:
    return {"email": email, "password": password, "next": next}


async def test_signing_in_sets_the_session_and_goes_where_asked(
    client: httpx.AsyncClient, customer: Account
) -> None:
    response = await client.post(
        "/app/sign-in", data=sign_in_form(customer.email, next="/app/account"), headers=SAME_SITE
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/app/account"
    assert "token=" in response.headers["set-cookie"]
    assert "HttpOnly" in response.headers["set-cookie"]
    page = await client.get("/app/account")
    assert page.status_code == 200 and customer.email in page.text


async def test_a_wrong_password_says_so_next_to_the_form(
    client: httpx.AsyncClient, customer: Account
) -> None:
    response = await client.post(
        "/app/sign-in", data=sign_in_form(customer.email, "not it at all"), headers=SAME_SITE
    )
    assert response.status_code == 400
    assert "Wrong email or password." in response.text
    assert "token=" not in response.headers.get("set-cookie", "")


async def test_next_never_leaves_the_site(client: httpx.AsyncClient, customer: Account) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        response = await client.post(
            "/app/sign-in", data=sign_in_form(customer.email, next=target), headers=SAME_SITE
        )
        assert response.headers["location"] == "/app", target
        client.cookies.clear()


async def test_forms_from_other_sites_are_refused(
    client: httpx.AsyncClient, customer: Account
) -> None:
    # Signing someone in to the attacker's account (login CSRF) as much as writing as them.
    for origin in ("https://evil.example", "null"):
        response = await client.post(
            "/app/sign-in", data=sign_in_form(customer.email), headers={"Origin": origin}
        )
        assert response.status_code == 403
        assert "token=" not in response.headers.get("set-cookie", "")
    client.cookies.set("token", customer.token)
    ticket_id = await open_ticket(client, customer)
    response = await client.post(
        f"/app/tickets/{ticket_id}/cancel", headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403
    assert (await client.get(f"/tickets/{ticket_id}", headers=customer.headers)).json()[
        "status"
    ] == "pending"


async def test_pages_need_a_session_and_keep_the_way_back(client: httpx.AsyncClient) -> None:
    response = await client.get("/app/tickets/7?x=1")
    assert response.status_code == 303
    assert response.headers["location"] == "/?next=/app/tickets/7%3Fx%3D1"
    client.cookies.set("token", "not-a-token")
    expired = await client.get("/app/queue")
    assert expired.headers["location"].endswith("&expired=1")
    landing = await client.get("/?next=/app/queue&expired=1")
    assert "Your session expired" in landing.text


async def test_an_old_session_token_is_renewed_but_not_past_the_maximum(
    app: FastAPI, client: httpx.AsyncClient, customer: Account
) -> None:
    key = app.state.signing_key
    lifetime = app.state.settings.token_lifetime_seconds
    old, _ = create_token(user_id=customer.id, version=0, key=key, lifetime_seconds=lifetime // 3)
    client.cookies.set("token", old)
    response = await client.get("/app/tickets")
    assert response.status_code == 200
    renewed = re.search(r"token=([^;]+)", response.headers["set-cookie"])
    assert renewed is not None
    claims = decode_token(renewed.group(1), key)
    assert claims.expires_at > utcnow() + timedelta(seconds=lifetime - 60)

    maximum = app.state.settings.session_max_hours
    started = utcnow() - timedelta(hours=maximum, minutes=1)
    ancient, _ = create_token(
        user_id=customer.id,
        version=0,
        key=key,
        lifetime_seconds=lifetime // 3,
        session_started=started,
    )
    client.cookies.set("token", ancient)
    response = await client.get("/app/tickets")
    assert response.status_code == 200
    assert "set-cookie" not in response.headers


async def test_assets_are_cached_by_content_and_pages_are_not(
    client: httpx.AsyncClient, customer: Account
) -> None:
    page = await client.get("/")
    urls = re.findall(r'(?:href|src)="(/app/static/[^"]+)"', page.text)
    assert len(urls) == 3
    for url in urls:
        assert re.fullmatch(
            r"/app/static/(app\.[0-9a-f]{12}\.(css|js)|favicon\.[0-9a-f]{12}\.svg)", url
        )
        asset = await client.get(url)
        assert asset.status_code == 200
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert page.headers["cache-control"] == "no-store"
    assert (await client.get("/app/static/app.000000000000.css")).status_code == 404
    weight = len(page.content)
    for url in urls:
        weight += len((await client.get(url)).content)
    assert weight < 100_000


async def test_pages_answer_errors_as_pages(
    client: httpx.AsyncClient, customer: Account, other_customer: Account, make_user: MakeUser
) -> None:
    ticket_id = await open_ticket(client, customer)
    client.cookies.set("token", other_customer.token)
    theirs = await client.get(f"/app/tickets/{ticket_id}")
    assert theirs.status_code == 404 and "<h1>Not found</h1>" in theirs.text
    nowhere = await client.get("/app/no/such/page")
    assert nowhere.status_code == 404 and "text/html" in nowhere.headers["content-type"]
    staff_only = await client.get("/app/queue")
    assert staff_only.status_code == 403 and "<h1>Not for you</h1>" in staff_only.text


async def test_the_api_is_unchanged_beside_the_pages(
    client: httpx.AsyncClient, customer: Account
) -> None:
    assert (await client.get("/tickets", headers=customer.headers)).status_code == 200
    assert (await client.get("/nothing-here")).json() == {"detail": "Not Found"}
    api = await client.get("/time")
    assert "form-action 'none'" in api.headers["content-security-policy"]


async def test_the_queue_counts_each_view(
    client: httpx.AsyncClient, customer: Account, staff: Account, monkeypatch: Any
) -> None:
    from ticketdesk.pages import console

    for _ in range(3):
        await open_ticket(client, customer)
    mine = await open_ticket(client, customer)
    await client.patch(f"/tickets/{mine}", json={"assignee_id": staff.id}, headers=staff.headers)
    client.cookies.set("token", staff.token)

    def badges(html: str) -> dict[str, str]:
        found = re.findall(r'view=(\w+)"[^>]*>[^<]+<span class="count">([^<]+)</span>', html)
        return dict(found)

    page = await client.get("/app/queue")
    assert badges(page.text) == {"unassigned": "3", "mine": "1", "open": "4", "breaching": "0"}
    monkeypatch.setattr(console, "COUNT_CAP", 3)
    capped = badges((await client.get("/app/queue")).text)
    assert capped == {"unassigned": "2+", "mine": "1", "open": "2+", "breaching": "0"}


async def test_presence_names_the_other_agents_only(
    client: httpx.AsyncClient, customer: Account, staff: Account, make_user: MakeUser
) -> None:
    colleague = await make_user("staff", username="Bruno")
    ticket_id = await open_ticket(client, customer)
    url = f"/app/tickets/{ticket_id}/presence"
    client.cookies.set("token", colleague.token)
    assert (await client.post(url, data={"state": "typing"}, headers=SAME_SITE)).json() == []
    client.cookies.set("token", staff.token)
    others = (await client.post(url, data={"state": "viewing"}, headers=SAME_SITE)).json()
    assert others == [{"username": "Bruno", "state": "typing"}]
    bad = await client.post(url, data={"state": "dancing"}, headers=SAME_SITE)
    assert bad.status_code == 400
    client.cookies.set("token", customer.token)
    assert (await client.post(url, data={"state": "viewing"}, headers=SAME_SITE)).status_code == 403


async def test_page_writes_share_the_api_write_limit(
    database_url: Any, tmp_path: Any, engine: Any
) -> None:
    from conftest import add_account, client_with

    async with client_with(database_url, tmp_path, rate_limit_writes_per_user="2/minute") as c:
        customer = await add_account(engine, "limited@example.com")
        c.cookies.set("token", customer.token)
        form = {"topic": "Limit", "message": "one more"}
        answers = [
            (await c.post("/app/tickets", data=form, headers=SAME_SITE)).status_code
            for _ in range(3)
        ]
        assert answers == [303, 303, 429]
        assert "Slow down" in (await c.post("/app/tickets", data=form, headers=SAME_SITE)).text
