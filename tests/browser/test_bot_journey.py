"""The bot in the browser: a widget customer picks one of the bot's choices by button,
asks for a person, and the agent sees the hand-off in the inbox and hands back."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from switchboard.appkeys import BOT_RUNTIME, DB
from tests.bot.dialogue_support import DEMO_KB, webchat_with_bot
from tests.browser.support import log_in
from tests.browser.test_widget_journey import open_widget
from tests.conftest import create_user


async def test_choices_as_buttons_handoff_and_hand_back(browser: Any, hub: Any) -> None:
    from knowledge_base.commands import import_file

    base = str(hub.make_url("")).rstrip("/")
    db = hub.app[DB]
    await webchat_with_bot(db)
    await import_file(db, DEMO_KB, note="tests")
    await hub.app[BOT_RUNTIME].refresh()  # trained on it before the customer writes
    await create_user(db, "alex@example.com", "agent", "Alex Agent")

    customer = await browser.new_context()
    widget = await open_widget(await customer.new_page(), f"{base}/demo")
    messages = widget.locator("#widget-messages")
    await widget.locator("#widget-input").fill("退货退款")
    await widget.locator("#widget-send").click()
    buttons = messages.locator(".choice-button")
    await expect(buttons.first).to_be_visible(timeout=15_000)
    picked = await buttons.nth(1).inner_text()
    await buttons.nth(1).click()
    # the pick goes out as the customer's message, and the bot answers it
    await expect(messages.locator(".msg--mine", has_text=picked)).to_be_visible()
    await expect(messages.locator(".msg--bot")).to_have_count(2, timeout=15_000)

    await widget.locator("#widget-input").fill("转人工")
    await widget.locator("#widget-send").click()
    await expect(messages).to_contain_text("转接人工客服", timeout=15_000)

    agent_context = await browser.new_context()
    agent = await agent_context.new_page()
    await log_in(agent, base, "alex@example.com")
    await agent.locator("#conversation-list [data-conversation-id]").first.click()
    chip = agent.locator("#conversation-bot")
    await expect(chip).to_have_text("Bot handed off: customer asked for a person", timeout=10_000)
    await expect(agent.locator("#messages")).to_contain_text("Bot handed off: customer_asked")
    await agent.click("#hand-back")
    await expect(chip).to_have_text("Bot answering", timeout=10_000)
    await expect(agent.locator("#hand-back")).to_be_hidden()

    # back with the bot: the customer's next question is answered again
    await widget.locator("#widget-input").fill("how much is shipping")
    await widget.locator("#widget-send").click()
    await expect(messages.locator(".msg--bot")).to_have_count(4, timeout=15_000)
    await customer.close()
    await agent_context.close()
