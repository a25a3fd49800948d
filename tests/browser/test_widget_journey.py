"""A customer chats in the widget on the demo page; an agent answers from the inbox."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page, expect

from switchboard.appkeys import DB
from tests.browser.support import log_in
from tests.conftest import create_user


async def open_widget(page: Page, url: str) -> Any:
    await page.goto(url)
    launcher = page.locator("#switchboard-launcher")
    # The loader remembers an open panel across reloads; only open it if it is closed.
    if await launcher.get_attribute("aria-expanded") != "true":
        await launcher.click()
    await expect(launcher).to_have_attribute("aria-expanded", "true")
    frame = page.frame_locator("#switchboard-frame")
    await expect(page.locator("#switchboard-frame")).to_be_visible()
    await expect(frame.locator("body[data-state='live']")).to_be_attached(timeout=10_000)
    return frame


async def test_customer_and_agent_talk_live(browser: Any, hub: Any) -> None:
    base = str(hub.make_url("")).rstrip("/")
    await create_user(hub.app[DB], "alex@example.com", "agent", "Alex Agent")

    customer = await browser.new_context()
    shop = await customer.new_page()
    widget = await open_widget(shop, f"{base}/demo")
    await widget.locator("#widget-input").fill("Hello, is my parcel on its way?")
    await widget.locator("#widget-send").click()
    await expect(widget.locator("#widget-messages")).to_contain_text("is my parcel on its way?")

    agent_context = await browser.new_context()
    agent = await agent_context.new_page()
    await log_in(agent, base, "alex@example.com")
    conversation = agent.locator("#conversation-list [data-conversation-id]").first
    await expect(conversation).to_contain_text("parcel", timeout=10_000)

    # A second message arrives while the agent watches: no reload.
    await widget.locator("#widget-input").fill("Order 1042, if that helps")
    await widget.locator("#widget-send").click()
    await conversation.click()
    await expect(agent.locator("#messages")).to_contain_text("Order 1042", timeout=10_000)
    # Its ack carried the stored message (seq 2): one bubble, sent, in its place.
    second = widget.locator("#widget-messages li", has_text="Order 1042")
    await expect(second).to_have_count(1)
    await expect(second).to_have_attribute("data-seq", "2")
    await expect(second).to_have_attribute("data-state", "sent")

    await agent.fill("#reply-text", "It left our warehouse this morning.")
    await agent.click("#reply-send")
    await expect(widget.locator("#widget-messages")).to_contain_text(
        "It left our warehouse this morning.", timeout=10_000
    )
    # The outbox confirms delivery, and the agent sees it without a reload.
    reply = agent.locator("#messages li", has_text="It left our warehouse")
    await expect(reply).to_have_attribute("data-delivery-status", "sent", timeout=10_000)

    # A reload of the shop page restores the whole history from the server.
    widget = await open_widget(shop, f"{base}/demo")
    messages = widget.locator("#widget-messages")
    await expect(messages).to_contain_text("is my parcel on its way?")
    await expect(messages).to_contain_text("Order 1042")
    await expect(messages).to_contain_text("It left our warehouse this morning.")
    await customer.close()
    await agent_context.close()
