"""The agent console and the customer's pages as a help desk: one action to answer and
resolve, who is waiting on whom, people's names, search across views, and forms whose
mistakes keep what was typed. Over HTTP, on both backends (the browser tests are in
`test_pages_desk_browser.py`)."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from conftest import Account, MakeUser, open_ticket

SAME_SITE = {"Origin": "http://testserver"}


def as_user(client: httpx.AsyncClient, account: Account) -> httpx.AsyncClient:
    client.cookies.set("token", account.token)
    return client


async def ticket_json(client: httpx.AsyncClient, staff: Account, ticket_id: int) -> dict:
    response = await client.get(f"/tickets/{ticket_id}", headers=staff.headers)
    assert response.status_code == 200
    body: dict = response.json()
    return body


async def answer(
    client: httpx.AsyncClient, ticket_id: int, text: str, **fields: str
) -> httpx.Response:
    return await client.post(
        f"/app/tickets/{ticket_id}/messages",
        data={"message": text, **fields},
        files={"files": ("", b"", "application/octet-stream")},
        headers=SAME_SITE,
    )


async def test_send_and_resolve_is_one_post_that_also_takes_the_ticket(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    customer = await make_user("customer", username="Carla")
    agent = await make_user("staff", username="Bruno")
    ticket_id = await open_ticket(client, customer, topic="Invoice wrong")
    as_user(client, agent)
    page = await client.get(f"/app/tickets/{ticket_id}")
    assert 'name="then" value="resolved"' in page.text
    assert re.search(r'name="assign"[^>]*checked', page.text)  # ticked: ASSIGN_ON_REPLY
    sent = await answer(client, ticket_id, "Refunded.", then="resolved", assign="1")
    assert sent.status_code == 303
    ticket = await ticket_json(client, agent, ticket_id)
    assert ticket["status"] == "resolved"
    assert ticket["assignee_id"] == agent.id
    events = await client.get(f"/tickets/{ticket_id}/events", headers=agent.headers)
    kinds = [event["kind"] for event in events.json()]
    assert kinds.count("status") == 1 and kinds.count("assignee") == 1


async def test_a_plain_send_keeps_the_status_and_an_unticked_box_keeps_it_unassigned(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    as_user(client, staff)
    assert (await answer(client, ticket_id, "On it.", then="")).status_code == 303
    ticket = await ticket_json(client, staff, ticket_id)
    assert (ticket["status"], ticket["assignee_id"]) == ("pending", None)


async def test_an_internal_note_never_takes_the_ticket(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    as_user(client, staff)
    assert (await answer(client, ticket_id, "fyi", internal="1", assign="1")).status_code == 303
    assert (await ticket_json(client, staff, ticket_id))["assignee_id"] is None


async def test_the_desk_can_leave_the_assign_box_unticked(
    app: FastAPI, client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"assign_on_reply": False})
    ticket_id = await open_ticket(client, customer)
    page = await as_user(client, staff).get(f"/app/tickets/{ticket_id}")
    assert re.search(r'name="assign"[^>]*>', page.text)
    assert not re.search(r'name="assign"[^>]*checked', page.text)


async def test_a_refused_resolve_writes_nothing_and_keeps_the_typed_note(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    # A note is no response: resolving after it alone is refused, and so is the note.
    ticket_id = await open_ticket(client, customer)
    as_user(client, staff)
    refused = await answer(
        client, ticket_id, "Checked the logs <b>twice</b>", internal="1", then="resolved"
    )
    assert refused.status_code == 409
    assert "after staff have responded" in refused.text
    assert "Checked the logs &lt;b&gt;twice&lt;/b&gt;</textarea>" in refused.text
    assert 'aria-label="Main"' in refused.text  # the page, with its navigation
    messages = await client.get(f"/tickets/{ticket_id}/messages", headers=staff.headers)
    assert [m["text"] for m in messages.json()] == ["it jams"]
    assert (await ticket_json(client, staff, ticket_id))["status"] == "pending"


async def test_a_blank_reply_is_refused_beside_its_field_in_plain_words(
    client: httpx.AsyncClient, customer: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    as_user(client, customer)
    refused = await answer(client, ticket_id, "   ")
    assert refused.status_code == 400
    assert 'id="message-error"' in refused.text
    assert "The message must not be blank." in refused.text
    assert "String should" not in refused.text
    assert "My tickets" in refused.text  # navigation


async def test_a_too_large_file_says_the_limit_in_megabytes_and_keeps_the_text(
    app: FastAPI, client: httpx.AsyncClient, customer: Account
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"attachment_max_bytes": 1 << 20})
    ticket_id = await open_ticket(client, customer)
    as_user(client, customer)
    page = await client.get(f"/app/tickets/{ticket_id}")
    assert "each at most 1 MB" in page.text  # said before choosing
    refused = await client.post(
        f"/app/tickets/{ticket_id}/messages",
        data={"message": "Here is the log."},
        files={"files": ("big.log", b"x" * ((1 << 20) + 1), "text/plain")},
        headers=SAME_SITE,
    )
    assert refused.status_code == 413
    assert "each may be at most 1 MB" in refused.text
    assert "Here is the log.</textarea>" in refused.text
    assert "choose them again" in refused.text
    messages = await client.get(f"/tickets/{ticket_id}/messages", headers=customer.headers)
    assert len(messages.json()) == 1


async def test_a_long_topic_comes_back_whole_with_a_counted_reason(
    client: httpx.AsyncClient, customer: Account
) -> None:
    as_user(client, customer)
    form = await client.get("/app/tickets/new")
    assert 'maxlength="20"' not in form.text and 'data-max="20"' in form.text
    topic = "Invoice total wrong on my March bill"
    refused = await client.post(
        "/app/tickets", data={"topic": topic, "message": "See the bill."}, headers=SAME_SITE
    )
    assert refused.status_code == 400
    assert f'value="{topic}"' in refused.text
    assert "The topic may have at most 20 characters; it has 36." in refused.text
    assert "See the bill.</textarea>" in refused.text


async def test_the_customer_reads_who_is_waiting_by_who_wrote_last(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    as_user(client, customer)
    assert "Waiting for us" in (await client.get(f"/app/tickets/{ticket_id}")).text
    as_user(client, staff)
    await answer(client, ticket_id, "Which printer?")
    assert (await ticket_json(client, staff, ticket_id))["status"] == "pending"  # the API's
    as_user(client, customer)
    assert "Waiting for you" in (await client.get(f"/app/tickets/{ticket_id}")).text
    assert "Waiting for you" in (await client.get("/app/tickets")).text
    await answer(client, ticket_id, "The one on floor 2.")
    assert "Waiting for us" in (await client.get(f"/app/tickets/{ticket_id}")).text


async def test_agents_filter_the_queue_by_who_is_waiting(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    answered = await open_ticket(client, customer, topic="answered")
    waiting = await open_ticket(client, customer, topic="waiting")
    as_user(client, staff)
    await answer(client, answered, "Done?")
    await answer(client, waiting, "internal only", internal="1")
    needs_reply = await client.get("/app/queue?view=open&waiting=us")
    assert ">waiting<" in needs_reply.text and ">answered<" not in needs_reply.text
    assert "Needs reply" in needs_reply.text
    on_customer = await client.get("/app/queue?view=open&waiting=customer")
    assert ">answered<" in on_customer.text and ">waiting<" not in on_customer.text


async def test_search_looks_through_every_ticket_from_any_view(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer, topic="Fax", text="zebrafish toner")
    await client.post(
        f"/tickets/{ticket_id}/messages", json={"text": "done"}, headers=staff.headers
    )
    resolved = await client.patch(
        f"/tickets/{ticket_id}", json={"status": "resolved"}, headers=staff.headers
    )
    assert resolved.status_code == 200
    as_user(client, staff)
    found = await client.get("/app/queue?view=open&q=zebrafish")
    assert f'data-id="{ticket_id}"' in found.text
    assert "In every ticket" in found.text


async def test_a_status_filter_never_contradicts_the_view(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    await client.post(f"/tickets/{ticket_id}/messages", json={"text": "ok"}, headers=staff.headers)
    await client.patch(f"/tickets/{ticket_id}", json={"status": "resolved"}, headers=staff.headers)
    as_user(client, staff)
    page = await client.get("/app/queue?view=open&status=resolved")
    assert f'data-id="{ticket_id}"' not in page.text
    assert '<option value="resolved"' not in page.text  # not offered where it cannot hold
    everything = await client.get("/app/queue?view=all&status=resolved")
    assert f'data-id="{ticket_id}"' in everything.text


async def test_the_queue_shows_people_numbers_and_sorts_by_column(
    client: httpx.AsyncClient, make_user: MakeUser, staff: Account
) -> None:
    carla = await make_user("customer", email="carla@example.com", username="Carla Diaz")
    low = await open_ticket(client, carla, topic="low one")
    high = await open_ticket(client, carla, topic="high one")
    await client.patch(f"/tickets/{high}", json={"priority": "urgent"}, headers=staff.headers)
    await client.patch(f"/tickets/{low}", json={"priority": "low"}, headers=staff.headers)
    as_user(client, staff)
    page = await client.get("/app/queue?view=open&sort=-priority")
    assert 'title="carla@example.com">Carla Diaz<' in page.text
    assert f'<td data-label="#" class="number">{high}</td>' in page.text
    assert page.text.index(f'data-id="{high}"') < page.text.index(f'data-id="{low}"')
    ascending = await client.get("/app/queue?view=open&sort=priority")
    assert ascending.text.index(f'data-id="{low}"') < ascending.text.index(f'data-id="{high}"')
    assert 'aria-sort="ascending"' in ascending.text


async def test_every_message_names_its_author(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    carla = await make_user("customer", username="Carla Diaz")
    bruno = await make_user("staff", username="Bruno")
    ticket_id = await open_ticket(client, carla)
    as_user(client, bruno)
    await answer(client, ticket_id, "a reply")
    await answer(client, ticket_id, "a note", internal="1")
    page = await client.get(f"/app/tickets/{ticket_id}")
    authors = re.findall(r'<strong class="author">([^<]+)</strong>', page.text)
    assert authors == ["Carla Diaz", "Bruno", "Bruno"]
    assert '<span class="avatar" aria-hidden="true">CD</span>' in page.text
    as_user(client, carla)
    own = await client.get(f"/app/tickets/{ticket_id}")
    assert re.findall(r'<strong class="author">([^<]+)</strong>', own.text) == ["You", "Bruno"]
    assert "a note" not in own.text


async def test_the_cancel_button_asks_first_and_is_gone_once_resolved(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    as_user(client, customer)
    page = await client.get(f"/app/tickets/{ticket_id}")
    assert "<summary>Cancel this ticket</summary>" in page.text
    await client.post(f"/tickets/{ticket_id}/messages", json={"text": "ok"}, headers=staff.headers)
    await client.patch(f"/tickets/{ticket_id}", json={"status": "resolved"}, headers=staff.headers)
    resolved = await client.get(f"/app/tickets/{ticket_id}")
    assert "Cancel this ticket" not in resolved.text
    assert "1 (poor) to 5 (excellent)" in resolved.text


async def test_error_pages_keep_the_navigation_and_a_way_back(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    as_user(client, customer)
    missing = await client.get(
        "/app/tickets/999999", headers={"Referer": "http://testserver/app/tickets"}
    )
    assert missing.status_code == 404
    assert 'aria-label="Main"' in missing.text
    assert '<a href="/app/tickets">Go back</a>' in missing.text
    forbidden = await client.get("/app/queue")
    assert forbidden.status_code == 403
    assert "Go to your tickets" in forbidden.text
    elsewhere = await client.get("/app/nowhere", headers={"Referer": "https://evil.example/x"})
    assert "evil.example" not in elsewhere.text


async def test_a_live_page_starts_its_stream_after_what_it_shows(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    await open_ticket(client, customer)
    as_user(client, staff)
    page = await client.get("/app/queue")
    after = re.search(r'data-after="(\d+)"', page.text)
    assert after is not None
    events = await client.get("/events", headers=staff.headers)
    assert int(after.group(1)) == max(event["id"] for event in events.json())
