"""Regenerate the README's screenshots from a real run: `.venv/bin/python docs/screenshots.py`.

Starts `ticketdesk serve` on a fresh SQLite database in a temporary folder, walks through a
customer's and an agent's day in Debian's Chromium, and saves each page at desktop
(1280 x 800) and phone (390 x 844) size into docs/screenshots/.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.async_api import Page, async_playwright

OUT = Path(__file__).parent / "screenshots"
STAFF_TOKEN = "screenshots-staff-token"  # noqa: S105 - a throwaway server's
PASSWORD = "a long enough password"  # noqa: S105 - a throwaway account's
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def shoot(page: Page, name: str) -> None:
    await page.screenshot(path=OUT / f"{name}.png", full_page=True)
    print(f"  {name}.png")


def register_agent(url: str) -> None:
    httpx.post(
        f"{url}/users",
        json={
            "email": "agnes@example.com",
            "username": "Agnes",
            "password": PASSWORD,
            "isStaff": True,
        },
        headers={"Authorization": f"Bearer {STAFF_TOKEN}"},
    ).raise_for_status()


async def walk(url: str) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium")
        customer = await browser.new_page(viewport=DESKTOP)
        await customer.goto(url + "/")
        await shoot(customer, "sign-in")
        await customer.get_by_role("link", name="Sign up").click()
        await shoot(customer, "sign-up")
        await customer.get_by_label("Username").fill("Carla")
        await customer.get_by_label("Email").fill("carla@example.com")
        await customer.get_by_label("Password").fill(PASSWORD)
        await customer.get_by_role("button", name="Sign up").click()
        for topic, text in (
            ("VPN drops hourly", "The VPN disconnects every hour since Monday."),
            ("Invoice November", "I was charged twice for November, see the attached receipt."),
        ):
            await customer.goto(url + "/app/tickets/new")
            await customer.get_by_label("Topic").fill(topic)
            await customer.get_by_label("Message").fill(text)
            await customer.get_by_role("button", name="Open ticket").click()
        ticket_url = customer.url

        agent = await browser.new_page(viewport=DESKTOP)
        await agent.goto(url + "/")
        await agent.get_by_label("Email").fill("agnes@example.com")
        await agent.get_by_label("Password").fill(PASSWORD)
        await agent.get_by_role("button", name="Sign in").click()
        await shoot(agent, "agent-queue")
        await agent.get_by_role("link", name="Invoice November").click()
        await agent.get_by_role("button", name="Take it").click()
        await agent.get_by_label("Priority").select_option("high")
        await agent.get_by_role("button", name="Save").click()
        await agent.get_by_label("Internal note").check()
        await agent.get_by_label("Message").fill("The billing run fired twice on the 3rd.")
        await agent.get_by_role("button", name="Save note", exact=True).click()
        await agent.get_by_label("Message").fill("Sorry about that: we refunded the second charge.")
        await agent.get_by_role("button", name="Send and resolve").click()
        await shoot(agent, "agent-ticket")
        await agent.get_by_role("link", name="Queue").click()
        await agent.get_by_role("link", name="VPN drops hourly").click()
        await agent.get_by_label("Message").fill("Which VPN client and version do you use?")
        await agent.keyboard.press("Control+Enter")
        await agent.get_by_label("Message").fill("A reply with the wrong file")
        await agent.get_by_label("Attachments").set_input_files(
            files=[
                {
                    "name": "capture.pcap",
                    "mimeType": "application/octet-stream",
                    "buffer": b"x" * (11 * 1024 * 1024),
                }
            ]
        )
        await agent.get_by_role("button", name="Send", exact=True).click()
        await shoot(agent, "agent-ticket-refused")
        await agent.goto(url + "/app/queue?view=all&q=charged")
        await shoot(agent, "agent-search")

        await customer.goto(ticket_url)
        await shoot(customer, "customer-ticket")
        await customer.get_by_role("link", name="My tickets").click()
        await shoot(customer, "customer-tickets")
        await customer.goto(url + "/app/tickets/new")
        await customer.get_by_label("Topic").fill("Invoice total wrong on my March bill")
        await customer.get_by_label("Message").fill("The total is off by 12 euros.")
        await shoot(customer, "customer-new-ticket")
        await customer.goto(url + "/app/tickets/999")
        await shoot(customer, "not-found")

        await agent.goto(url + "/app/account")
        await shoot(agent, "agent-account")

        stranger = await browser.new_page(viewport=DESKTOP)
        await stranger.goto(url + "/")
        await stranger.get_by_role("link", name="Forgot your password?").click()
        await shoot(stranger, "password-reset")
        await stranger.get_by_label("Email").fill("carla@example.com")
        await stranger.get_by_role("button", name="Mail me a link").click()
        await shoot(stranger, "password-reset-sent")
        await stranger.goto(url + "/app/password-reset/confirm?token=from-the-mail")
        await shoot(stranger, "password-reset-used-link")

        for page, name, path in (
            (customer, "phone-customer-ticket", ticket_url),
            (agent, "phone-agent-queue", url + "/app/queue?view=all"),
            (agent, "phone-agent-ticket", url + "/app/tickets/2"),
            (agent, "phone-agent-account", url + "/app/account"),
            (stranger, "phone-password-reset", url + "/app/password-reset"),
            (
                stranger,
                "phone-password-reset-used-link",
                url + "/app/password-reset/confirm?token=t",
            ),
        ):
            await page.set_viewport_size(PHONE)
            await page.goto(path)
            await shoot(page, name)
        await browser.close()


def main() -> None:
    OUT.mkdir(exist_ok=True)
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        # Mail "on" (to a port where nothing listens: the mails wait in the queue), so the
        # pages show what they show on a desk that sends mail.
        env = {
            **os.environ,
            "STAFF_TOKEN": STAFF_TOKEN,
            "LOG_LEVEL": "error",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(free_port()),
        }
        env.pop("DATABASE_URL", None)
        server = subprocess.Popen(  # noqa: S603 - our own command
            [sys.executable, "-m", "ticketdesk", "serve", "--workers", "1", "--port", str(port)],
            cwd=folder,
            env=env,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(url + "/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not start")
                time.sleep(0.2)
            register_agent(url)
            asyncio.run(walk(url))
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
