"""Helpers for the SLA tests: policies stored directly, clocks read back, passes run."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from conversations.models import AuthorKind
from conversations.service import do_reply
from switchboard.db import utcnow
from switchboard.tx import Database
from tickets.sla_models import SlaCalendar, SlaClock, SlaPolicy
from tickets.sla_worker import MessageSeen, SlaWorkerPolicy, do_message_seen, do_sla_pass

TARGETS = {
    "low": {"first_response": 480, "next_response": 480, "resolution": 2880},
    "normal": {"first_response": 60, "next_response": 120, "resolution": 480},
    "high": {"first_response": 30, "next_response": 60, "resolution": 240},
    "urgent": {"first_response": 10, "next_response": 30, "resolution": 120},
}


async def make_policy(
    db: Database,
    *,
    name: str = "standard",
    escalations: list[dict[str, Any]] | None = None,
    calendar: dict[str, Any] | None = None,
    is_default: bool = True,
) -> int:
    async def create(session: Any) -> int:
        calendar_id = None
        if calendar is not None:
            row = SlaCalendar(name=f"{name} hours", holidays=[], **calendar)
            session.add(row)
            await session.flush()
            calendar_id = row.id
        policy = SlaPolicy(
            name=name,
            calendar_id=calendar_id,
            targets=TARGETS,
            escalations=escalations
            if escalations is not None
            else [{"when": "warning", "action": "notify"}, {"when": "breach", "action": "notify"}],
            is_default=is_default,
        )
        session.add(policy)
        await session.flush()
        return policy.id

    return await db.run(create)


async def clocks(db: Database, ticket_id: int) -> list[SlaClock]:
    async with db.reading() as session:
        rows = await session.execute(
            select(SlaClock).where(SlaClock.ticket_id == ticket_id).order_by(SlaClock.id)
        )
        return list(rows.scalars())


async def clock(db: Database, ticket_id: int, metric: str) -> SlaClock:
    """The latest clock of `metric`."""
    return [c for c in await clocks(db, ticket_id) if c.metric == metric][-1]


async def sla_pass(db: Database, at: datetime, warning_minutes: int = 15) -> int:
    policy = SlaWorkerPolicy(warning=timedelta(minutes=warning_minutes))
    return await db.run(lambda s: do_sla_pass(s, at, policy))


async def agent_replies(
    db: Database, conversation_id: int, agent_id: int | None = None, *, private: bool = False
) -> datetime:
    """A reply through `do_reply`, and the SLA worker hearing of it, as its event would."""
    message = await db.run(
        lambda s: do_reply(
            s,
            conversation_id=conversation_id,
            text="on it",
            author_kind=AuthorKind.AGENT,
            author_user_id=agent_id,
            private=private,
        )
    )
    if not private:
        seen = MessageSeen(conversation_id, message.created_at, agent=True)
        await db.run(lambda s: do_message_seen(s, seen))
    return message.created_at


async def customer_seen(db: Database, conversation_id: int, at: datetime | None = None) -> None:
    seen = MessageSeen(conversation_id, at or utcnow(), agent=False)
    await db.run(lambda s: do_message_seen(s, seen))
