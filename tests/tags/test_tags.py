"""Tags: agents add, set and remove them on tickets; lists filter by them; superusers rename,
merge and remove them everywhere; every change is one staff event; customers never see them."""

from __future__ import annotations

import httpx
import pytest

from conftest import Account, open_ticket
from ticketdesk.tags import policy


async def add(
    client: httpx.AsyncClient, who: Account, ticket_id: int, *names: str
) -> httpx.Response:
    return await client.post(
        f"/tickets/{ticket_id}/tags", json={"tags": list(names)}, headers=who.headers
    )


async def tags_of(client: httpx.AsyncClient, who: Account, ticket_id: int) -> list[str]:
    response = await client.get(f"/tickets/{ticket_id}", headers=who.headers)
    assert response.status_code == 200, response.text
    tags: list[str] = response.json()["tags"]
    return tags


async def tag_events(client: httpx.AsyncClient, who: Account, ticket_id: int) -> list[dict]:
    history = await client.get(f"/tickets/{ticket_id}/events", headers=who.headers)
    assert history.status_code == 200, history.text
    return [event for event in history.json() if event["kind"] == "tags"]


async def listed(client: httpx.AsyncClient, who: Account, query: str) -> list[int]:
    response = await client.get(f"/tickets?{query}", headers=who.headers)
    assert response.status_code == 200, response.text
    return sorted(ticket["id"] for ticket in response.json())


