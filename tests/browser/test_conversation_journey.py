"""An agent works a conversation from arrival to solved in the browser: reads the bot's
hand-off, claims the ticket, sees a teammate viewing the same conversation, notes with
an @mention (the teammate is notified live), inserts a canned reply filled with the
customer's name, replies (the widget receives it) and solves. Screenshots of the
conversation view and the profile panel at 1280 px and 768 px."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect
from sqlalchemy import select, update

from conversations.canned import do_create_canned
from customers.models import Customer
from switchboard.appkeys import BOT_RUNTIME, DB
from tests.bot.dialogue_support import DEMO_KB, webchat_with_bot
from tests.browser.support import signed_in
from tests.browser.test_widget_journey import open_widget
from tests.conftest import create_user
from tickets.service import do_create_ticket


async def test_agent_works_a_conversation_from_arrival_to_solved(
    browser: Any, hub: Any, screenshot: Any
) -> None:
    from knowledge_base.commands import import_file

    base = str(hub.make_url("")).rstrip("/")
    db = hub.app[DB]
    await webchat_with_bot(db)
    await import_file(db, DEMO_KB, note="tests")
    await hub.app[BOT_RUNTIME].refresh()
    admin_id = await create_user(db, "root@example.com", "admin", "Root")
    await create_user(db, "alex@example.com", "agent", "Alex Agent")
    li_id = await create_user(db, "li@example.com", "agent", "Li Wei")
    await db.run(
        lambda s: do_create_canned(
            s,
            {
                "shortcut": "greet",
                "title": "Greeting",
                "body": "Hi {{customer.first_name}}, I'm {{agent.name}} and I'll sort this out.",
            },
            user_id=admin_id,
        )
    )

    # Hostile text in a canned reply stays text (shown in the picker, never run).
    await db.run(
        lambda s: do_create_canned(
            s,
            {
                "shortcut": "zz-evil",
                "title": '<img src=x onerror="window.pwned=1"> Greeting (evil)',
                "body": "<script>window.pwned=2</script>",
            },
            user_id=admin_id,
        )
    )

    # A customer asks the bot for a person: the bot hands off and a ticket opens.
    customer = await browser.new_context()
    widget = await open_widget(await customer.new_page(), f"{base}/demo")
    shown = widget.locator("#widget-messages")
    await widget.locator("#widget-input").fill("转人工")
    await widget.locator("#widget-send").click()
    await expect(shown).to_contain_text("转接人工客服", timeout=15_000)
    await db.run(lambda s: s.execute(update(Customer).values(name="Maria Lopez")))
    async with db.reading() as session:
        customer_id = (await session.execute(select(Customer.id))).scalar_one()

    alex_context = await browser.new_context(viewport={"width": 1280, "height": 900})
    alex = await signed_in(alex_context, base, "alex@example.com")
    await alex.locator("#conversation-list [data-conversation-id]").first.click()
    await expect(alex.locator("#conversation-bot")).to_have_text(
        "Bot handed off: customer asked for a person", timeout=10_000
    )
    messages = alex.locator("#messages")
    await expect(messages).to_contain_text("转人工")
    await expect(messages.locator("li[data-channel='webchat']").first).to_be_visible()
    await expect(alex.locator("#profile-name")).to_have_text("Maria Lopez")
    await expect(alex.locator("#conversation-title")).to_contain_text("Maria Lopez")
    await expect(alex.locator("#ticket-ref")).to_contain_text("Ticket #")
    await alex.click("#ticket-assign-me")
    await expect(alex.locator("#ticket-assignee option:checked")).to_have_text("Alex Agent")

    # A teammate opens the same conversation: each sees the other.
    li_context = await browser.new_context(viewport={"width": 1280, "height": 900})
    li = await signed_in(li_context, base, "li@example.com")
    await li.locator("#conversation-list [data-conversation-id]").first.click()
    await expect(alex.locator("#presence")).to_have_text("Li Wei is viewing", timeout=10_000)
    await expect(li.locator("#presence")).to_have_text("Alex Agent is viewing", timeout=10_000)

    # An internal note mentioning Li: Li is notified live; the customer never sees it.
    await alex.check("#reply-private")
    await alex.locator("#reply-text").press_sequentially("@Li")
    await expect(alex.locator("#mention-picker")).to_contain_text("Li Wei")
    await expect(alex.locator("#reply-text")).to_have_attribute("aria-controls", "mention-picker")
    await expect(alex.locator("#reply-text")).to_have_attribute(
        "aria-activedescendant", f"mention-option-{li_id}"
    )
    await alex.locator("#reply-text").press("Enter")
    await alex.locator("#reply-text").press_sequentially("can you check the refund policy?")
    await alex.click("#reply-send")
    await expect(messages.locator(".msg--note", has_text="@Li Wei can you check")).to_be_visible()
    toast = li.locator("#notifications .toast")
    await expect(toast).to_contain_text("Alex Agent mentioned you", timeout=10_000)
    await expect(li.locator("#messages")).to_contain_text("@Li Wei can you check")

    # The canned reply, typed as "/" + its shortcut, filled with the customer's name.
    await alex.uncheck("#reply-private")
    await alex.locator("#reply-text").press_sequentially("/gre")
    await expect(alex.locator("#canned-list")).to_contain_text("Greeting")
    await expect(alex.locator("#canned-list")).to_contain_text(
        '<img src=x onerror="window.pwned=1">'
    )
    # The picker is a WAI-ARIA combobox: the reply box controls the listbox while it is
    # open, ↑/↓ move the highlighted option, Escape closes it.
    reply = alex.locator("#reply-text")
    options = alex.locator("#canned-list [role=option]")
    await expect(options).to_have_count(2)
    first_id, second_id = [await options.nth(i).get_attribute("id") for i in (0, 1)]
    assert first_id and second_id
    await expect(reply).to_have_attribute("role", "combobox")
    await expect(reply).to_have_attribute("aria-expanded", "true")
    await expect(reply).to_have_attribute("aria-controls", "canned-list")
    await expect(reply).to_have_attribute("aria-activedescendant", first_id)
    await reply.press("ArrowDown")
    await expect(reply).to_have_attribute("aria-activedescendant", second_id)
    await expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    await expect(options.nth(0)).to_have_attribute("aria-selected", "false")
    await reply.press("ArrowDown")  # wraps around
    await expect(reply).to_have_attribute("aria-activedescendant", first_id)
    await reply.press("ArrowUp")
    await expect(reply).to_have_attribute("aria-activedescendant", second_id)
    await reply.press("Escape")
    await expect(alex.locator("#canned-picker")).to_be_hidden()
    await expect(reply).not_to_have_attribute("role", "combobox")
    await expect(reply).not_to_have_attribute("aria-activedescendant", second_id)
    await expect(reply).to_have_value("/gre")  # Escape only closed the list
    # The button's picker: its search field is the combobox.
    await alex.click("#canned-button")
    search = alex.locator("#canned-search")
    await expect(search).to_be_focused()
    await expect(search).to_have_attribute("role", "combobox")
    await expect(search).to_have_attribute("aria-expanded", "true")
    await expect(search).to_have_attribute("aria-controls", "canned-list")
    await expect(search).to_have_attribute("aria-activedescendant", first_id)
    await search.press("ArrowDown")
    await expect(search).to_have_attribute("aria-activedescendant", second_id)
    await search.press("Escape")
    await expect(search).to_have_attribute("aria-expanded", "false")
    await expect(reply).to_be_focused()
    # Typing on reopens the "/" picker; Enter picks the highlighted (first) reply.
    await reply.press("End")
    await reply.press_sequentially("e")
    await expect(reply).to_have_attribute("aria-expanded", "true")
    await expect(reply).to_have_attribute("aria-activedescendant", first_id)
    await alex.locator("#reply-text").press("Enter")
    text = "Hi Maria, I'm Alex Agent and I'll sort this out."
    await expect(alex.locator("#reply-text")).to_have_value(text)
    await screenshot(alex, "inbox-conversation-1280")
    await alex.click("#reply-send")
    await expect(shown).to_contain_text(text, timeout=10_000)
    await expect(shown).not_to_contain_text("refund policy")
    sent = messages.locator("li", has_text="I'll sort this out")
    await expect(sent).to_have_attribute("data-delivery-status", "sent", timeout=10_000)

    # Tags, and a merge: the customer phoned earlier about the same thing (another
    # ticket); this one is merged into it, after a confirmation, and work goes on there.
    await alex.fill("#ticket-tag-input", "refund")
    await alex.press("#ticket-tag-input", "Enter")
    await expect(alex.locator("#ticket-tags")).to_contain_text("refund")
    earlier = await db.run(
        lambda s: do_create_ticket(
            s,
            customer_id=customer_id,
            actor=f"agent:{admin_id}",
            subject="Phone call about a refund",
        )
    )
    await alex.click("#ticket-merge")
    await expect(alex.locator("#merge-dialog")).to_be_visible()
    await expect(alex.locator("#merge-target")).to_contain_text("Phone call about a refund")
    await alex.click("#merge-confirm")
    await expect(alex.locator("#merge-dialog")).to_be_hidden()
    await expect(alex.locator("#ticket-ref")).to_have_text(f"Ticket #{earlier.id}")

    # Keyboard: "?" lists the shortcuts; "s" solves.
    await alex.locator("#messages").click()
    await alex.keyboard.press("?")
    await expect(alex.locator("#shortcuts-dialog")).to_be_visible()
    await screenshot(alex, "inbox-shortcuts-1280")
    await alex.keyboard.press("Escape")
    await alex.keyboard.press("s")
    await expect(alex.locator("#conversation-status")).to_have_text("Solved", timeout=10_000)
    await expect(alex.locator("#notifications")).to_contain_text("solved")
    await expect(li.locator("#conversation-status")).to_have_text("Solved", timeout=10_000)
    await expect(alex.locator("#profile-tickets")).to_contain_text("Solved")

    # Li leaves: Alex no longer sees them.
    await li_context.close()
    await expect(alex.locator("#presence")).to_be_hidden(timeout=10_000)

    # The profile panel: edited in place.
    await alex.fill("#profile-tier", "Gold")
    await alex.press("#profile-tier", "Tab")
    await expect(alex.locator("#profile-status")).to_have_text("Saved.")
    await alex.fill("#profile-tag-input", "vip")
    await alex.press("#profile-tag-input", "Enter")
    await expect(alex.locator("#profile-tags")).to_contain_text("vip")
    await alex.fill("#profile-note-text", "Prefers email <b>after 6pm</b>")
    await alex.click("#profile-note-form button[type=submit]")
    await expect(alex.locator("#profile-notes")).to_contain_text("Prefers email <b>after 6pm</b>")
    await expect(alex.locator("#profile-notes")).to_contain_text("Alex Agent")
    async with db.reading() as session:
        saved = await session.get(Customer, customer_id)
        assert saved is not None and saved.tier == "gold"  # tiers are normalised

    # The same view on a tablet.
    await screenshot(alex, "inbox-profile-1280")
    await alex.set_viewport_size({"width": 768, "height": 1024})
    if await alex.locator("#profile-panel").is_visible():
        await alex.click("#profile-close")
    await screenshot(alex, "inbox-conversation-768")
    await alex.click("#profile-toggle")
    await expect(alex.locator("#profile-panel")).to_be_visible()
    await screenshot(alex, "inbox-profile-768")
    assert await alex.evaluate("window.pwned") is None
    await customer.close()
    await alex_context.close()
