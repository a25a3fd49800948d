"""Merging tickets: what moves, what is refused, and crossed merges at the same time."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select, update

from conversations.events import INBOX_TOPIC
from switchboard.errors import Conflict, InvalidInput
from switchboard.tx import Database
from tests.conftest import create_user
from tests.tickets.support import (
    activities,
    customer_writes,
    follow_up,
    get_ticket,
    make_inbox,
    open_ticket,
    ticket_count,
    tickets_of,
)
from tickets.checks import TicketChanges
from tickets.events import TicketEvent, TicketMerged, ticket_topic
from tickets.merge import do_merge_tickets
from tickets.models import Ticket, TicketActivity, TicketConversation, TicketNote, TicketTag
from tickets.service import do_add_note, do_create_ticket, do_update_ticket


async def merge(db: Database, survivor_id: int, merged_id: int, actor: str = "system") -> int:
    survivor = await db.run(
        lambda s: do_merge_tickets(s, survivor_id=survivor_id, merged_id=merged_id, actor=actor)
    )
    return survivor.id


async def two_tickets(db: Database, name: str) -> tuple[int, int, int, int]:
    """Two tickets of one customer, each with a conversation in its own inbox:
    (survivor, merged, survivor's conversation, merged's conversation)."""
    first_inbox, second_inbox = await make_inbox(db), await make_inbox(db)
    survivor_conversation, customer_id = await customer_writes(db, name, inbox_id=first_inbox)
    merged_conversation, _ = await customer_writes(db, name, inbox_id=second_inbox)
    survivor = await open_ticket(db, survivor_conversation)
    merged = await open_ticket(db, merged_conversation)
    # One person writing on two inboxes (as after a customer merge): one customer.
    async with db.sessionmaker.begin() as session:
        await session.execute(
            update(Ticket).where(Ticket.id == merged.id).values(customer_id=customer_id)
        )
    return survivor.id, merged.id, survivor_conversation, merged_conversation


async def test_merge_moves_conversations_notes_tags_and_history(db: Database) -> None:
    agent_id = await create_user(db, "merger@example.com")
    survivor_id, merged_id, survivor_conv, merged_conv = await two_tickets(db, "v_mg_1")
    await db.run(lambda s: do_add_note(s, merged_id, body="called them", author_user_id=agent_id))
    await db.run(
        lambda s: do_update_ticket(
            s, merged_id, TicketChanges(tags=("refund",)), actor=f"agent:{agent_id}"
        )
    )
    merged_history = len(await activities(db, merged_id))

    assert await merge(db, survivor_id, merged_id, actor=f"agent:{agent_id}") == survivor_id

    merged = await get_ticket(db, merged_id)
    assert (merged.status, merged.merged_into_id) == ("closed", survivor_id)
    assert [t.id for t in await tickets_of(db, merged_conv)] == [survivor_id]
    assert [t.id for t in await tickets_of(db, survivor_conv)] == [survivor_id]
    async with db.reading() as session:
        notes = (await session.execute(select(TicketNote.ticket_id, TicketNote.body))).all()
        tags = (await session.execute(select(TicketTag.ticket_id, TicketTag.tag))).all()
        moved = (
            await session.execute(
                select(TicketActivity.id).where(TicketActivity.merged_from_ticket_id == merged_id)
            )
        ).all()
    assert [tuple(n) for n in notes] == [(survivor_id, "called them")]
    # The survivor gains the merged ticket's tags; the merged one keeps its own record.
    assert sorted(tuple(t) for t in tags) == [(survivor_id, "refund"), (merged_id, "refund")]
    assert len(moved) == merged_history
    entry = (await activities(db, survivor_id))[-1]
    assert (entry["kind"], entry["actor"], entry["user"]) == (
        "merged",
        f"agent:{agent_id}",
        agent_id,
    )
    assert entry["data"]["merged_ticket_id"] == merged_id
    assert entry["data"]["conversation_ids"] == [merged_conv]
    [closing] = await activities(db, merged_id)
    assert (closing["kind"], closing["data"]["survivor_id"]) == ("merged_into", survivor_id)


async def test_after_a_merge_the_moved_conversation_belongs_to_the_survivor(
    db: Database,
) -> None:
    survivor_id, merged_id, _, merged_conv = await two_tickets(db, "v_mg_2")
    await follow_up(db)
    await merge(db, survivor_id, merged_id)
    # A new message there finds the survivor open: no new ticket.
    async with db.reading() as session:
        inbox_conv = (
            await session.execute(
                select(TicketConversation.open_conversation_id).where(
                    TicketConversation.ticket_id == survivor_id
                )
            )
        ).scalars()
        assert merged_conv in set(inbox_conv)
    assert await ticket_count(db) == 2


async def test_refusals_name_the_reason_and_change_nothing(db: Database) -> None:
    survivor_id, merged_id, _, _ = await two_tickets(db, "v_mg_3")
    with pytest.raises(InvalidInput, match="into itself"):
        await merge(db, survivor_id, survivor_id)
    await merge(db, survivor_id, merged_id)
    with pytest.raises(Conflict, match=f"ticket {merged_id} was merged into ticket {survivor_id}"):
        await merge(db, survivor_id, merged_id)
    with pytest.raises(Conflict, match=f"ticket {merged_id} was merged into ticket {survivor_id}"):
        await merge(db, merged_id, survivor_id)
    assert (await get_ticket(db, survivor_id)).status == "new"


async def test_tickets_of_two_customers_are_not_merged(db: Database) -> None:
    first, _ = await customer_writes(db, "v_mg_4a")
    second, _ = await customer_writes(db, "v_mg_4b")
    a, b = await open_ticket(db, first), await open_ticket(db, second)
    with pytest.raises(Conflict, match="another customer"):
        await merge(db, a.id, b.id)
    assert (await get_ticket(db, b.id)).status == "new"


async def test_crossed_concurrent_merges_never_both_succeed(db: Database) -> None:
    for round_ in range(6):
        a, b, _, _ = await two_tickets(db, f"v_mg_x{round_}")
        outcomes = await asyncio.gather(merge(db, a, b), merge(db, b, a), return_exceptions=True)
        won = [o for o in outcomes if isinstance(o, int)]
        lost = [o for o in outcomes if isinstance(o, Exception)]
        assert len(won) == 1, outcomes
        assert len(lost) == 1 and isinstance(lost[0], Conflict), outcomes
        survivor = await get_ticket(db, won[0])
        merged = await get_ticket(db, b if won[0] == a else a)
        assert survivor.status == "new" and survivor.merged_into_id is None
        assert merged.status == "closed" and merged.merged_into_id == survivor.id


async def test_a_ticket_without_conversation_merges_too(db: Database) -> None:
    conversation_id, customer_id = await customer_writes(db, "v_mg_5")
    with_conversation = await open_ticket(db, conversation_id)
    phone = await db.run(
        lambda s: do_create_ticket(s, customer_id=customer_id, actor="system", subject="call")
    )
    await merge(db, phone.id, with_conversation.id)
    assert [t.id for t in await tickets_of(db, conversation_id)] == [phone.id]


async def test_merge_and_note_events_reach_the_inbox_topic_after_commit(db: Database) -> None:
    agent_id = await create_user(db, "events@example.com")
    survivor_id, merged_id, survivor_conv, _ = await two_tickets(db, "v_mg_6")
    async with db.bus.subscribe([INBOX_TOPIC, ticket_topic(survivor_id)]) as events:
        await db.run(lambda s: do_add_note(s, survivor_id, body="n", author_user_id=agent_id))
        await merge(db, survivor_id, merged_id, actor=f"agent:{agent_id}")
        seen = []
        async with asyncio.timeout(5):
            async for event in events:
                if isinstance(event, TicketEvent):
                    seen.append(event)
                if len(seen) == 3:  # once each, though on two topics: note, merged, updated
                    break
    kinds = {(type(e).__name__, e.ticket_id) for e in seen}
    assert ("TicketNoteAdded", survivor_id) in kinds
    assert ("TicketMerged", merged_id) in kinds
    assert ("TicketUpdated", survivor_id) in kinds
    merged_event = next(e for e in seen if isinstance(e, TicketMerged))
    assert merged_event.survivor_id == survivor_id
    assert merged_event.actor == f"agent:{agent_id}"
    assert survivor_conv in merged_event.ticket["conversation_ids"]
