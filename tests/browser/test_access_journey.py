"""Access refused in the browser where it must be (issue 6, point 7): an agent cannot
open another queue's conversation by its link, sees neither the dashboard nor the admin
console, and an anonymous visitor is sent to log in. The agent of that queue sees it."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect
from sqlalchemy import update

from routing.models import Queue, QueueMember
from switchboard.appkeys import DB
from switchboard.tx import Database
from tests.browser.support import signed_in
from tests.conftest import create_user
from tests.tickets.support import customer_writes, open_ticket
from tickets.models import Ticket

SECRET_TEXT = "my card number ends in 4242"


async def a_conversation_in_queue(db: Database, queue_name: str, member_id: int) -> int:
    async def team(session: Any) -> int:
        queue = Queue(name=queue_name, strategy="round_robin")
        session.add(queue)
        await session.flush()
        session.add(QueueMember(queue_id=queue.id, user_id=member_id))
        return queue.id

    queue_id = await db.run(team)
    conversation_id, _ = await customer_writes(db, f"visitor-{queue_name}", SECRET_TEXT)
    ticket = await open_ticket(db, conversation_id)

    async def into_queue(session: Any) -> None:
        await session.execute(
            update(Ticket).where(Ticket.id == ticket.id).values(queue_id=queue_id)
        )

    await db.run(into_queue)
    return conversation_id


async def logged_in(browser: Any, base: str, email: str) -> Any:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    return await signed_in(context, base, email)


async def test_an_agent_is_refused_what_is_not_theirs(
    browser: Any, hub: Any, screenshot: Any
) -> None:
    base = str(hub.make_url("")).rstrip("/")
    db = hub.app[DB]
    await create_user(db, "olga@example.com", "agent", "Olga Outside")
    billing_agent = await create_user(db, "ben@example.com", "agent", "Ben Billing")
    sales_agent = await create_user(db, "sam@example.com", "agent", "Sam Sales")
    await a_conversation_in_queue(db, "Sales", sales_agent)
    conversation_id = await a_conversation_in_queue(db, "Billing", billing_agent)

    # Olga belongs to no queue that covers the conversation: its link shows nothing of it.
    olga = await logged_in(browser, base, "olga@example.com")
    await olga.goto(f"{base}/inbox#c/{conversation_id}")
    await expect(olga.locator("#messages-error")).to_be_visible(timeout=10_000)
    await expect(olga.locator("body")).not_to_contain_text(SECRET_TEXT)
    assert await olga.locator(f"[data-conversation-id='{conversation_id}']").count() == 0
    await screenshot(olga, "access-refused-conversation-1280")

    # Neither the dashboard nor the console exists for an agent (the same 404 as a typo).
    for path in ("/supervisor", "/admin", "/admin/users"):
        answer = await olga.goto(f"{base}{path}")
        assert answer is not None and answer.status == 404, path
        await expect(olga.locator("body")).not_to_contain_text("Audit log")
    typo = await olga.goto(f"{base}/no-such-page")
    assert typo is not None and typo.status == 404

    # The Billing agent opens the same link and reads it.
    ben = await logged_in(browser, base, "ben@example.com")
    await ben.goto(f"{base}/inbox#c/{conversation_id}")
    await expect(ben.locator("#messages")).to_contain_text(SECRET_TEXT, timeout=10_000)

    # Nobody logged in: every staff page sends the browser to log in first.
    stranger = await (await browser.new_context()).new_page()
    for path in ("/inbox", "/supervisor", "/admin", "/preferences"):
        await stranger.goto(f"{base}{path}")
        await stranger.wait_for_url(f"{base}/login**")
    await expect(stranger.locator("#login-submit")).to_be_visible()
