"""Assignment: which available agent of a queue gets its next waiting ticket.

`choose` is the strategy itself, a pure function over the candidates' loads, so its
fairness is testable over thousands of tickets without a database. `do_assign_queue`
runs it for one queue inside one transaction that makes it safe across processes:

- the queue's row is locked (`FOR UPDATE SKIP LOCKED` on PostgreSQL: a second process
  skips a queue the first is assigning; SQLite takes its write lock at BEGIN IMMEDIATE);
- the candidates' profile rows are locked in user-id order, so two queues sharing an
  agent are assigned one after the other, each counting the other's assignments (no
  capacity is exceeded), and never deadlock;
- the waiting tickets' rows are locked (SKIP LOCKED: one an agent is claiming right now
  is left to the claim) and taken only if still unassigned, so no ticket gets two agents.

Waiting tickets are taken oldest first; when no available member has room the rest
wait, in order, for the next pass (an agent coming online or finishing a ticket wakes it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.models import Conversation
from routing.models import AgentProfile, Presence, Queue, QueueMember, Strategy, TicketRouting
from switchboard.db import utcnow
from switchboard.models import User
from switchboard.tx import emit
from tickets.events import TicketUpdated
from tickets.models import ACTIVE_STATUSES, Ticket, TicketConversation
from tickets.service import record, ticket_views

# Least-loaded counts an urgent ticket as four low ones.
PRIORITY_WEIGHT = {"low": 1, "normal": 2, "high": 3, "urgent": 4}
ACTIVE = [s.value for s in ACTIVE_STATUSES]
ACTOR = "system"


@dataclass
class Candidate:
    user_id: int
    capacity: int
    open_count: int = 0
    weighted_load: int = 0
    skills: frozenset[str] = field(default_factory=frozenset)
    languages: frozenset[str] = field(default_factory=frozenset)

    @property
    def has_room(self) -> bool:
        return self.open_count < self.capacity

    def take(self, priority: str) -> None:
        self.open_count += 1
        self.weighted_load += PRIORITY_WEIGHT.get(priority, 2)


@dataclass(frozen=True)
class WaitingTicket:
    id: int
    priority: str
    language: str | None = None
    skills: frozenset[str] = frozenset()


def _after(user_id: int, last: int | None) -> tuple[int, int]:
    """Rotation order: the members after the last one served first, then from the top."""
    return (0 if last is None or user_id > last else 1, user_id)


def _speaks(candidate: Candidate, language: str | None) -> bool:
    if not language:
        return True
    lang = language.lower()
    return any(lang == have or lang.startswith(have + "-") for have in candidate.languages)


def choose(
    strategy: str,
    candidates: Sequence[Candidate],
    ticket: WaitingTicket,
    last_user_id: int | None,
) -> Candidate | None:
    """The candidate who gets `ticket`, or None when every one is at capacity."""
    room = [c for c in candidates if c.has_room]
    if not room:
        return None
    if strategy == Strategy.ROUND_ROBIN:
        return min(room, key=lambda c: _after(c.user_id, last_user_id))
    pool = room
    if strategy == Strategy.SKILLS:
        # Fall back to any member with room when nobody who matches has room.
        matched = [c for c in room if _speaks(c, ticket.language) and ticket.skills <= c.skills]
        pool = matched or room
    return min(
        pool,
        key=lambda c: (c.weighted_load, c.open_count, _after(c.user_id, last_user_id)),
    )


async def _lock_queue(session: AsyncSession, queue_id: int) -> Queue | None:
    return (
        await session.execute(
            select(Queue)
            .where(Queue.id == queue_id)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


async def _candidates(session: AsyncSession, queue_id: int) -> list[Candidate]:
    """The queue's available members, their profile rows locked, with their loads over
    every queue (capacity is per agent, not per queue)."""
    profiles = list(
        (
            await session.execute(
                select(AgentProfile)
                .join(QueueMember, QueueMember.user_id == AgentProfile.user_id)
                .join(User, User.id == AgentProfile.user_id)
                .where(
                    QueueMember.queue_id == queue_id,
                    AgentProfile.presence == Presence.ONLINE,
                    User.active.is_(True),
                )
                .order_by(AgentProfile.user_id)
                .with_for_update(of=AgentProfile)
                .execution_options(populate_existing=True)
            )
        ).scalars()
    )
    candidates = {
        p.user_id: Candidate(
            user_id=p.user_id,
            capacity=p.capacity,
            skills=frozenset(p.skills or ()),
            languages=frozenset(p.languages or ()),
        )
        for p in profiles
    }
    if candidates:
        rows = await session.execute(
            select(Ticket.assignee_user_id, Ticket.priority, func.count())
            .where(
                Ticket.assignee_user_id.in_(list(candidates)),
                Ticket.status.in_(ACTIVE),
            )
            .group_by(Ticket.assignee_user_id, Ticket.priority)
        )
        for user_id, priority, count in rows:
            if user_id is None:
                continue
            candidate = candidates[user_id]
            candidate.open_count += count
            candidate.weighted_load += PRIORITY_WEIGHT.get(priority, 2) * count
    return list(candidates.values())


async def waiting_tickets(
    session: AsyncSession, queue_id: int, limit: int, *, lock: bool = False
) -> list[WaitingTicket]:
    """The queue's unassigned active tickets, oldest first; with `lock`, their rows are
    locked, skipping any another transaction holds (an agent claiming it right now)."""
    query = (
        select(Ticket.id, Ticket.priority, TicketRouting.language, TicketRouting.skills)
        .outerjoin(TicketRouting, TicketRouting.ticket_id == Ticket.id)
        .where(
            Ticket.queue_id == queue_id,
            Ticket.assignee_user_id.is_(None),
            Ticket.status.in_(ACTIVE),
        )
        .order_by(Ticket.id)
        .limit(limit)
    )
    if lock:
        query = query.with_for_update(of=Ticket, skip_locked=True)
    rows = await session.execute(query)
    return [
        WaitingTicket(id=i, priority=p, language=lang, skills=frozenset(skills or ()))
        for i, p, lang, skills in rows
    ]


async def queues_with_waiting(session: AsyncSession) -> list[int]:
    """Queues that hold unassigned tickets and have at least one member online."""
    online_member = (
        select(QueueMember.queue_id)
        .join(AgentProfile, AgentProfile.user_id == QueueMember.user_id)
        .where(AgentProfile.presence == Presence.ONLINE)
    )
    rows = await session.execute(
        select(Ticket.queue_id)
        .where(
            Ticket.queue_id.is_not(None),
            Ticket.assignee_user_id.is_(None),
            Ticket.status.in_(ACTIVE),
            Ticket.queue_id.in_(online_member),
        )
        .group_by(Ticket.queue_id)
        .order_by(func.min(Ticket.id))
    )
    return [q for (q,) in rows if q is not None]


async def _inbox_ids(session: AsyncSession, ticket_ids: Sequence[int]) -> dict[int, int]:
    """The inbox of each ticket's first conversation (as `tickets.service.ticket_inbox_id`)."""
    first = (
        select(TicketConversation.ticket_id, func.min(TicketConversation.id).label("link_id"))
        .where(TicketConversation.ticket_id.in_(ticket_ids))
        .group_by(TicketConversation.ticket_id)
        .subquery()
    )
    rows = await session.execute(
        select(first.c.ticket_id, Conversation.inbox_id)
        .join(TicketConversation, TicketConversation.id == first.c.link_id)
        .join(Conversation, Conversation.id == TicketConversation.conversation_id)
    )
    return {ticket_id: inbox_id for ticket_id, inbox_id in rows}


