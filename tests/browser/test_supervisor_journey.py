"""The supervisor in the browser: the dashboard is open, a ticket breaches its SLA and the
breach appears live (no reload), the supervisor drills into it and reassigns it — first to
an agent at capacity (the 409 is shown, with "Assign anyway"), then to one with room."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from playwright.async_api import expect
from sqlalchemy import select, update

from conversations.models import AuthorKind
from routing.models import AgentProfile, Queue, QueueMember
from switchboard.appkeys import DB
from switchboard.db import utcnow
from switchboard.tx import Database
from tests.browser.support import log_in
from tests.conftest import create_user
from tests.tickets.report_support import bot_reply, clock_row, message_at, survey_row
from tests.tickets.sla_support import make_policy
from tests.tickets.support import customer_writes, make_inbox, open_ticket
from tickets.models import Ticket
from tickets.sla_models import SlaClock

XSS_SUBJECT = '<img src=x onerror="window.__xss=1">Refund'


async def set_ticket(db: Database, ticket_id: int, **values: Any) -> None:
    async def write(session: Any) -> None:
        await session.execute(update(Ticket).where(Ticket.id == ticket_id).values(**values))

    await db.run(write)


async def arrange(db: Database) -> dict[str, int]:
    await make_policy(db)
    await create_user(db, "sara@example.com", "supervisor", "Sara Supervisor")
    ann = await create_user(db, "ann@example.com", "agent", "Ann Agent")
    ben = await create_user(db, "ben@example.com", "agent", "Ben Agent")

    async def team(session: Any) -> int:
        queue = Queue(name="Billing", strategy="round_robin")
        session.add(queue)
        await session.flush()
        for user_id, capacity in ((ann, 1), (ben, 4)):
            session.add(QueueMember(queue_id=queue.id, user_id=user_id))
            # Offline: the routing worker leaves the queue's tickets to the supervisor.
            session.add(AgentProfile(user_id=user_id, capacity=capacity, presence="offline"))
        return queue.id

    queue_id = await db.run(team)
    inbox = await make_inbox(db)
    ids: dict[str, int] = {"queue": queue_id, "ann": ann, "ben": ben}
    for name, text, assignee in (
        ("late", "My invoice is wrong", None),
        ("held", "Refund for order 42", ann),
    ):
        conversation_id, _ = await customer_writes(db, f"journey-{name}", text, inbox_id=inbox)
        ticket = await open_ticket(db, conversation_id)
        # The held ticket's subject is hostile: it must show as text and run nothing.
        subject = XSS_SUBJECT if name == "held" else None
        await set_ticket(
            db, ticket.id, queue_id=queue_id, assignee_user_id=assignee, subject=subject
        )
        ids[name] = ticket.id
        ids[f"{name}_conversation"] = conversation_id
        ids["inbox"] = inbox
    await history(db, inbox, queue_id, ann)
    return ids


async def history(db: Database, inbox: int, queue_id: int, agent: int) -> None:
    """Some of today's work for the report charts: answered and solved tickets with
    ratings and met SLA clocks, and bot conversations (two contained, one handed off)."""
    now = utcnow()
    for n, (opened, reply, rating) in enumerate(((300, 4, 5), (240, 12, 4), (180, 35, 2))):
        conversation_id, _ = await customer_writes(
            db, f"journey-done-{n}", "Where is my parcel?", inbox_id=inbox
        )
        ticket = await open_ticket(db, conversation_id)
        created = now - timedelta(minutes=opened)
        await message_at(db, conversation_id, AuthorKind.AGENT, created + timedelta(minutes=reply))

        # Solved together with its rating: the hub's CSAT worker, looking for solved
        # tickets without a survey, never sees this one without.
        async def solve(
            session: Any,
            t: int = ticket.id,
            c: Any = created,
            r: int = rating,
            conv: int = conversation_id,
            late: int = reply,
        ) -> None:
            await session.execute(
                update(Ticket)
                .where(Ticket.id == t)
                .values(
                    queue_id=queue_id,
                    assignee_user_id=agent,
                    status="solved",
                    created_at=c,
                    solved_at=c + timedelta(minutes=90),
                )
            )
            met = "hit" if late < 30 else "missed"
            session.add(clock_row(t, "first_response", met, c + timedelta(minutes=30)))
            session.add(survey_row(t, conv, inbox, r, c + timedelta(minutes=100)))

        await db.run(solve)
    for n, kinds in enumerate((["answer"], ["answer"], ["answer", "handoff"])):
        conversation_id, _ = await customer_writes(
            db, f"journey-bot-{n}", "How do I reset my password?", inbox_id=inbox
        )
        for kind in kinds:
            reason = "out_of_scope" if kind == "handoff" else ""
            await bot_reply(db, inbox, conversation_id, kind, now - timedelta(minutes=20), reason)


async def test_breach_appears_live_and_the_supervisor_reassigns(
    browser: Any, hub: Any, screenshot: Any
) -> None:
    base = str(hub.make_url("")).rstrip("/")
    db = hub.app[DB]
    ids = await arrange(db)
    late = ids["late"]

    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await log_in(page, base, "sara@example.com", to="/supervisor")
    await expect(page.locator("#connection-status")).to_have_text("Live", timeout=10_000)

    billing = page.locator(f'.sv-queue[data-queue-id="{ids["queue"]}"]')
    await expect(billing.locator(".sv-waiting")).to_have_text("1")
    await expect(billing.locator(".sv-open")).to_have_text("2")
    await expect(billing.locator(".sv-breached")).to_have_text("0")
    row = billing.locator(f'.sv-soon-row[data-ticket-id="{late}"]').first
    await expect(row).to_be_visible()
    await expect(page.locator(".sv-chart-card")).to_have_count(6)
    held = page.locator(f'tr[data-agent-id="{ids["ann"]}"] li[data-ticket-id="{ids["held"]}"]')
    await expect(held).to_contain_text(XSS_SUBJECT)
    assert await page.evaluate("window.__xss === undefined")
    await page.evaluate("window.__sameDocument = true")
    await billing.locator(".sv-open").focus()  # a keyboard user resting on a number
    await screenshot(page, "supervisor-dashboard-1280")

    # The first-response clock falls due: moved into the past, and the customer's next
    # message wakes the hub's SLA worker (as any message does), which breaches it.
    await db.run(
        lambda s: s.execute(
            update(SlaClock)
            .where(SlaClock.ticket_id == late, SlaClock.metric == "first_response")
            .values(due_at=utcnow() - timedelta(seconds=1))
        )
    )
    await customer_writes(db, "journey-late", "hello? anyone?", n=1, inbox_id=ids["inbox"])
    alert = page.locator(".sv-alert-danger", has_text=f"SLA breached: ticket #{late}")
    await expect(alert).to_be_visible(timeout=20_000)
    await expect(billing.locator(".sv-breached")).to_have_text("1", timeout=10_000)
    assert await page.evaluate("window.__sameDocument === true"), "the page was reloaded"
    # The floor was re-drawn, and the keyboard focus stayed on the same number.
    await expect(billing.locator(".sv-open")).to_be_focused()

    # Drill into the breached number and reassign: Ann is at capacity (409 shown), Ben has room.
    await billing.locator(".sv-breached").click()
    drill = page.locator("#sv-drill")
    await expect(drill).to_be_visible()
    drill_row = drill.locator(f'tr[data-ticket-id="{late}"]')
    await expect(drill_row).to_be_visible()
    await drill_row.locator(".sv-reassign").click()
    assign = page.locator("#sv-assign")
    await expect(assign).to_be_visible()
    await page.select_option("#sv-assign-agent", str(ids["ann"]))
    await page.click("#sv-assign-submit")
    error = page.locator("#sv-assign-error")
    await expect(error).to_contain_text("Ann Agent is at capacity (1 of 1 tickets)")
    await expect(page.locator("#sv-assign-anyway")).to_be_visible()
    await page.select_option("#sv-assign-agent", str(ids["ben"]))
    await page.click("#sv-assign-submit")
    await expect(assign).to_be_hidden()
    await expect(page.locator(".sv-alert-ok")).to_contain_text(
        f"Ticket #{late} assigned to Ben Agent."
    )
    await expect(drill_row.locator(".sv-assignee")).to_have_text("Ben Agent", timeout=10_000)
    await drill.locator("[data-close]").click()
    ben_row = page.locator(f'tr[data-agent-id="{ids["ben"]}"]')
    await expect(ben_row.locator(f'li[data-ticket-id="{late}"]')).to_be_visible(timeout=10_000)
    await expect(billing.locator(".sv-waiting")).to_have_text("0")
    async with db.reading() as session:
        assignee = (
            await session.execute(select(Ticket.assignee_user_id).where(Ticket.id == late))
        ).scalar_one()
    assert assignee == ids["ben"]

    # A chart's table view, and the tablet width.
    card = page.locator('.sv-chart-card[data-report="sla"]')
    await card.locator("summary").click()
    await expect(card.locator("table")).to_be_visible()
    await page.set_viewport_size({"width": 768, "height": 1024})
    await screenshot(page, "supervisor-dashboard-768")

    # In Chinese, chosen per user: the page and the script's strings follow.
    token = await page.locator('meta[name="csrf-token"]').get_attribute("content")
    changed = await page.request.patch(
        f"{base}/api/v1/me", data={"locale": "zh"}, headers={"X-CSRF-Token": token or ""}
    )
    assert changed.ok
    await page.reload()
    await expect(page.locator("h1")).to_have_text("主管仪表盘")
    await expect(billing.locator(".kpi-label").first).to_have_text("等待中")
    await expect(page.locator('.sv-chart-card[data-report="sla"] h3')).to_have_text("SLA 达标率")
    await context.close()
