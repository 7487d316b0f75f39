"""The console's everyday work in Chromium, counted as a support lead would count it: clicks,
page loads, fetches, and what survives a mistake or a reload."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from playwright.async_api import Page, Request, expect

from test_pages_browser import (
    DESKTOP,
    PASSWORD,
    PHONE,
    chromium,
    register_staff,
    server,
    sign_in,
    sign_up,
)

pytestmark = pytest.mark.slow
__all__ = ["server"]  # the fixture, for these tests too


def customer_with_ticket(url: str, email: str, topic: str, text: str = "Please help.") -> int:
    """A customer of the API (not the browser) and a ticket of theirs: its id."""
    account = {"email": email, "username": email.split("@")[0], "password": PASSWORD}
    httpx.post(f"{url}/users", json=account)
    token = httpx.post(f"{url}/login", json={"email": email, "password": PASSWORD}).json()
    headers = {"Authorization": f"Bearer {token['token']}"}
    response = httpx.post(f"{url}/tickets", json={"topic": topic, "text": text}, headers=headers)
    assert response.status_code == 201, response.text
    ticket_id: int = response.json()["id"]
    return ticket_id


class Counter:
    """The page loads of a tab, and the clicks the test makes in it."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.loads = 0
        self.clicks = 0
        page.on("load", self._loaded)

    def _loaded(self, _page: Page) -> None:
        self.loads += 1

    async def click(self, locator: object) -> None:
        self.clicks += 1
        await locator.click()  # type: ignore[attr-defined]


async def test_the_core_task_takes_two_clicks_and_two_page_loads_after_the_queue(
    server: str,
) -> None:
    """Open the newest unassigned ticket, reply, resolve: the lead's yardstick is at most
    three clicks and two page loads after the queue."""
    register_staff(server, "agnes@example.com", username="Agnes")
    customer_with_ticket(server, "old@example.com", "Older one")
    newest = customer_with_ticket(server, "carla@example.com", "Invoice wrong")
    async with chromium() as browser:
        agent = await browser.new_page(viewport=DESKTOP)
        await sign_in(agent, server, "agnes@example.com")
        await agent.goto(server + "/app/queue?view=unassigned")
        counted = Counter(agent)
        first_row = agent.locator("#queue-rows tr").first.get_by_role("link")
        await expect(first_row).to_have_text("Invoice wrong")
        await counted.click(first_row)
        await expect(agent.get_by_role("heading", level=1)).to_have_text("Invoice wrong")
        await agent.get_by_label("Message").fill("Refunded the second charge.")
        await counted.click(agent.get_by_role("button", name="Send and resolve"))
        await expect(agent.get_by_text("Reply sent.")).to_be_visible()
        await expect(agent.get_by_label("Status")).to_have_value("resolved")
        assignee = agent.get_by_label("Assignee").locator("option:checked")
        await expect(assignee).to_have_text("Agnes")
        assert (counted.clicks, counted.loads) == (2, 2)

        # The same from the keyboard: Ctrl+Enter sends (and keeps the status).
        await agent.goto(server + "/app/queue?view=unassigned")
        counted = Counter(agent)
        await counted.click(agent.get_by_role("link", name="Older one"))
        await agent.get_by_label("Message").fill("Which invoice?")
        await agent.keyboard.press("Control+Enter")
        await expect(agent.get_by_text("Reply sent.")).to_be_visible()
        await expect(agent.get_by_label("Status")).to_have_value("pending")
        assert (counted.clicks, counted.loads) == (1, 2)

    async with httpx.AsyncClient(base_url=server) as api:
        token = (
            await api.post("/login", json={"email": "carla@example.com", "password": PASSWORD})
        ).json()["token"]
        ticket = await api.get(f"/tickets/{newest}", headers={"Authorization": f"Bearer {token}"})
        assert ticket.json()["status"] == "resolved"


async def test_a_long_topic_is_counted_not_cut_and_drafts_survive_a_reload(server: str) -> None:
    async with chromium() as browser:
        page = await browser.new_page(viewport=DESKTOP)
        await sign_up(page, server, "Nina", "nina@example.com")
        await page.goto(server + "/app/tickets/new")
        topic = "Invoice total wrong on my March bill"
        await page.get_by_label("Topic").fill(topic)
        await expect(page.get_by_label("Topic")).to_have_value(topic)  # nothing cut
        await expect(page.locator("#topic-count")).to_have_text("16 characters too many")
        await page.get_by_label("Message").fill("The total is off by 12 euros.")
        await page.reload()
        await expect(page.get_by_label("Message")).to_have_value("The total is off by 12 euros.")
        await page.get_by_role("button", name="Open ticket").click()
        await expect(page.locator("#topic-error")).to_have_text(
            "The topic may have at most 20 characters; it has 36."
        )
        await expect(page.get_by_label("Topic")).to_have_value(topic)
        await page.get_by_label("Topic").fill("March invoice")
        await expect(page.locator("#topic-count")).to_have_text("7 characters left")
        await page.get_by_role("button", name="Open ticket").click()
        await expect(page.get_by_role("heading", level=1)).to_have_text("March invoice")

        # A reply typed and not sent is there after a reload; once sent, it is gone.
        await page.get_by_label("Message").fill("Also the VAT line.")
        await page.reload()
        await expect(page.get_by_label("Message")).to_have_value("Also the VAT line.")
        await page.get_by_role("button", name="Send").click()
        await expect(page.get_by_text("Your message was sent.")).to_be_visible()
        await page.reload()
        await expect(page.get_by_label("Message")).to_have_value("")
        await page.goto(server + "/app/tickets/new")
        await expect(page.get_by_label("Message")).to_have_value("")  # that draft went too


async def test_the_queue_fetches_itself_once_per_change(server: str) -> None:
    register_staff(server, "agnes@example.com", username="Agnes")
    customer_with_ticket(server, "first@example.com", "Already here")
    async with chromium() as browser:
        agent = await browser.new_page(viewport=DESKTOP)
        await sign_in(agent, server, "agnes@example.com")
        fetched: list[str] = []

        def seen(request: Request) -> None:
            if "/app/queue" in request.url and request.resource_type == "fetch":
                fetched.append(request.url)

        agent.on("request", seen)
        await agent.goto(server + "/app/queue")
        await expect(agent.get_by_role("link", name="Already here")).to_be_visible()
        await asyncio.sleep(2)
        assert fetched == []  # opening the page brings no old events
        customer_with_ticket(server, "second@example.com", "Just came")
        await expect(agent.get_by_role("link", name="Just came")).to_be_visible(timeout=5000)
        await asyncio.sleep(1)
        assert len(fetched) == 1


async def test_on_a_phone_the_controls_come_first_and_cells_say_what_they_are(
    server: str,
) -> None:
    register_staff(server, "agnes@example.com", username="Agnes")
    ticket_id = customer_with_ticket(server, "carla@example.com", "On the go")
    async with chromium() as browser:
        agent = await browser.new_page(viewport=PHONE)
        await sign_in(agent, server, "agnes@example.com")
        labels = (
            await agent.locator("#queue-rows tr")
            .first.locator("td")
            .evaluate_all("cells => cells.map(c => getComputedStyle(c, '::before').content)")
        )
        assert labels[:4] == ['"#"', '"State"', '"Priority"', '"Topic"']
        await agent.goto(f"{server}/app/tickets/{ticket_id}")
        status = await agent.get_by_label("Status").bounding_box()
        thread = await agent.locator("#thread").bounding_box()
        assert status is not None and thread is not None
        assert status["y"] < thread["y"]
        assert status["y"] < PHONE["height"]  # on the first screen
