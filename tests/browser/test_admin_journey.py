"""The admin console in the browser: an admin edits an article's answer and publishes it;
the bot retrains and answers a web-chat customer with the new text; the "try the bot" box
shows the match and its confidence; a question the bot missed becomes a phrasing in one
click; the audit log shows what happened. Screenshots of every section (1280 px, and the
knowledge base at 768 px)."""

from __future__ import annotations

import asyncio
from typing import Any

from playwright.async_api import Page, expect

from switchboard.appkeys import BOT_RUNTIME, DB
from tests.bot.dialogue_support import DEMO_KB, webchat_with_bot
from tests.browser.test_widget_journey import open_widget
from tests.conftest import PASSWORD, create_user

NEW_TEXT = "Shipping is free on every order this month"


async def _log_in(page: Page, base: str, email: str) -> None:
    await page.goto(f"{base}/login?next=/admin")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.click("#login-submit")
    await page.wait_for_url(f"{base}/admin**")


async def _retrained(runtime: Any, before: str | None) -> None:
    """The bot's own retraining after the publish (bus event or poll), not forced here."""
    for _ in range(300):
        if runtime.status().fingerprint not in (None, before) and not runtime.status().training:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the bot did not retrain after the publish")


async def _settings(base: str, page: Page) -> None:
    """Something to show in each section: a queue, a rule, a calendar, a canned reply."""
    token = await page.locator('meta[name="csrf-token"]').get_attribute("content")
    headers = {"X-CSRF-Token": token or "", "Content-Type": "application/json"}
    for path, body in (
        ("/api/v1/queues", {"name": "Billing"}),
        (
            "/api/v1/routing/rules",
            {
                "name": "Refunds to billing",
                "conditions": {"keywords": ["refund"]},
                "actions": {"priority": "high"},
            },
        ),
        (
            "/api/v1/sla/calendars",
            {
                "name": "Office",
                "time_zone": "Europe/Berlin",
                "hours": {"monday": [["09:00", "17:00"]]},
            },
        ),
        (
            "/api/v1/sla/policies",
            {"name": "Standard", "targets": {"normal": {"first_response": 60, "resolution": 480}}},
        ),
        (
            "/api/v1/canned-replies",
            {"shortcut": "thanks", "title": "Thanks", "body": "Thank you, {customer.name}!"},
        ),
    ):
        response = await page.request.post(f"{base}{path}", data=body, headers=headers)
        assert response.status == 201, (path, await response.text())


