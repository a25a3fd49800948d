"""The inbox's list side in a browser: a new conversation arrives live in "Unassigned"
with an unread badge, opening it clears the badge, and a Chinese word finds the message
through the search box (focused with "/"). Screenshots at 1280 px and 768 px."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from switchboard.appkeys import DB
from tests.browser.support import log_in
from tests.browser.test_widget_journey import open_widget
from tests.conftest import create_user


async def test_agent_sees_a_new_conversation_live_reads_it_and_finds_it_by_search(
    browser: Any, hub: Any, screenshot: Any
) -> None:
    base = str(hub.make_url("")).rstrip("/")
    await create_user(hub.app[DB], "mei@example.com", "agent", "Mei Agent")

    agent_context = await browser.new_context(viewport={"width": 1280, "height": 800})
    agent = await agent_context.new_page()
    await log_in(agent, base, "mei@example.com")
    await expect(agent.locator("#connection-status")).to_have_attribute("data-state", "live")
    unassigned = agent.locator(".view-button[data-view='unassigned']")
    await unassigned.click()
    await expect(unassigned).to_have_attribute("aria-pressed", "true")
    await expect(agent.locator("#list-title")).to_have_text("Unassigned")
    await expect(agent.locator("#conversation-list-empty")).to_be_visible()

    # A customer writes in the widget; the agent's list shows it with no reload.
    customer = await browser.new_context()
    shop = await customer.new_page()
    widget = await open_widget(shop, f"{base}/demo")
    await widget.locator("#widget-input").fill("你好，我的退款什么时候到账？")
    await widget.locator("#widget-send").click()
    item = agent.locator("#conversation-list [data-conversation-id]").first
    await expect(item).to_contain_text("退款", timeout=10_000)
    badge = item.locator(".unread-badge")
    await expect(badge).to_have_text("1")
    # The view's own count shows a conversation with unread messages.
    await expect(unassigned.locator(".view-unread")).to_have_text("1", timeout=10_000)
    await screenshot(agent, "inbox-list-1280")

    # Opening it clears the badge, and the view's unread count follows.
    await item.click()
    await expect(agent.locator("#conversation-pane")).to_be_visible()
    await expect(badge).to_have_count(0)
    await expect(unassigned.locator(".view-unread")).to_have_count(0, timeout=10_000)

    # "/" focuses the search box; a Chinese word finds the message, in its conversation.
    await agent.locator("#conversation-title").click()
    await agent.keyboard.press("/")
    await expect(agent.locator("#search-input")).to_be_focused()
    await agent.keyboard.type("退款")
    hit = agent.locator("#search-results .search-hit[data-kind='messages']").first
    await expect(hit).to_contain_text("退款什么时候到账", timeout=10_000)
    conversation_id = await item.get_attribute("data-conversation-id")
    assert await hit.get_attribute("data-conversation-id") == conversation_id
    await screenshot(agent, "inbox-search-1280")
    await agent.keyboard.press("Escape")
    await expect(agent.locator("#search-results")).to_be_hidden()
    await expect(agent.locator("#list-side")).to_be_visible()

    # A filter saved as the agent's own view, listed with its count.
    await agent.locator("#list-filters > summary").click()
    await agent.select_option("#filter-channel", "webchat")
    await agent.click("#view-save")
    await agent.fill("#view-name", "Web chats")
    await agent.click("#view-form-submit")
    saved = agent.locator("#saved-view-list .view-button", has_text="Web chats")
    await expect(saved).to_have_attribute("aria-pressed", "true")
    await expect(saved.locator(".view-total")).to_have_text("1", timeout=10_000)
    await expect(agent.locator("#list-title")).to_have_text("Web chats")
    await expect(agent.locator("#conversation-list [data-conversation-id]")).to_have_count(1)

    await agent.set_viewport_size({"width": 768, "height": 900})
    await agent.goto(f"{base}/inbox")
    await expect(agent.locator("#conversation-list [data-conversation-id]").first).to_be_visible()
    await screenshot(agent, "inbox-list-768")
    await customer.close()
    await agent_context.close()
