"""Known data for the report tests: tickets, replies, clocks, ratings and bot turns at
chosen times, so every figure of every report can be worked out by hand.

The period is 2026-11-02..2026-11-03 in Asia/Shanghai (UTC+8): bucket 0 is
[2026-11-01T16:00Z, 2026-11-02T16:00Z), bucket 1 is [2026-11-02T16:00Z, 2026-11-03T16:00Z).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from bot.models import BotConversation, BotReply
from conversations.models import AuthorKind
from conversations.service import do_reply
from routing.models import Queue
from switchboard.tx import Database
from tests.tickets.support import customer_writes, make_inbox, open_ticket
from tickets.csat_models import CsatSurvey
from tickets.models import Ticket
from tickets.sla_models import SlaClock

ZONE = "Asia/Shanghai"
FIRST_DAY, LAST_DAY = "2026-11-02", "2026-11-03"
NOW = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


@dataclass
class Known:
    tickets: dict[str, int] = field(default_factory=dict)
    conversations: dict[str, int] = field(default_factory=dict)
    queue_id: int = 0


async def message_at(
    db: Database, conversation_id: int, kind: AuthorKind, when: datetime, private: bool = False
) -> int:
    async def write(session: Any) -> int:
        message = await do_reply(
            session,
            conversation_id=conversation_id,
            text="reply",
            author_kind=kind,
            private=private,
        )
        message.created_at = when
        await session.flush()
        return message.id

    return await db.run(write)


async def bot_reply(
    db: Database, inbox_id: int, conversation_id: int, kind: str, when: datetime, reason: str = ""
) -> None:
    message_id = await message_at(db, conversation_id, AuthorKind.BOT, when)

    async def write(session: Any) -> None:
        session.add(
            BotReply(
                message_id=message_id,
                conversation_id=conversation_id,
                inbox_id=inbox_id,
                kind=kind,
                reason=reason or None,
                guesses=[],
                created_at=when,
            )
        )

    await db.run(write)


async def _ticket(
    db: Database,
    inbox_id: int,
    name: str,
    created: datetime,
    known: Known,
    *,
    reply_after: float | None = None,
    solved_after: float | None = None,
) -> int:
    conversation_id, _ = await customer_writes(db, f"report-{name}", "help", inbox_id=inbox_id)
    ticket = await open_ticket(db, conversation_id)
    values: dict[str, Any] = {"created_at": created}
    if solved_after is not None:
        values.update(status="solved", solved_at=created + timedelta(seconds=solved_after))
    await db.run(lambda s: s.execute(update(Ticket).where(Ticket.id == ticket.id).values(**values)))
    if reply_after is not None:
        await message_at(
            db, conversation_id, AuthorKind.AGENT, created + timedelta(seconds=reply_after)
        )
    known.tickets[name] = ticket.id
    known.conversations[name] = conversation_id
    return ticket.id


def clock_row(ticket_id: int, metric: str, status: str, due: datetime) -> SlaClock:
    return SlaClock(
        ticket_id=ticket_id,
        metric=metric,
        status=status,
        priority="normal",
        target_minutes=30,
        started_at=due - timedelta(minutes=30),
        due_at=due,
        paused_seconds=0,
        stopped_at=due if status != "active" else None,
        breached_at=due if status == "missed" else None,
    )


def survey_row(
    ticket_id: int, conversation_id: int, inbox_id: int, rating: int | None, when: datetime
) -> CsatSurvey:
    return CsatSurvey(
        ticket_id=ticket_id,
        conversation_id=conversation_id,
        inbox_id=inbox_id,
        customer_id=1,
        locale="en",
        requested_at=when - timedelta(hours=1),
        expires_at=when + timedelta(days=7),
        rating=rating,
        rated_at=when if rating is not None else None,
    )


async def arrange(db: Database) -> Known:
    known = Known()
    inbox = await make_inbox(db)
    # T1, T2 in bucket 0; T3, T4 in bucket 1; T5 before the period (solved inside it).
    t1 = await _ticket(db, inbox, "t1", at(1, 17), known, reply_after=60, solved_after=3600)
    t2 = await _ticket(db, inbox, "t2", at(1, 18), known, reply_after=120, solved_after=7200)
    t3 = await _ticket(db, inbox, "t3", at(2, 17), known, reply_after=300)
    await _ticket(db, inbox, "t4", at(2, 18), known)
    t5 = await _ticket(db, inbox, "t5", at(1, 15), known, reply_after=10, solved_after=93600)
    # An internal note is no reply: T4 stays unanswered.
    await message_at(db, known.conversations["t4"], AuthorKind.AGENT, at(2, 18, 5), private=True)

    async def arrange_rows(session: Any) -> int:
        queue = Queue(name="report queue", strategy="round_robin")
        session.add(queue)
        await session.flush()
        await session.execute(update(Ticket).where(Ticket.id == t1).values(queue_id=queue.id))
        session.add_all(
            [
                clock_row(t1, "first_response", "hit", at(1, 17, 30)),
                clock_row(t2, "first_response", "missed", at(1, 18, 30)),
                clock_row(t3, "resolution", "hit", at(2, 20)),
                clock_row(t3, "first_response", "active", at(2, 17, 30)),
                clock_row(t5, "resolution", "missed", at(1, 15, 30)),
            ]
        )
        conversations = known.conversations
        session.add_all(
            [
                survey_row(t1, conversations["t1"], inbox, 5, at(1, 20)),
                survey_row(t2, conversations["t2"], inbox, 2, at(2, 17)),
                survey_row(t5, conversations["t5"], inbox, 4, at(2, 18)),
                survey_row(t3, conversations["t3"], inbox, None, at(2, 19)),
            ]
        )
        await session.flush()
        return queue.id

    known.queue_id = await db.run(arrange_rows)

    # The bot: C6 answered (contained); C7 answered then handed off (out of scope); C8
    # answered, then an agent took over; C9 began before the period; C10 only clarified,
    # then the customer asked for a person.
    async def bot_conversation(name: str) -> int:
        conversation_id, _ = await customer_writes(db, f"report-{name}", "q", inbox_id=inbox)
        known.conversations[name] = conversation_id
        return conversation_id

    c6, c7, c8, c9, c10 = [await bot_conversation(n) for n in ("c6", "c7", "c8", "c9", "c10")]
    await bot_reply(db, inbox, c6, "answer", at(1, 17))
    await bot_reply(db, inbox, c7, "answer", at(1, 17))
    await bot_reply(db, inbox, c7, "handoff", at(1, 17, 5), "out_of_scope")
    await bot_reply(db, inbox, c8, "answer", at(2, 17))
    await message_at(db, c8, AuthorKind.AGENT, at(2, 17, 10))
    await bot_reply(db, inbox, c9, "answer", datetime(2026, 10, 31, 12, tzinfo=UTC))
    await bot_reply(db, inbox, c9, "answer", at(2, 12))
    await bot_reply(db, inbox, c10, "clarify", at(2, 19))
    await bot_reply(db, inbox, c10, "handoff", at(2, 19, 5), "customer_asked")

    async def bot_state(session: Any) -> None:
        session.add(
            BotConversation(
                conversation_id=c8,
                mode="human",
                handoff_reason="agent_replied",
                handed_off_at=at(2, 17, 10),
            )
        )

    await db.run(bot_state)
    known.tickets["c7"] = (await open_ticket(db, c7)).id
    return known