async def test_admin_edits_an_article_and_the_bot_answers_with_it(
    browser: Any, hub: Any, screenshot: Any
) -> None:
    from knowledge_base.commands import import_file

    base = str(hub.make_url("")).rstrip("/")
    db = hub.app[DB]
    runtime = hub.app[BOT_RUNTIME]
    await webchat_with_bot(db)
    await import_file(db, DEMO_KB, note="tests")
    await runtime.refresh()
    await create_user(db, "ada@example.com", "admin", "Ada Admin")

    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    admin = await context.new_page()
    errors: list[str] = []
    admin.on("pageerror", lambda exc: errors.append(str(exc)))
    await _log_in(admin, base, "ada@example.com")

    # the knowledge base: find the article, change its answer, publish
    await expect(admin.locator("h1")).to_have_text("Knowledge base")
    await admin.fill("#kb-search", "shipping cost")
    await admin.click("#kb-filter button[type=submit]")
    article = admin.locator(
        "#kb-list [data-article-id] button", has_text="How much does shipping cost?"
    )
    await article.click()
    await expect(admin.locator("#kb-question")).to_have_value("How much does shipping cost?")
    await admin.fill("#kb-answer", f"**{NEW_TEXT}**, <script>alert(1)</script> no minimum.")
    # the preview is the server's safe rendering: bold, and the script tag as text
    await expect(admin.locator("#kb-preview strong")).to_have_text(NEW_TEXT)
    await expect(admin.locator("#kb-preview")).to_contain_text("<script>alert(1)</script>")
    await admin.fill("#kb-note", "summer offer")
    before = runtime.status().fingerprint
    # a published article: Save keeps the change in a draft, not live yet
    await admin.click("#kb-save")
    await expect(admin.locator("#admin-status")).to_contain_text("Draft saved")
    await expect(admin.locator("#kb-draft-banner")).to_be_visible()
    await expect(admin.locator("#kb-draft-banner")).to_contain_text("Draft — not live yet")
    await expect(admin.locator("#kb-answer")).to_have_value(
        f"**{NEW_TEXT}**, <script>alert(1)</script> no minimum."
    )
    await admin.get_by_role("button", name="Compare with live").click()
    await expect(admin.locator("#kb-diff-body .diff-add").first).to_contain_text(NEW_TEXT)
    await screenshot(admin, "admin-kb-draft")
    await admin.fill("#try-text", "how much is shipping")
    await admin.click("#try-submit")
    await expect(admin.locator("#try-decision")).to_have_text("Answers")
    await expect(admin.locator("#try-answer")).not_to_contain_text(NEW_TEXT)
    assert runtime.status().fingerprint == before
    await admin.click("#kb-publish")
    await expect(admin.locator("#admin-status")).to_contain_text("Published")
    await expect(admin.locator("#kb-editor-state")).to_contain_text("Published")
    await expect(admin.locator("#kb-draft-banner")).to_be_hidden()
    history = admin.locator("#kb-history tbody tr")
    # the draft save (v2, with its note) and the publish (v3), newest first
    await expect(history.first).to_contain_text("v3 · Published")
    await expect(history.nth(1)).to_contain_text("summer offer")
    await expect(history.nth(1)).to_contain_text("Ada Admin")
    await history.nth(1).get_by_role("button", name="Diff").click()
    await expect(admin.locator("#kb-diff-body .diff-add").first).to_contain_text(NEW_TEXT)

    # the bot retrains on its own, and the try box shows the new match
    await _retrained(runtime, before)
    await admin.fill("#try-text", "how much is shipping")
    await admin.click("#try-submit")
    await expect(admin.locator("#try-decision")).to_have_text("Answers")
    await expect(admin.locator("#try-article")).to_contain_text("How much does shipping cost?")
    await expect(admin.locator("#try-confidence")).to_contain_text("%")
    await expect(admin.locator("#try-answer")).to_contain_text(NEW_TEXT)
    await expect(admin.locator("#try-alternatives li")).not_to_have_count(0)
    await screenshot(admin, "admin-kb")

    # a customer asks in the web-chat widget and gets the new answer
    customer = await browser.new_context()
    widget = await open_widget(await customer.new_page(), f"{base}/demo")
    messages = widget.locator("#widget-messages")
    await widget.locator("#widget-input").fill("how much is shipping")
    await widget.locator("#widget-send").click()
    await expect(messages.locator(".msg--bot").last).to_contain_text(NEW_TEXT, timeout=15_000)
    # ... and one the bot cannot answer
    await widget.locator("#widget-input").fill("what is the airspeed of an unladen swallow")
    await widget.locator("#widget-send").click()
    await expect(messages.locator(".msg--bot")).to_have_count(2, timeout=15_000)

    # the missed question becomes a phrasing in one click
    await admin.goto(f"{base}/admin/bot")
    row = admin.locator(
        "#missed-table tbody tr", has_text="what is the airspeed of an unladen swallow"
    )
    await expect(row).to_be_visible()
    await screenshot(admin, "admin-bot")
    await row.locator("select").select_option(label="Which payment methods do you accept?")
    await row.get_by_role("button", name="Add as phrasing").click()
    await expect(admin.locator("#admin-status")).to_contain_text("phrasing")
    await expect(row).to_have_count(0)

    await _settings(base, admin)
    for section in ("users", "queues", "inboxes", "rules", "sla", "canned", "audit"):
        await admin.goto(f"{base}/admin/{section}")
        await expect(admin.locator(f'.admin-nav-link[href="/admin/{section}"]')).to_have_attribute(
            "aria-current", "page"
        )
        if section == "audit":
            await expect(admin.locator("#audit-table tbody")).to_contain_text(
                "kb.article.published"
            )
            await expect(admin.locator("#audit-table tbody")).to_contain_text(
                "kb.article.phrasing_added"
            )
        if section == "inboxes":
            await expect(admin.locator(".embed-snippet")).to_contain_text("/widget.js")
            card = admin.locator("[data-inbox-id]", has_text="webchat").first
            await card.get_by_role("button", name="Test connection").click()
            await expect(card).to_contain_text("Connected")
        if section == "users":
            await expect(admin.locator("#users-table tbody")).to_contain_text("ada@example.com")
            await admin.fill("#user-email", "sam@example.com")
            await admin.fill("#user-name", "Sam <b>Agent</b>")
            await admin.click("#user-form button[type=submit]")
            await expect(admin.locator("#one-time-password")).not_to_be_empty()
            sam = admin.locator("#users-table tbody tr", has_text="sam@example.com")
            await expect(sam).to_contain_text("Sam <b>Agent</b>")  # shown as text
            admin.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            await sam.get_by_role("button", name="Deactivate").click()
            await expect(sam).to_contain_text("deactivated")
        if section == "rules":
            await expect(admin.locator("#rules-table tbody")).to_contain_text("Refunds to billing")
            await (
                admin.locator("#rules-table tbody tr")
                .first.get_by_role("button", name="History")
                .click()
            )
            await expect(admin.locator("#rule-history tbody tr")).to_have_count(1)
            await expect(admin.locator("#rule-history")).to_contain_text("Ada Admin")
        await admin.wait_for_load_state("networkidle")
        await screenshot(admin, f"admin-{section}")

    tablet = await browser.new_context(viewport={"width": 768, "height": 1024})
    small = await tablet.new_page()
    await _log_in(small, base, "ada@example.com")
    await expect(small.locator("#kb-list [data-article-id]").first).to_be_visible()
    await screenshot(small, "admin-kb-768")
    assert errors == []
    await tablet.close()
    await customer.close()
    await context.close()
