"""The console's tags: a ticket's tags added and taken off by form, the queue narrowed by
them, and the tags page where superusers rename, merge and remove a tag everywhere."""

from __future__ import annotations

import httpx

from conftest import Account, open_ticket
from test_pages_desk import SAME_SITE, as_user


async def tag(client: httpx.AsyncClient, staff: Account, ticket_id: int, *names: str) -> None:
    response = await client.post(
        f"/tickets/{ticket_id}/tags", json={"tags": list(names)}, headers=staff.headers
    )
    assert response.status_code == 200, response.text


async def api_tags(client: httpx.AsyncClient, staff: Account, ticket_id: int) -> list[str]:
    response = await client.get(f"/tickets/{ticket_id}/tags", headers=staff.headers)
    tags: list[str] = response.json()["tags"]
    return tags


async def test_tags_are_added_and_taken_off_by_form(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    as_user(client, staff)
    added = await client.post(
        f"/app/tickets/{ticket_id}/tags", data={"add": "Billing, vip  refund"}, headers=SAME_SITE
    )
    assert added.status_code == 303
    assert await api_tags(client, staff, ticket_id) == ["billing", "refund", "vip"]
    page = (await client.get(f"/app/tickets/{ticket_id}")).text
    assert 'aria-label="Remove tag refund"' in page
    taken = await client.post(
        f"/app/tickets/{ticket_id}/tags", data={"remove": "refund"}, headers=SAME_SITE
    )
    assert taken.status_code == 303
    assert await api_tags(client, staff, ticket_id) == ["billing", "vip"]
    bad = await client.post(
        f"/app/tickets/{ticket_id}/tags", data={"add": "fine no!"}, headers=SAME_SITE
    )
    assert bad.status_code == 400 and "letters or digits" in bad.text
    assert await api_tags(client, staff, ticket_id) == ["billing", "vip"]
    cross_site = await client.post(
        f"/app/tickets/{ticket_id}/tags",
        data={"add": "evil"},
        headers={"Origin": "https://evil.example"},
    )
    assert cross_site.status_code == 403
    assert await api_tags(client, staff, ticket_id) == ["billing", "vip"]


async def test_the_queue_is_narrowed_by_tags_and_shows_them(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    tagged = await open_ticket(client, customer, topic="Tagged one")
    await open_ticket(client, customer, topic="Plain one")
    await tag(client, staff, tagged, "vip")
    as_user(client, staff)
    everything = (await client.get("/app/queue?view=all")).text
    assert "Tagged one" in everything and "Plain one" in everything
    assert 'class="tag"' in everything
    narrowed = (await client.get("/app/queue?view=all&tags=VIP,%20nonsense!")).text
    assert "Tagged one" in narrowed and "Plain one" not in narrowed
    assert 'value="vip"' in narrowed  # the filter says what it kept
    assert "Not tags, so left out: nonsense!" in narrowed  # and what it did not
    without = (await client.get("/app/queue?view=all&tags=-vip")).text
    assert "Plain one" in without and "Tagged one" not in without
    assert 'value="-vip"' in without and "Not tags" not in without


async def test_customers_see_no_tags_on_their_pages(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    await tag(client, staff, ticket_id, "grumpy")
    as_user(client, customer)
    assert "grumpy" not in (await client.get(f"/app/tickets/{ticket_id}")).text
    assert "grumpy" not in (await client.get("/app/tickets")).text
    assert (await client.get("/app/tags")).status_code in (303, 403, 404)
    refused = await client.post(
        f"/app/tickets/{ticket_id}/tags", data={"add": "mine"}, headers=SAME_SITE
    )
    assert refused.status_code in (303, 403, 404)
    assert await api_tags(client, staff, ticket_id) == ["grumpy"]


async def test_superusers_rename_merge_and_remove_tags_on_the_tags_page(
    client: httpx.AsyncClient, customer: Account, staff: Account, superuser: Account
) -> None:
    first = await open_ticket(client, customer, topic="first")
    second = await open_ticket(client, customer, topic="second")
    await tag(client, staff, first, "refunds", "refund")
    await tag(client, staff, second, "refunds", "spam")

    as_user(client, staff)
    listed = (await client.get("/app/tags")).text
    assert "refunds" in listed and "Rename" not in listed  # agents see the tags, not the tools
    refused = await client.post(
        "/app/tags/refunds/rename", data={"name": "refund"}, headers=SAME_SITE
    )
    assert refused.status_code == 403

    as_user(client, superuser)
    merged = await client.post(
        "/app/tags/refunds/rename", data={"name": "Refund"}, headers=SAME_SITE
    )
    assert merged.status_code == 303
    after = (await client.get(merged.headers["location"])).text
    assert "refunds is now refund." in after
    assert await api_tags(client, staff, first) == ["refund"]
    assert await api_tags(client, staff, second) == ["refund", "spam"]
    removed = await client.post("/app/tags/spam/remove", headers=SAME_SITE)
    assert removed.status_code == 303
    assert await api_tags(client, staff, second) == ["refund"]
    spoofed = (await client.get("/app/tags?renamed=you%20are%20hacked&to=x")).text
    assert "hacked" not in spoofed
    # Said only where the list bears it out: refund is still there, nothing was removed.
    assert "taken off every ticket" not in (await client.get("/app/tags?removed=refund")).text
    assert "spam is taken off" in (await client.get("/app/tags?removed=spam")).text
