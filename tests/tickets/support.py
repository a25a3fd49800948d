"""Helpers for the ticket tests: conversations arranged through intake, tickets read back."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import func, select

from channels.base import InboundMessage
from conversations.models import Inbox
from conversations.service import do_intake
from switchboard.db import utcnow
from switchboard.tx import Database
from tickets.checks import TicketChanges
from tickets.followup import FollowUpPolicy, do_follow_up
from tickets.models import Ticket, TicketActivity, TicketConversation, TicketStatus
from tickets.service import do_open_for_conversation, do_update_ticket


async def make_inbox(db: Database, *, bot_enabled: bool = False) -> int:
    """A web-chat inbox of our own (the app's default one exists only once it started)."""

    async def create(session: Any) -> int:
        inbox = Inbox(
            key=f"t{secrets.token_hex(4)}",
            kind="webchat",
            name="tickets test",
            public_key=secrets.token_urlsafe(16),
            bot_enabled=bot_enabled,
        )
        session.add(inbox)
        await session.flush()
        return inbox.id

    return await db.run(create)


async def customer_writes(
    db: Database, visitor_id: str, text: str = "hi", *, n: int = 0, inbox_id: int | None = None
) -> tuple[int, int]:
    """One customer message in the web-chat inbox: (conversation id, customer id)."""
    if inbox_id is None:
        inbox_id = await make_inbox(db)
    message = InboundMessage(
        channel="webchat",
        inbox_id=inbox_id,
        sender_id=visitor_id,
        external_id=f"{visitor_id}:{n}:{text[:10]}",
        thread_key=visitor_id,
        text=text,
    )
    result = await db.run(lambda s: do_intake(s, message))
    assert result.customer_id is not None or result.duplicate
    return result.conversation_id, result.customer_id or 0


async def open_ticket(db: Database, conversation_id: int, actor: str = "bot") -> Ticket:
    return await db.run(
        lambda s: do_open_for_conversation(
            s, conversation_id=conversation_id, source="bot_handoff", reason="asked", actor=actor
        )
    )


async def ticket_count(db: Database) -> int:
    async with db.reading() as session:
        return (await session.execute(select(func.count(Ticket.id)))).scalar_one()


async def get_ticket(db: Database, ticket_id: int) -> Ticket:
    async with db.reading() as session:
        found = await session.get(Ticket, ticket_id)
        assert found is not None
        return found


async def tickets_of(db: Database, conversation_id: int) -> list[Ticket]:
    async with db.reading() as session:
        rows = await session.execute(
            select(Ticket)
            .join(TicketConversation, TicketConversation.ticket_id == Ticket.id)
            .where(TicketConversation.conversation_id == conversation_id)
            .order_by(Ticket.id)
        )
        return list(rows.scalars())


async def activities(db: Database, ticket_id: int) -> list[dict[str, Any]]:
    async with db.reading() as session:
        rows = await session.execute(
            select(TicketActivity)
            .where(TicketActivity.ticket_id == ticket_id)
            .order_by(TicketActivity.id)
        )
        return [
            {"kind": a.kind, "actor": a.actor, "data": a.data, "user": a.actor_user_id}
            for a in rows.scalars()
        ]


async def follow_up(db: Database, policy: FollowUpPolicy | None = None) -> int:
    """One pass of the ticket follow-up, now."""
    chosen = policy or FollowUpPolicy()
    return await db.run(lambda s: do_follow_up(s, utcnow(), chosen))


async def set_status(db: Database, ticket_id: int, status: str, actor: str = "system") -> Ticket:
    return await db.run(
        lambda s: do_update_ticket(
            s, ticket_id, TicketChanges(status=TicketStatus(status)), actor=actor
        )
    )
