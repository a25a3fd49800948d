"""What agents see of channel messages: an email's subject, a customer's edit and
delete arriving live, and mail flagged as automatic."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from channels.base import InboundMessage, MessageDeleted, MessageEdited
from conversations.inbound import do_record_delete, do_record_edit
from conversations.service import do_intake
from switchboard.appkeys import DB
from switchboard.inboxes import do_ensure_inbox
from tests.browser.support import log_in
from tests.conftest import create_user


async def test_agent_sees_subjects_edits_deletes_and_automatic_mail_live(
    browser: Any, hub: Any
) -> None:
    base = str(hub.make_url("")).rstrip("/")
    db = hub.app[DB]
    await create_user(db, "alex@example.com", "agent", "Alex Agent")
    inbox = await db.run(lambda s: do_ensure_inbox(s, key="mail", kind="email", name="Mail"))

    def mail(n: int, text: str, **extra: Any) -> InboundMessage:
        return InboundMessage(
            channel="email",
            inbox_id=inbox.id,
            sender_id="ann@example.org",
            external_id=f"<m{n}@example.org>",
            thread_key="email:<m1@example.org>",
            text=text,
            **extra,
        )

    await db.run(lambda s: do_intake(s, mail(1, "My invoice is wrong", subject="Invoice 1042")))
    await db.run(
        lambda s: do_intake(s, mail(2, "I am out of office until Monday.", automatic=True))
    )

    context = await browser.new_context()
    agent = await context.new_page()
    await log_in(agent, base, "alex@example.com")
    await agent.locator("#conversation-list [data-conversation-id]").first.click()
    messages = agent.locator("#messages")
    first = messages.locator("li", has_text="My invoice is wrong")
    await expect(first.locator(".msg-subject")).to_have_text("Invoice 1042", timeout=10_000)
    auto = messages.locator("li", has_text="out of office")
    await expect(auto).to_contain_text("automatic mail")

    # The customer edits, then deletes, while the agent watches: no reload.
    await db.run(
        lambda s: do_record_edit(
            s, MessageEdited(inbox.id, "<m1@example.org>", "My invoice 1042 is wrong")
        )
    )
    edited = messages.locator("li", has_text="My invoice 1042 is wrong")
    await expect(edited).to_contain_text("edited", timeout=10_000)
    await db.run(lambda s: do_record_delete(s, MessageDeleted(inbox.id, "<m1@example.org>")))
    await expect(edited).to_contain_text("deleted by the customer", timeout=10_000)
    await expect(edited).to_have_class("msg msg--in msg--customer msg--deleted")
    await context.close()