async def test_an_agent_tags_a_ticket_and_the_names_are_normalized(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    response = await add(client, staff, ticket_id, "  VIP ", "billing", "region:EU", "vip")
    assert response.status_code == 200, response.text
    assert response.json() == {"tags": ["billing", "region:eu", "vip"]}
    assert await tags_of(client, staff, ticket_id) == ["billing", "region:eu", "vip"]
    listed_tickets = (await client.get("/tickets", headers=staff.headers)).json()
    assert listed_tickets[0]["tags"] == ["billing", "region:eu", "vip"]
    again = await add(client, staff, ticket_id, "vip")  # held already: no change, no event
    assert again.json() == {"tags": ["billing", "region:eu", "vip"]}
    events = await tag_events(client, staff, ticket_id)
    assert [(e["before"], e["after"]) for e in events] == [
        ({"tags": []}, {"tags": ["billing", "region:eu", "vip"]})
    ]
    assert events[0]["actor_id"] == staff.id


async def test_customers_never_see_tags(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    assert (await add(client, staff, ticket_id, "angry")).status_code == 200
    own = (await client.get(f"/tickets/{ticket_id}", headers=customer.headers)).json()
    assert "tags" not in own
    own_list = (await client.get("/tickets", headers=customer.headers)).text
    assert "tags" not in own_list and "angry" not in own_list
    history = (await client.get(f"/tickets/{ticket_id}/events", headers=customer.headers)).text
    assert "angry" not in history and '"tags"' not in history
    for method, path, body in [
        ("GET", f"/tickets/{ticket_id}/tags", None),
        ("POST", f"/tickets/{ticket_id}/tags", {"tags": ["mine"]}),
        ("PUT", f"/tickets/{ticket_id}/tags", {"tags": []}),
        ("DELETE", f"/tickets/{ticket_id}/tags/angry", None),
        ("GET", "/tags", None),
        ("PATCH", "/tags/angry", {"name": "calm"}),
        ("DELETE", "/tags/angry", None),
    ]:
        response = await client.request(method, path, json=body, headers=customer.headers)
        assert response.status_code == 403, (method, path, response.text)
    filtered = await client.get("/tickets?tag=angry", headers=customer.headers)
    assert filtered.status_code == 403
    assert await tags_of(client, staff, ticket_id) == ["angry"]


@pytest.mark.parametrize(
    "bad",
    ["", "   ", "a b", "bad!", "-lead", "trail-", "x" * 41, "comma,tag", "new\nline", "a/b"],
)
async def test_a_bad_tag_is_refused_with_the_rule_and_changes_nothing(
    client: httpx.AsyncClient, customer: Account, staff: Account, bad: str
) -> None:
    ticket_id = await open_ticket(client, customer)
    assert (await add(client, staff, ticket_id, "kept")).status_code == 200
    response = await add(client, staff, ticket_id, "fine", bad)
    assert response.status_code == 400, response.text
    assert "tags" in response.text and "letters or digits" in response.text
    assert await tags_of(client, staff, ticket_id) == ["kept"]
    assert len(await tag_events(client, staff, ticket_id)) == 1


async def test_a_ticket_holds_at_most_fifty_tags(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    fifty = [f"t{n}" for n in range(50)]
    assert (await add(client, staff, ticket_id, *fifty, *fifty)).status_code == 200  # 100 given
    one_more = await add(client, staff, ticket_id, "t50")
    assert one_more.status_code == 400
    assert "at most 50" in one_more.json()["detail"]
    assert await tags_of(client, staff, ticket_id) == sorted(fifty)
    too_many = await client.put(
        f"/tickets/{ticket_id}/tags",
        json={"tags": [f"u{n}" for n in range(51)]},
        headers=staff.headers,
    )
    assert too_many.status_code == 400
    assert await tags_of(client, staff, ticket_id) == sorted(fifty)


async def test_set_and_remove(client: httpx.AsyncClient, customer: Account, staff: Account) -> None:
    ticket_id = await open_ticket(client, customer)
    await add(client, staff, ticket_id, "a", "b")
    replaced = await client.put(
        f"/tickets/{ticket_id}/tags", json={"tags": ["c", "B"]}, headers=staff.headers
    )
    assert replaced.json() == {"tags": ["b", "c"]}
    removed = await client.delete(f"/tickets/{ticket_id}/tags/B", headers=staff.headers)
    assert removed.json() == {"tags": ["c"]}
    absent = await client.delete(f"/tickets/{ticket_id}/tags/zzz", headers=staff.headers)
    assert absent.json() == {"tags": ["c"]}
    got = await client.get(f"/tickets/{ticket_id}/tags", headers=staff.headers)
    assert got.json() == {"tags": ["c"]}
    events = await tag_events(client, staff, ticket_id)
    assert [e["after"]["tags"] for e in events] == [["a", "b"], ["b", "c"], ["c"]]
    missing = await add(client, staff, 999999, "a")
    assert missing.status_code == 404


async def test_lists_filter_by_all_of_some_tags_and_none_of_others(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    first = await open_ticket(client, customer, topic="one")
    second = await open_ticket(client, customer, topic="two")
    third = await open_ticket(client, customer, topic="three")
    await add(client, staff, first, "billing", "vip")
    await add(client, staff, second, "billing")
    assert await listed(client, staff, "tag=billing") == [first, second]
    assert await listed(client, staff, "tag=billing&tag=VIP") == [first]
    assert await listed(client, staff, "not_tag=vip") == [second, third]
    assert await listed(client, staff, "-tag=billing") == [third]
    assert await listed(client, staff, "tag=billing&-tag=vip") == [second]
    assert await listed(client, staff, "tag=nothing") == []
    bad = await client.get("/tickets?tag=no%20spaces", headers=staff.headers)
    assert bad.status_code == 400 and "tag" in bad.text
    many = "&".join(f"tag=t{n}" for n in range(11))
    assert (await client.get(f"/tickets?{many}", headers=staff.headers)).status_code == 400


async def test_tags_in_use_with_counts_and_completion(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    tickets = [await open_ticket(client, customer, topic=f"t{n}") for n in range(3)]
    for ticket_id in tickets:
        await add(client, staff, ticket_id, "billing")
    await add(client, staff, tickets[0], "bug")
    await add(client, staff, tickets[1], "urgent")
    await client.delete(f"/tickets/{tickets[1]}/tags/urgent", headers=staff.headers)
    everything = (await client.get("/tags", headers=staff.headers)).json()
    assert everything == [{"name": "billing", "tickets": 3}, {"name": "bug", "tickets": 1}]
    typed = (await client.get("/tags?prefix=bu", headers=staff.headers)).json()
    assert typed == [{"name": "bug", "tickets": 1}]
    assert (await client.get("/tags?prefix=Bi&limit=1", headers=staff.headers)).json() == [
        {"name": "billing", "tickets": 3}
    ]


async def test_a_superuser_renames_and_merges_a_tag_everywhere(
    client: httpx.AsyncClient, customer: Account, staff: Account, superuser: Account
) -> None:
    both = await open_ticket(client, customer, topic="both")
    old_only = await open_ticket(client, customer, topic="old")
    await add(client, staff, both, "refund", "refunds", "vip")
    await add(client, staff, old_only, "refunds")
    refused = await client.patch("/tags/refunds", json={"name": "refund"}, headers=staff.headers)
    assert refused.status_code == 403
    merged = await client.patch("/tags/refunds", json={"name": "Refund"}, headers=superuser.headers)
    assert merged.status_code == 200, merged.text
    assert merged.json() == {"name": "refund", "tickets": 2}
    assert await tags_of(client, staff, both) == ["refund", "vip"]
    assert await tags_of(client, staff, old_only) == ["refund"]
    last = (await tag_events(client, staff, both))[-1]
    assert last["before"] == {"tags": ["refund", "refunds", "vip"]}
    assert last["after"] == {"tags": ["refund", "vip"]}
    assert last["actor_id"] == superuser.id
    renamed = await client.patch("/tags/vip", json={"name": "gold"}, headers=superuser.headers)
    assert renamed.json() == {"name": "gold", "tickets": 1}
    assert await tags_of(client, staff, both) == ["gold", "refund"]
    assert (await tag_events(client, staff, both))[-1]["after"] == {"tags": ["gold", "refund"]}
    names = [tag["name"] for tag in (await client.get("/tags", headers=staff.headers)).json()]
    assert names == ["refund", "gold"]
    unknown = await client.patch("/tags/nope", json={"name": "x"}, headers=superuser.headers)
    assert unknown.status_code == 404


async def test_a_superuser_removes_a_tag_everywhere(
    client: httpx.AsyncClient, customer: Account, staff: Account, superuser: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    await add(client, staff, ticket_id, "spam", "keep")
    assert (await client.delete("/tags/spam", headers=staff.headers)).status_code == 403
    gone = await client.delete("/tags/spam", headers=superuser.headers)
    assert gone.status_code == 204
    assert await tags_of(client, staff, ticket_id) == ["keep"]
    last = (await tag_events(client, staff, ticket_id))[-1]
    assert (last["before"], last["after"]) == ({"tags": ["keep", "spam"]}, {"tags": ["keep"]})
    assert (await client.delete("/tags/spam", headers=superuser.headers)).status_code == 404


async def test_the_feed_carries_tag_changes_to_agents(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    await add(client, staff, ticket_id, "feed")
    feed = (await client.get("/events", headers=staff.headers)).json()
    assert [e["after"] for e in feed if e["kind"] == "tags"] == [{"tags": ["feed"]}]


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("café", "café"),
        ("cafe\u0301", "café"),  # decomposed, as some keyboards type it: composed
        ("हिन्दी", "हिन्दी"),  # vowel signs belong to their letters
        ("ÄRGER", "ärger"),
        ("日本", "日本"),
        (" Region:EU ", "region:eu"),
    ],
)
def test_letters_of_any_script_with_their_marks(given: str, kept: str) -> None:
    assert policy.normalize(given) == kept


def test_a_refusal_names_what_was_given() -> None:
    with pytest.raises(ValueError, match="'bad🔥' is not a tag"):
        policy.normalize("bad🔥")
