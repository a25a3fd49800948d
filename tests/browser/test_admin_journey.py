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
from tests.browser.support import log_in
from tests.browser.test_widget_journey import open_widget
from tests.conftest import create_user

NEW_TEXT = "Shipping is free on every order this month"


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
    await log_in(admin, base, "ada@example.com", to="/admin")

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
    await log_in(small, base, "ada@example.com", to="/admin")
    await expect(small.locator("#kb-list [data-article-id]").first).to_be_visible()
    await screenshot(small, "admin-kb-768")
    assert errors == []
    await tablet.close()
    await customer.close()
    await context.close()


async def test_admin_builds_routing_and_sla_settings_with_forms(
    browser: Any, hub: Any, screenshot: Any
) -> None:
    """A calendar, an SLA policy and routing rules made through the forms (no JSON), with
    the server's validation errors shown next to the field at fault; reordering and a
    rule's history."""
    base = str(hub.make_url("")).rstrip("/")
    ada = await create_user(hub.app[DB], "ada@example.com", "admin", "Ada Admin")
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await log_in(page, base, "ada@example.com", to="/admin")
    token = await page.locator('meta[name="csrf-token"]').get_attribute("content")
    queue = await page.request.post(
        f"{base}/api/v1/queues",
        data={"name": "Billing"},
        headers={"X-CSRF-Token": token or "", "Content-Type": "application/json"},
    )
    assert queue.status == 201

    # a calendar: time zone, weekly hours (Mon-Fri 09-17 to start with), a holiday
    await page.goto(f"{base}/admin/sla")
    await expect(page.locator("#calendar-form")).to_have_attribute("data-ready", "true")
    await page.fill("#calendar-name", "Office")
    await page.select_option("#calendar-zone", "Europe/Berlin")
    monday = page.locator('#calendar-week [data-day="monday"]')
    await monday.get_by_role("button", name="Add hours").click()
    await monday.get_by_label("Monday from").nth(1).fill("10:00")
    await monday.get_by_label("Monday until").nth(1).fill("11:00")
    await page.fill("#calendar-holiday-new", "2026-12-25")
    await page.click("#calendar-holiday-add")
    await page.click("#calendar-save")
    # overlapping hours: the server's reason, next to the weekly hours
    hours_error = page.locator('#calendar-form [data-error-for="hours"]')
    await expect(hours_error).to_be_visible()
    await expect(hours_error).to_contain_text("overlap")
    await monday.get_by_role("button", name="Remove").nth(1).click()
    await page.click("#calendar-save")
    office = page.locator("#calendars-table tbody tr", has_text="Office")
    await expect(office).to_contain_text("Europe/Berlin")
    await expect(office).to_contain_text("Monday 09:00–17:00")
    await expect(office.locator("td").nth(3)).to_have_text("1")  # the holiday
    await expect(page.locator("#calendar-holidays")).to_contain_text("No holidays.")

    # a policy on that calendar, targets in hours and minutes
    await page.fill("#policy-name", "Gold")
    await page.select_option("#policy-calendar", label="Office")
    high = page.locator('#policy-targets tr[data-priority="high"]')
    await high.get_by_label("First response for high", exact=True).fill("0")
    await page.click("#policy-save")
    cell_error = page.locator('[data-error-for="targets.high.first_response"]')
    await expect(cell_error).to_be_visible()
    await expect(cell_error).to_contain_text("must be 1 to")
    await high.get_by_label("First response for high", exact=True).fill("2")
    await high.get_by_label("Resolution for high", exact=True).fill("45")
    await high.get_by_label("Resolution for high: unit").select_option(label="minutes")
    # escalations: the two default notices, and a reassignment on a missed resolution
    escalations = page.locator("#policy-escalations [data-escalation]")
    await expect(escalations).to_have_count(2)
    await page.click("#policy-escalation-add")
    added = escalations.nth(2)
    await added.get_by_label("Action", exact=True).select_option("reassign")
    await added.get_by_label("Reassign to").select_option(label="Ada Admin <ada@example.com>")
    await added.get_by_label("Resolution").check()
    await page.click("#policy-save")
    gold = page.locator("#policies-table tbody tr", has_text="Gold")
    await expect(gold).to_contain_text("Office")
    await expect(gold).to_contain_text("First response 2 h")
    await expect(gold).to_contain_text("Resolution 45 min")
    await gold.get_by_role("button", name="Edit").click()
    await expect(page.locator("#policy-name")).to_have_value("Gold")
    await expect(escalations).to_have_count(3)
    await expect(escalations.nth(2).get_by_label("Reassign to")).to_have_value(str(ada))
    await expect(escalations.nth(2).get_by_label("Resolution")).to_be_checked()
    await page.click("#policy-new")
    await page.wait_for_load_state("networkidle")
    await screenshot(page, "admin-sla-forms")

    # a routing rule: no action is refused next to the actions
    await page.goto(f"{base}/admin/rules")
    await expect(page.locator("#rule-form")).to_have_attribute("data-ready", "true")
    await page.fill("#rule-name", "Refunds in office hours")
    await page.select_option("#rule-add-kind", label="Keywords")
    await page.click("#rule-add-condition")
    await page.locator('[data-kind="keywords"] textarea').fill("refund\n退款")
    await page.click("#rule-save")
    actions_error = page.locator('#rule-form [data-error-for="actions"]')
    await expect(actions_error).to_contain_text("at least one action")
    await page.select_option("#rule-add-kind", label="Channel")
    await page.click("#rule-add-condition")
    await page.locator('[data-kind="channels"]').get_by_label("Email").check()
    await page.select_option("#rule-add-kind", label="Business hours")
    await page.click("#rule-add-condition")
    await (
        page.locator('[data-kind="business_hours"]')
        .get_by_label("Calendar")
        .select_option(label="Office")
    )
    await page.select_option("#rule-queue", label="Billing")
    await page.select_option("#rule-priority", "high")
    await page.select_option("#rule-sla", label="Gold")
    await page.fill("#rule-tags", "refund, billing")
    await page.click("#rule-save")
    await expect(actions_error).to_be_hidden()
    first = page.locator("#rules-table tbody tr", has_text="Refunds in office hours")
    await expect(first).to_contain_text("keywords: refund, 退款")
    await expect(first).to_contain_text("inside hours of Office")
    await expect(first).to_contain_text("queue Billing")
    await expect(first).to_contain_text("SLA Gold")

    # a second rule, with a hand-off reason; then moved to the top
    await page.fill("#rule-name", "People who ask for a person")
    await page.select_option("#rule-add-kind", label="Hand-off reason")
    await page.click("#rule-add-condition")
    await (
        page.locator('[data-kind="handoff_reasons"]')
        .get_by_label("The customer asked for a person")
        .check()
    )
    await page.select_option("#rule-priority", "urgent")
    await page.click("#rule-save")
    rows = page.locator("#rules-table tbody tr")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(1)).to_contain_text("People who ask for a person")
    await rows.nth(1).get_by_role("button", name="Move up").click()
    await expect(rows.first).to_contain_text("People who ask for a person")
    # ... and dragged back below the other
    await rows.first.drag_to(rows.nth(1))
    await expect(rows.first).to_contain_text("Refunds in office hours")
    await rows.first.get_by_role("button", name="Move down").click()
    await expect(rows.first).to_contain_text("People who ask for a person")

    # edit in the form: the rule's current settings fill it; a new version
    await rows.nth(1).get_by_role("button", name="Edit").click()
    await expect(page.locator("#rule-name")).to_have_value("Refunds in office hours")
    await expect(page.locator('[data-kind="keywords"] textarea')).to_have_value("refund\n退款")
    await (
        page.locator('[data-kind="channels"]')
        .get_by_role("button", name="Remove condition")
        .click()
    )
    await page.click("#rule-save")
    # (v2 to v4 were the moves: a reorder is a version too)
    await expect(page.locator("#admin-status")).to_contain_text("version 5")
    await rows.nth(1).get_by_role("button", name="History").click()
    history = page.locator("#rule-history tbody tr")
    await expect(history).to_have_count(5)
    await expect(history.last).to_contain_text("channel: Email")
    await expect(history.last).to_contain_text("Ada Admin")
    await expect(history.first).not_to_contain_text("channel: Email")
    await page.wait_for_load_state("networkidle")
    await screenshot(page, "admin-rules-forms")

    tablet = await browser.new_context(viewport={"width": 768, "height": 1024})
    small = await tablet.new_page()
    await log_in(small, base, "ada@example.com", to="/admin")
    for section in ("rules", "sla"):
        await small.goto(f"{base}/admin/{section}")
        await small.wait_for_load_state("networkidle")
        await screenshot(small, f"admin-{section}-forms-768")
    assert errors == []
    await tablet.close()
    await context.close()
