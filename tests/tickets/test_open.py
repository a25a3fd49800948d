"""Opening a ticket for a conversation: idempotent, one active ticket even under races."""

from __future__ import annotations

import asyncio

import pytest

from switchboard.errors import NotFound
from switchboard.tx import Database
from tests.tickets.support import activities, customer_writes, open_ticket, ticket_count


async def test_opens_a_new_ticket_linked_to_conversation_and_customer(db: Database) -> None:
    conversation_id, customer_id = await customer_writes(db, "v_open_1", "my parcel is late")
    ticket = await open_ticket(db, conversation_id)
    assert ticket.status == "new"
    assert ticket.customer_id == customer_id
    assert ticket.source == "bot_handoff"
    assert ticket.reason == "asked"
    assert ticket.subject == "my parcel is late"
    timeline = await activities(db, ticket.id)
    assert [(a["kind"], a["actor"]) for a in timeline] == [("created", "bot")]
    assert timeline[0]["data"]["conversation_id"] == conversation_id


async def test_second_call_returns_the_same_open_ticket(db: Database) -> None:
    conversation_id, _ = await customer_writes(db, "v_open_2")
    first = await open_ticket(db, conversation_id)
    second = await open_ticket(db, conversation_id, actor="agent:1")
    assert second.id == first.id
    assert await ticket_count(db) == 1


async def test_concurrent_opens_make_exactly_one_ticket(db: Database) -> None:
    conversation_id, _ = await customer_writes(db, "v_open_3")
    tickets = await asyncio.gather(*(open_ticket(db, conversation_id) for _ in range(8)))
    assert len({t.id for t in tickets}) == 1
    assert await ticket_count(db) == 1


async def test_unknown_conversation_is_not_found(db: Database) -> None:
    with pytest.raises(NotFound):
        await open_ticket(db, 999_999)
    assert await ticket_count(db) == 0