async def do_assign_queue(
    session: AsyncSession, queue_id: int, *, limit: int = 100, now: datetime | None = None
) -> int:
    """Assign up to `limit` of the queue's waiting tickets; how many were assigned.

    Decided in memory and written in bulk (one UPDATE per agent, the timeline entries
    and the events' ticket views in a few statements for the whole batch): per ticket,
    the same timeline entry and `ticket.updated` event as an assignment by hand."""
    queue = await _lock_queue(session, queue_id)
    if queue is None:
        return 0  # deleted, or another process is assigning it right now
    candidates = await _candidates(session, queue.id)
    if not candidates:
        return 0
    plan: dict[int, list[int]] = {}
    chosen_for: dict[int, int] = {}
    last = queue.last_assigned_user_id
    for waiting in await waiting_tickets(session, queue.id, limit, lock=True):
        chosen = choose(queue.strategy, candidates, waiting, last)
        if chosen is None:
            break  # everyone is at capacity: the rest wait, in order
        chosen.take(waiting.priority)
        last = chosen.user_id
        plan.setdefault(chosen.user_id, []).append(waiting.id)
        chosen_for[waiting.id] = chosen.user_id
    if not chosen_for:
        return 0
    at = now or utcnow()
    for user_id, ticket_ids in plan.items():
        # The rows are locked and were unassigned: the condition only restates it.
        await session.execute(
            update(Ticket)
            .where(Ticket.id.in_(ticket_ids), Ticket.assignee_user_id.is_(None))
            .values(assignee_user_id=user_id, updated_at=at)
        )
    queue.last_assigned_user_id = last
    for ticket_id, user_id in chosen_for.items():
        record(session, ticket_id, "assignee", ACTOR, {"from": None, "to": user_id}, at=at)
    await session.flush()
    tickets = list(
        (
            await session.execute(
                select(Ticket)
                .where(Ticket.id.in_(list(chosen_for)))
                .order_by(Ticket.id)
                .execution_options(populate_existing=True)
            )
        ).scalars()
    )
    inboxes = await _inbox_ids(session, list(chosen_for))
    for ticket, view in zip(tickets, await ticket_views(session, tickets), strict=True):
        emit(
            session,
            TicketUpdated(
                actor=ACTOR,
                ticket_id=ticket.id,
                inbox_id=inboxes.get(ticket.id),
                ticket=view,
                changes={"assignee": {"from": None, "to": chosen_for[ticket.id]}},
            ),
        )
    return len(chosen_for)
