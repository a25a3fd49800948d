"""`switchboard demo` seeds a working floor: a hand-off lands in the Support queue with
an SLA clock, and seeding again leaves an admin's edits alone."""

from __future__ import annotations

from sqlalchemy import func, select, update

from channels.base import InboundMessage
from conversations.canned import fill_placeholders
from conversations.models import Inbox
from conversations.service import do_intake
from routing.models import Queue, QueueMember
from switchboard.cli import _seed_demo
from switchboard.settings import Settings
from switchboard.tx import Database
from tickets.models import Ticket
from tickets.service import do_open_for_conversation
from tickets.sla_models import SlaClock


async def test_demo_floor_routes_a_hand_off_with_an_sla(db: Database, settings: Settings) -> None:
    await _seed_demo(settings)
    async with db.reading() as session:
        queue = (await session.execute(select(Queue))).scalar_one()
        members = (
            await session.execute(select(func.count()).select_from(QueueMember))
        ).scalar_one()
        inbox = (await session.execute(select(Inbox).where(Inbox.kind == "webchat"))).scalar_one()
    assert queue.name == "Support" and members == 2  # both demo agents

    async def hand_off(session: object) -> int:
        result = await do_intake(
            session,  # type: ignore[arg-type]
            InboundMessage(
                channel="webchat",
                inbox_id=inbox.id,
                sender_id="visitor-1",
                external_id="visitor-1:m1",
                thread_key="visitor-1",
                text="I want to talk to a person",
            ),
        )
        ticket = await do_open_for_conversation(
            session,  # type: ignore[arg-type]
            conversation_id=result.conversation_id,
            source="handoff",
            reason="request_human",
            actor="bot",
        )
        return ticket.id

    ticket_id = await db.run(hand_off)
    async with db.reading() as session:
        ticket = await session.get(Ticket, ticket_id)
        clocks = (
            (await session.execute(select(SlaClock).where(SlaClock.ticket_id == ticket_id)))
            .scalars()
            .all()
        )
    assert ticket is not None and ticket.queue_id == queue.id
    assert {c.metric for c in clocks} >= {"first_response", "resolution"}

    # An admin renames the queue; the demo started again changes nothing.
    await db.run(lambda s: s.execute(update(Queue).values(name="Floor")))
    await _seed_demo(settings)
    async with db.reading() as session:
        names = list((await session.execute(select(Queue.name))).scalars())
    assert names == ["Floor"]


def test_demo_canned_reply_greets_by_first_name() -> None:
    from switchboard.demo_floor import CANNED

    body = fill_placeholders(
        CANNED[0]["body"], {"customer.first_name": "Maria", "agent.name": "Alex Agent"}
    )
    assert body == "Hi Maria, this is Alex Agent. I'm looking into it now."
