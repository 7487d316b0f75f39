"""Tagging in the console, in Chromium: add tags as typed (with completion from the tags in
use), take one off, follow a tag to the queue narrowed to it; the customer sees none."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from test_pages_browser import DESKTOP, chromium, register_staff, server, sign_in
from test_pages_desk_browser import customer_with_ticket

pytestmark = pytest.mark.slow
__all__ = ["server"]  # the fixture, for these tests too


async def test_an_agent_tags_a_ticket_and_follows_a_tag_to_the_queue(server: str) -> None:
    register_staff(server, "agnes@example.com", username="Agnes")
    tagged = customer_with_ticket(server, "carla@example.com", "Invoice wrong")
    other = customer_with_ticket(server, "dan@example.com", "Login fails")
    async with chromium() as browser:
        agent = await browser.new_page(viewport=DESKTOP)
        await sign_in(agent, server, "agnes@example.com")

        await agent.goto(f"{server}/app/tickets/{other}")
        await agent.get_by_label("Add tags").fill("login")
        await agent.get_by_role("button", name="Add", exact=True).click()
        await expect(agent.locator("#ticket-tags")).to_contain_text("login")

        await agent.goto(f"{server}/app/tickets/{tagged}")
        await expect(agent.locator("#ticket-tags")).to_have_text("No tags.")
        # What is in use already is offered as the agent types.
        await expect(agent.locator("#tag-names option[value='login']")).to_have_count(1)
        await agent.get_by_label("Add tags").fill("Billing, VIP refund")
        await agent.get_by_role("button", name="Add", exact=True).click()
        chips = agent.locator("#ticket-tags .tag a")
        await expect(chips).to_have_text(["billing", "refund", "vip"])
        history = agent.locator(".history")
        await expect(history).to_contain_text("added the tags billing, refund, vip")

        await agent.get_by_role("button", name="Remove tag refund").click()
        await expect(chips).to_have_text(["billing", "vip"])
        await expect(history).to_contain_text("removed the tags refund")

        await agent.get_by_label("Add tags").fill("no spaces!")
        await agent.get_by_role("button", name="Add", exact=True).click()
        await expect(agent.get_by_text("letters or digits")).to_be_visible()
        await agent.go_back()

        await agent.goto(f"{server}/app/tickets/{tagged}")
        await chips.filter(has_text="vip").click()
        rows = agent.locator("#queue-rows tr")
        await expect(rows).to_have_count(1)
        await expect(rows.first.get_by_role("link").first).to_have_text("Invoice wrong")
        await expect(agent.get_by_label("Tags")).to_have_value("vip")
        await agent.get_by_label("Tags").fill("")
        await agent.get_by_role("button", name="Filter").click()
        await expect(rows).to_have_count(2)

        customer = await browser.new_page(viewport=DESKTOP)
        await sign_in(customer, server, "carla@example.com")
        await customer.goto(f"{server}/app/tickets/{tagged}")
        await expect(customer.get_by_role("heading", level=1)).to_have_text("Invoice wrong")
        page_text = await customer.locator("body").inner_text()
        assert "vip" not in page_text.lower() and "billing" not in page_text.lower()
