"""The conversation pane when two agents collide, and the profile panel's one-click merge.

Alex opens an unassigned ticket's conversation; before his page hears of it, Li claims
it. Alex's "Assign to me" gets the 409, the message names Li, and the ticket bar shows
Li as the assignee. Then the profile panel offers another record with the customer's
name: declining the confirmation changes nothing; accepting merges the email record in
(its identity appears), and Undo splits them again."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Dialog, expect
from sqlalchemy import select, update

from channels.base import InboundMessage
from customers.models import Customer
from switchboard.appkeys import DB
from tests.browser.support import signed_in
from tests.conftest import create_user
from tests.customers.support import email_from, email_inbox, intake, webchat_inbox
from tests.tickets.support import open_ticket
from tickets.models import Ticket


async def test_a_claim_that_lost_the_race_and_a_merge_with_undo(
    browser: Any, hub: Any, screenshot: Any
) -> None:
    base = str(hub.make_url("")).rstrip("/")
    db = hub.app[DB]
    await create_user(db, "alex@example.com", "agent", "Alex Agent")
    li_id = await create_user(db, "li@example.com", "agent", "Li Wei")
    chat_inbox = (await webchat_inbox(db)).id
    chat = await intake(
        db,
        InboundMessage(
            channel="webchat",
            inbox_id=chat_inbox,
            sender_id="v_maria",
            external_id="v_maria:1",
            thread_key="v_maria",
            text="My refund has not arrived",
            sender_name="Maria Lopez",
        ),
    )
    ticket = await open_ticket(db, chat.conversation_id)
    # The same person wrote by email earlier from an address nobody vouched for: a
    # separate record, suggested because of the name.
    mail = await intake(
        db,
        email_from(
            await email_inbox(db), "maria@elsewhere.test", verified=False, name="Maria Lopez"
        ),
    )
    assert mail.customer_id != chat.customer_id

    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    alex = await signed_in(context, base, "alex@example.com")
    await alex.locator(
        f"#conversation-list [data-conversation-id='{chat.conversation_id}']"
    ).click()
    await expect(alex.locator("#ticket-ref")).to_contain_text(f"Ticket #{ticket.id}")
    await expect(alex.locator("#ticket-assignee option:checked")).to_have_text("Unassigned")

    # Li claims it a moment before Alex clicks: written straight to the database, so
    # Alex's page has not heard of it yet (the live event would race the click).
    await db.run(
        lambda s: s.execute(
            update(Ticket).where(Ticket.id == ticket.id).values(assignee_user_id=li_id)
        )
    )
    await alex.click("#ticket-assign-me")
    error = alex.locator("#ticket-error")
    await expect(error).to_be_visible()
    await expect(error).to_contain_text("Already taken")
    await expect(error).to_contain_text("Li Wei")
    await expect(alex.locator("#ticket-assignee option:checked")).to_have_text("Li Wei")
    await screenshot(alex, "inbox-claim-conflict-1280")
    async with db.reading() as session:
        owned = await session.get(Ticket, ticket.id)
        assert owned is not None and owned.assignee_user_id == li_id

    # The profile panel suggests the email record; the merge asks first.
    suggestion = alex.locator("#profile-suggestions .profile-suggestion", has_text="Maria Lopez")
    await expect(suggestion).to_contain_text("name")
    identities = alex.locator("#profile-identities")
    await expect(identities.locator(".channel-webchat")).to_have_count(1)
    await expect(identities.locator(".channel-email")).to_have_count(0)
    asked: list[str] = []

    async def decline(dialog: Dialog) -> None:
        asked.append(dialog.message)
        await dialog.dismiss()

    alex.once("dialog", decline)
    await suggestion.get_by_role("button", name="Merge into this profile").click()
    await expect(suggestion).to_be_visible()
    assert asked and "Maria Lopez" in asked[0] and "undone" in asked[0]
    async with db.reading() as session:
        other = await session.get(Customer, mail.customer_id)
        assert other is not None and other.merged_into_id is None

    async def accept(dialog: Dialog) -> None:
        await dialog.accept()

    alex.once("dialog", accept)
    await suggestion.get_by_role("button", name="Merge into this profile").click()
    status = alex.locator("#profile-status")
    await expect(status).to_contain_text("Merged Maria Lopez")
    await expect(identities.locator(".channel-email")).to_have_count(1)
    await expect(alex.locator("#profile-suggestions")).not_to_contain_text("maria@elsewhere")
    async with db.reading() as session:
        merged = await session.get(Customer, mail.customer_id)
        assert merged is not None and merged.merged_into_id == chat.customer_id
    await screenshot(alex, "inbox-profile-merged-1280")

    await alex.click("#profile-undo-merge")
    await expect(status).to_contain_text("Merge undone")
    await expect(identities.locator(".channel-email")).to_have_count(0)
    await expect(alex.locator("#profile-suggestions")).to_contain_text("Maria Lopez")
    async with db.reading() as session:
        back = (
            await session.execute(
                select(Customer.merged_into_id).where(Customer.id == mail.customer_id)
            )
        ).scalar_one()
        assert back is None
    await context.close()
