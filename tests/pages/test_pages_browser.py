"""The browser app in a real browser (Debian's Chromium through Playwright), as people use it.

Each test starts `ticketdesk serve` on the backend's database and drives Chromium against it:
no mock of the browser, the server or the database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, async_playwright, expect
from sqlalchemy.engine import URL

from conftest import STAFF_TOKEN, running_servers

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
PASSWORD = "a long enough password"
XSS = ['<script>alert("x")</script>', '"><img src=x onerror=alert(1)>', "javascript:alert(1)"]


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
def server(database_url: URL, tmp_path: Path, engine: Any) -> Any:
    with running_servers(
        1, database_url, tmp_path, RATE_LIMITS="false", DATA_DIR=str(tmp_path / "data")
    ) as (url,):
        yield url


def register_staff(url: str, email: str, username: str = "Agnes") -> None:
    response = httpx.post(
        f"{url}/users",
        json={"email": email, "username": username, "password": PASSWORD, "isStaff": True},
        headers={"Authorization": f"Bearer {STAFF_TOKEN}"},
    )
    assert response.status_code == 201, response.text


async def sign_up(page: Page, url: str, username: str, email: str) -> None:
    await page.goto(url + "/")
    await page.get_by_role("link", name="Sign up").click()
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign up").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("My tickets")


async def sign_in(page: Page, url: str, email: str) -> None:
    await page.goto(url + "/")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()


async def open_ticket(page: Page, topic: str, message: str) -> None:
    await page.get_by_role("link", name="Open a ticket").first.click()
    await page.get_by_label("Topic").fill(topic)
    await page.get_by_label("Message").fill(message)
    await page.get_by_role("button", name="Open ticket").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(topic)


async def test_a_customer_and_an_agent_work_a_ticket_end_to_end(server: str) -> None:
    register_staff(server, "agent@example.com")
    async with chromium() as browser:
        agent = await browser.new_page(viewport=DESKTOP)
        await sign_in(agent, server, "agent@example.com")
        await expect(agent.get_by_role("heading", level=1)).to_have_text("All open")
        await expect(agent.get_by_text("Nothing here")).to_be_visible()

        customer = await browser.new_page(viewport=DESKTOP)
        await sign_up(customer, server, "Carla", "carla@example.com")
        await open_ticket(customer, "Invoice wrong", "I was charged twice in November.")

        # The queue shows it without a reload.
        started = time.monotonic()
        row = agent.get_by_role("link", name="Invoice wrong")
        await expect(row).to_be_visible(timeout=5000)
        assert time.monotonic() - started < 2.5
        await row.click()
        await agent.get_by_role("button", name="Take it").click()
        await expect(agent.get_by_label("Assignee")).to_have_value(
            await agent.get_by_label("Assignee")
            .locator("option", has_text="Agnes")
            .get_attribute("value")
            or ""
        )
        await agent.get_by_label("Internal note").check()
        await agent.get_by_label("Message").fill("Billing ran twice on the 3rd.")
        await agent.get_by_role("button", name="Save note", exact=True).click()
        await expect(agent.get_by_text("Billing ran twice on the 3rd.")).to_be_visible()
        await agent.get_by_label("Message").fill("We refunded the second charge.")
        await agent.get_by_role("button", name="Send", exact=True).click()

        await customer.reload()
        await expect(customer.get_by_text("We refunded the second charge.")).to_be_visible()
        assert await customer.get_by_text("Billing ran twice").count() == 0
        assert "Internal" not in await customer.content()

        # The customer's answer appears in the agent's open ticket without a reload.
        await customer.get_by_label("Message").fill("Thanks, I see it.")
        await customer.get_by_role("button", name="Send").click()
        await expect(agent.get_by_text("Thanks, I see it.")).to_be_visible(timeout=5000)

        await agent.get_by_label("Status").select_option("resolved")
        await agent.get_by_role("button", name="Save").click()
        await expect(agent.get_by_label("Status")).to_have_value("resolved")

        await customer.reload()
        await expect(customer.get_by_text("Resolved").first).to_be_visible()
        await customer.get_by_label("5").check()
        await customer.get_by_role("button", name="Rate").click()
        await expect(customer.get_by_text("You rated this ticket 5 of 5")).to_be_visible()


async def test_the_customer_flow_works_without_javascript(server: str) -> None:
    async with chromium() as browser:
        context = await browser.new_context(java_script_enabled=False, viewport=DESKTOP)
        page = await context.new_page()
        await sign_up(page, server, "Nina", "nina@example.com")
        await expect(page.get_by_text("No tickets yet")).to_be_visible()
        await open_ticket(page, "No script", "Plain forms only.")
        await page.get_by_label("Message").fill("One more thing.")
        await page.get_by_role("button", name="Send").click()
        await expect(page.get_by_text("One more thing.")).to_be_visible()
        await page.get_by_text("Cancel this ticket").click()
        await page.get_by_role("button", name="Yes, cancel it").click()
        await expect(page.get_by_text("This ticket is canceled")).to_be_visible()
        await page.get_by_role("link", name="My tickets").click()
        await expect(page.get_by_text("Canceled")).to_be_visible()
        await page.get_by_role("button", name="Sign out").click()
        await expect(page.get_by_role("button", name="Sign in")).to_be_visible()


async def test_an_expired_session_signs_in_and_returns(server: str) -> None:
    async with chromium() as browser:
        context = await browser.new_context(viewport=DESKTOP)
        page = await context.new_page()
        await sign_up(page, server, "Otto", "otto@example.com")
        await open_ticket(page, "Come back", "Here.")
        where = page.url
        await context.add_cookies(
            [{"name": "token", "value": "expired.or.revoked", "url": server + "/"}]
        )
        await page.goto(where)
        await expect(page.get_by_text("Your session expired")).to_be_visible()
        await page.get_by_label("Email").fill("otto@example.com")
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page).to_have_url(where)
        await expect(page.get_by_role("heading", level=1)).to_have_text("Come back")


async def test_user_text_is_shown_as_text_never_run(server: str, tmp_path: Path) -> None:
    register_staff(server, "agent@example.com", username=XSS[0])
    async with chromium() as browser:
        page = await browser.new_page(viewport=DESKTOP)
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: dialogs.append(dialog.message))
        await sign_up(page, server, XSS[1], "eve@example.com")
        await page.get_by_role("link", name="Open a ticket").first.click()
        await page.get_by_label("Topic").fill(XSS[2][:20])
        await page.get_by_label("Message").fill("\n".join(XSS))
        evil = tmp_path / '"><img src=x onerror=alert(2)>.html'
        evil.write_text("<script>alert(3)</script>")
        await page.get_by_label("Attachments").set_input_files(str(evil))
        await page.get_by_role("button", name="Open ticket").click()
        await expect(page.get_by_role("heading", level=1)).to_have_text(XSS[2][:20])
        for text in XSS:
            await expect(page.get_by_text(text, exact=False).first).to_be_visible()
        await expect(page.get_by_role("link", name=evil.name)).to_be_visible()
        agent = await browser.new_page(viewport=DESKTOP)
        agent.on("dialog", lambda dialog: dialogs.append(dialog.message))
        await sign_in(agent, server, "agent@example.com")
        await agent.get_by_role("link", name=XSS[2][:20]).click()
        await expect(agent.get_by_text(XSS[0]).first).to_be_visible()
        await asyncio.sleep(0.3)
        assert dialogs == []
        headers = (await agent.request.get(agent.url)).headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "unsafe-inline" not in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]


PAGES_CUSTOMER = ["/app/tickets", "/app/tickets/new", "/app/tickets/1", "/app/account"]
PAGES_AGENT = [
    "/app/queue",
    "/app/queue?view=breaching",
    "/app/tickets/1",
    "/app/users",
    "/app/users/1",
    "/app/report",
    "/app/staff-keys",
    "/app/account",
]


async def test_every_page_fits_a_phone_and_passes_axe(server: str, engine: Any) -> None:
    from sqlalchemy import update

    from ticketdesk.models import users

    register_staff(server, "boss@example.com", username="Boss")
    async with engine.begin() as conn:
        await conn.execute(
            update(users).where(users.c.email == "boss@example.com").values(is_superuser=True)
        )
    axe = Axe()
    problems: list[str] = []
    async with chromium() as browser:
        for viewport in (DESKTOP, PHONE):
            signed_out = await browser.new_page(viewport=viewport)
            for path in (
                "/",
                "/app/sign-up",
                "/app/no-such-page",
                "/app/password-reset",
                "/app/password-reset/confirm?token=abc",
            ):
                await signed_out.goto(server + path)
                problems += await audit(axe, signed_out, path, viewport)
            await signed_out.close()
        customer = await browser.new_page(viewport=PHONE)
        await sign_up(customer, server, "Phoebe", "phoebe@example.com")
        await open_ticket(customer, "Small screen", "Does it fit?")
        agent = await browser.new_page(viewport=PHONE)
        await sign_in(agent, server, "boss@example.com")
        for page, paths in ((customer, PAGES_CUSTOMER), (agent, PAGES_AGENT)):
            for viewport in (PHONE, DESKTOP):
                await page.set_viewport_size(viewport)
                for path in paths:
                    await page.goto(server + path)
                    problems += await audit(axe, page, path, viewport)
    assert problems == []


async def audit(axe: Axe, page: Page, path: str, viewport: dict[str, int]) -> list[str]:
    found = []
    assert await page.locator("h1").count() == 1, path
    width = await page.evaluate("document.documentElement.scrollWidth")
    if width > viewport["width"]:
        found.append(f"{path} at {viewport['width']}px scrolls sideways ({width}px)")
    results = await axe.run(page)
    for violation in results.response["violations"]:
        if violation["impact"] in ("serious", "critical"):
            found.append(f"{path}: {violation['id']} ({violation['impact']}): {violation['help']}")
    return found


async def test_agents_see_who_else_has_the_ticket_open(server: str) -> None:
    register_staff(server, "agnes@example.com", username="Agnes")
    register_staff(server, "bruno@example.com", username="Bruno")
    async with chromium() as browser:
        customer = await browser.new_page(viewport=DESKTOP)
        await sign_up(customer, server, "Cleo", "cleo@example.com")
        await open_ticket(customer, "Two agents", "Who takes it?")
        ticket_path = customer.url.removeprefix(server)
        agnes = await browser.new_page(viewport=DESKTOP)
        await sign_in(agnes, server, "agnes@example.com")
        await agnes.goto(server + ticket_path)
        bruno = await browser.new_page(viewport=DESKTOP)
        await sign_in(bruno, server, "bruno@example.com")
        await bruno.goto(server + ticket_path)
        notice = bruno.get_by_role("status").filter(has_text="Agnes")
        await expect(notice).to_have_text("Agnes is viewing this ticket", timeout=12000)
        await agnes.get_by_label("Message").type("Let me check")
        await expect(notice).to_have_text("Agnes is replying", timeout=12000)


async def test_the_console_works_from_the_keyboard(server: str) -> None:
    register_staff(server, "agnes@example.com", username="Agnes")
    async with chromium() as browser:
        customer = await browser.new_page(viewport=DESKTOP)
        await sign_up(customer, server, "Kim", "kim@example.com")
        for topic in ("First", "Second"):
            await customer.goto(server + "/app/tickets/new")
            await customer.get_by_label("Topic").fill(topic)
            await customer.get_by_label("Message").fill("Keys please.")
            await customer.get_by_role("button", name="Open ticket").click()
        agent = await browser.new_page(viewport=DESKTOP)
        # Signing in by keyboard alone, with a visible focus on each control.
        await agent.goto(server + "/")
        await agent.keyboard.press("Tab")  # the skip link
        await agent.keyboard.press("Tab")  # the brand
        await agent.keyboard.press("Tab")
        assert await agent.evaluate("document.activeElement.id") == "email"
        outline = await agent.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline != "none"
        await agent.keyboard.type("agnes@example.com")
        await agent.keyboard.press("Tab")
        await agent.keyboard.type(PASSWORD)
        await agent.keyboard.press("Enter")
        await expect(agent.get_by_role("heading", level=1)).to_have_text("All open")
        await agent.keyboard.press("j")
        await agent.keyboard.press("j")
        await agent.keyboard.press("k")
        await agent.keyboard.press("Enter")
        await expect(agent.get_by_role("heading", level=1)).to_have_text("Second")
        await agent.keyboard.press("n")
        assert await agent.evaluate("document.activeElement.id") == "message"
        await expect(agent.get_by_label("Internal note")).to_be_checked()
        await agent.keyboard.type("typed after n")
        await agent.keyboard.press("r")  # in a field: a letter, not a shortcut
        await expect(agent.get_by_label("Message")).to_have_value("typed after nr")
        await agent.get_by_role("link", name="Queue").click()
        await expect(agent.get_by_role("heading", level=1)).to_have_text("All open")
        await agent.keyboard.press("/")
        assert await agent.evaluate("document.activeElement.id") == "q"
        await agent.evaluate("document.activeElement.blur()")
        await agent.keyboard.press("?")
        await expect(agent.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
