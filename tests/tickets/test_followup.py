"""Customer messages → tickets: the follow-up worker opens, reopens and wakes tickets."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from channels.base import InboundMessage
from conversations.events import INBOX_TOPIC
from conversations.service import do_intake
from switchboard.tx import Database
from tests.clock import clock_for
from tests.tickets.support import (
    activities,
    customer_writes,
    follow_up,
    get_ticket,
    make_inbox,
    open_ticket,
    set_status,
    ticket_count,
    tickets_of,
)
from tickets import service as ticket_service
from tickets.events import TicketCreated
from tickets.followup import FollowUpPolicy, TicketFollowUp

HOUR = 3600


async def test_first_message_in_an_inbox_without_bot_opens_one_ticket(db: Database) -> None:
    inbox_id = await make_inbox(db, bot_enabled=False)
    conversation_id, customer_id = await customer_writes(
        db, "v_fu_1", "where is my order", inbox_id=inbox_id
    )
    assert await follow_up(db) == 1
    [ticket] = await tickets_of(db, conversation_id)
    assert (ticket.status, ticket.source, ticket.customer_id) == ("new", "inbox", customer_id)
    assert ticket.subject == "where is my order"
    assert [(a["kind"], a["actor"]) for a in await activities(db, ticket.id)] == [
        ("created", f"customer:{customer_id}")
    ]
    # Later messages belong to the same ticket; a pass with nothing unread does nothing.
    await customer_writes(db, "v_fu_1", "hello?", n=1, inbox_id=inbox_id)
    await follow_up(db)
    assert await follow_up(db) == 0
    assert await ticket_count(db) == 1


async def test_inbox_with_bot_gets_no_ticket_from_a_message(db: Database) -> None:
    inbox_id = await make_inbox(db, bot_enabled=True)
    await customer_writes(db, "v_fu_2", "hi bot", inbox_id=inbox_id)
    assert await follow_up(db) == 1
    assert await ticket_count(db) == 0


async def test_automatic_mail_opens_no_ticket(db: Database) -> None:
    inbox_id = await make_inbox(db, bot_enabled=False)
    message = InboundMessage(
        channel="webchat",
        inbox_id=inbox_id,
        sender_id="v_fu_auto",
        external_id="auto-1",
        thread_key="v_fu_auto",
        text="I am out of office",
        automatic=True,
    )
    await db.run(lambda s: do_intake(s, message))
    await follow_up(db)
    assert await ticket_count(db) == 0


async def test_reply_to_pending_ticket_opens_it_but_on_hold_stays(db: Database) -> None:
    inbox_id = await make_inbox(db, bot_enabled=False)
    conversation_id, customer_id = await customer_writes(db, "v_fu_3", inbox_id=inbox_id)
    ticket = await open_ticket(db, conversation_id)
    await follow_up(db)
    await set_status(db, ticket.id, "pending")
    await customer_writes(db, "v_fu_3", "here is the photo", n=1, inbox_id=inbox_id)
    await follow_up(db)
    assert (await get_ticket(db, ticket.id)).status == "open"
    last = (await activities(db, ticket.id))[-1]
    assert (last["kind"], last["actor"], last["data"]) == (
        "status",
        f"customer:{customer_id}",
        {"from": "pending", "to": "open"},
    )

    await set_status(db, ticket.id, "on_hold")
    await customer_writes(db, "v_fu_3", "any news?", n=2, inbox_id=inbox_id)
    await follow_up(db)
    assert (await get_ticket(db, ticket.id)).status == "on_hold"
    assert await ticket_count(db) == 1


@pytest.mark.parametrize("bot_enabled", [False, True])
async def test_reply_within_the_window_reopens_the_solved_ticket(
    db: Database, monkeypatch: pytest.MonkeyPatch, bot_enabled: bool
) -> None:
    inbox_id = await make_inbox(db, bot_enabled=bot_enabled)
    conversation_id, customer_id = await customer_writes(db, "v_fu_4", inbox_id=inbox_id)
    ticket = await open_ticket(db, conversation_id)
    await follow_up(db)
    clock = clock_for(ticket_service, monkeypatch)
    clock.advance(-71 * HOUR)  # solved 71 hours before the customer writes again
    await set_status(db, ticket.id, "solved")
    await customer_writes(db, "v_fu_4", "it broke again", n=1, inbox_id=inbox_id)
    await follow_up(db, FollowUpPolicy(reopen_window=timedelta(hours=72)))
    assert [t.id for t in await tickets_of(db, conversation_id)] == [ticket.id]
    reopened = await get_ticket(db, ticket.id)
    assert reopened.status == "open"
    assert reopened.solved_at is None
    last = (await activities(db, ticket.id))[-1]
    assert (last["actor"], last["data"]) == (
        f"customer:{customer_id}",
        {"from": "solved", "to": "open"},
    )


async def test_reply_after_the_window_starts_a_new_ticket(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox_id = await make_inbox(db, bot_enabled=False)
    conversation_id, _ = await customer_writes(db, "v_fu_5", inbox_id=inbox_id)
    ticket = await open_ticket(db, conversation_id)
    await follow_up(db)
    clock = clock_for(ticket_service, monkeypatch)
    clock.advance(-73 * HOUR)
    await set_status(db, ticket.id, "solved")
    await customer_writes(db, "v_fu_5", "new problem", n=1, inbox_id=inbox_id)
    await follow_up(db, FollowUpPolicy(reopen_window=timedelta(hours=72)))
    old, new = await tickets_of(db, conversation_id)
    assert (old.id, old.status) == (ticket.id, "solved")
    assert (new.status, new.source, new.subject) == ("new", "customer_reply", "new problem")
    assert new.reason == f"follow-up to ticket {ticket.id}"


async def test_reply_after_the_window_in_a_bot_inbox_is_the_bots(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox_id = await make_inbox(db, bot_enabled=True)
    conversation_id, _ = await customer_writes(db, "v_fu_6", inbox_id=inbox_id)
    ticket = await open_ticket(db, conversation_id)
    clock = clock_for(ticket_service, monkeypatch)
    clock.advance(-73 * HOUR)
    await set_status(db, ticket.id, "solved")
    await customer_writes(db, "v_fu_6", "thanks", n=1, inbox_id=inbox_id)
    await follow_up(db, FollowUpPolicy(reopen_window=timedelta(hours=72)))
    assert [(t.id, t.status) for t in await tickets_of(db, conversation_id)] == [
        (ticket.id, "solved")
    ]


async def test_a_closed_ticket_is_never_reopened(db: Database) -> None:
    inbox_id = await make_inbox(db, bot_enabled=False)
    conversation_id, _ = await customer_writes(db, "v_fu_7", inbox_id=inbox_id)
    ticket = await open_ticket(db, conversation_id)
    await set_status(db, ticket.id, "solved")
    await set_status(db, ticket.id, "closed")
    await customer_writes(db, "v_fu_7", "hello again", n=1, inbox_id=inbox_id)
    await follow_up(db)
    statuses = [(t.id == ticket.id, t.status) for t in await tickets_of(db, conversation_id)]
    assert statuses == [(True, "closed"), (False, "new")]


async def test_concurrent_messages_and_two_workers_open_exactly_one_ticket(
    db: Database,
) -> None:
    inbox_id = await make_inbox(db, bot_enabled=False)
    first = InboundMessage(
        channel="webchat",
        inbox_id=inbox_id,
        sender_id="v_fu_8",
        external_id="m-0",
        thread_key="v_fu_8",
        text="first",
    )
    await db.run(lambda s: do_intake(s, first))

    async def write(n: int) -> None:
        message = InboundMessage(
            channel="webchat",
            inbox_id=inbox_id,
            sender_id="v_fu_8",
            external_id=f"m-{n}",
            thread_key="v_fu_8",
            text=f"message {n}",
        )
        await db.run(lambda s: do_intake(s, message))

    async def passes() -> None:
        for _ in range(5):
            await follow_up(db)
            await asyncio.sleep(0)

    await asyncio.gather(*(write(n) for n in range(1, 11)), passes(), passes())
    await follow_up(db)
    assert await ticket_count(db) == 1


async def test_the_worker_wakes_on_a_customer_message(db: Database) -> None:
    inbox_id = await make_inbox(db, bot_enabled=False)
    worker = TicketFollowUp(db, FollowUpPolicy(poll_interval=60))
    async with db.bus.subscribe([INBOX_TOPIC]) as events:
        task = asyncio.create_task(worker.run_forever())
        try:
            await asyncio.sleep(0.05)  # the worker has subscribed and slept after its pass
            conversation_id, _ = await customer_writes(db, "v_fu_9", inbox_id=inbox_id)
            async with asyncio.timeout(5):
                async for event in events:
                    if isinstance(event, TicketCreated):
                        created = event
                        break
        finally:
            # stop() ends the loop at once even with a 60 s poll (the wake-up is cleared
            # before each pass, so a stop during one is not lost).
            worker.stop()
            await asyncio.wait_for(task, 10)
    assert created.ticket["conversation_ids"] == [conversation_id]
    assert (created.ticket["status"], created.inbox_id) == ("new", inbox_id)
    assert await ticket_count(db) == 1


async def test_a_stop_during_the_minimum_gap_ends_the_worker_at_once(db: Database) -> None:
    inbox_id = await make_inbox(db, bot_enabled=False)
    # A stream of messages: each pass waits until `min_gap` after the one before.
    worker = TicketFollowUp(db, FollowUpPolicy(poll_interval=60, min_gap=60))
    task = asyncio.create_task(worker.run_forever())
    try:
        await asyncio.sleep(0.05)  # the first pass ran; the next waits out the gap
        await customer_writes(db, "v_fu_gap", inbox_id=inbox_id)
        await asyncio.sleep(0.05)
        assert not task.done()
    finally:
        worker.stop()
        # Before: the worker slept out the gap (a minute here), then made one more pass.
        await asyncio.wait_for(task, 2)
    assert await ticket_count(db) == 0  # the pass it skipped is the next start's sweep
    await follow_up(db)
    assert await ticket_count(db) == 1


async def test_a_window_of_zero_never_reopens(db: Database) -> None:
    inbox_id = await make_inbox(db, bot_enabled=False)
    conversation_id, _ = await customer_writes(db, "v_fu_10", inbox_id=inbox_id)
    ticket = await open_ticket(db, conversation_id)
    await set_status(db, ticket.id, "solved")
    await customer_writes(db, "v_fu_10", "one more thing", n=1, inbox_id=inbox_id)
    await follow_up(db, FollowUpPolicy(reopen_window=timedelta(0)))
    assert [t.status for t in await tickets_of(db, conversation_id)] == ["solved", "new"]
