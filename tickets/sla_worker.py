"""The SLA breach worker: replies meet response clocks; due clocks warn, then breach.

A pass reads running clocks due within the warning lead from a partial index (active,
not paused, by due time) and locks their tickets with SKIP LOCKED on PostgreSQL, so
processes split the work (SQLite serialises writers). For each response clock it first
looks for a public agent reply in the ticket's conversations since the clock started —
replies are normally seen at once through the `inbox` topic, this is the net for events
lost while Redis was down. Then a conditional UPDATE … WHERE status = 'active' AND
breached_at IS NULL … RETURNING (warned_at IS NULL for a warning) marks each clock, and
only the transaction whose UPDATE returned the row runs the policy's escalation actions,
in that same transaction: every warning and breach happens exactly once across
processes, and a failed pass rolls back the mark with its actions.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.events import INBOX_TOPIC, MessageCreated
from conversations.models import AuthorKind, Direction, Message
from switchboard.background import BackgroundWorker
from switchboard.bus import Resync
from switchboard.db import utcnow
from switchboard.errors import DomainError
from switchboard.events import Event
from switchboard.settings import Settings
from switchboard.tx import Database, emit, savepoint
from tickets import sla
from tickets.checks import TicketChanges
from tickets.events import TicketUpdated
from tickets.lifecycle import Cause
from tickets.models import Ticket, TicketConversation, TicketPriority, TicketStatus
from tickets.service import (
    do_update_ticket,
    full_view,
    lock_ticket,
    open_ticket_for,
    record,
    ticket_inbox_id,
)
from tickets.sla_events import SlaAlert, SlaBreached, SlaWarning
from tickets.sla_models import RESPONSE_METRICS, ClockStatus, SlaClock, SlaPolicy, running

log = logging.getLogger(__name__)
ACTOR = "system"
PRIORITY_ORDER = list(TicketPriority)
# What a policy without escalations of its own does.
DEFAULT_ESCALATIONS: list[dict[str, Any]] = [
    {"when": "warning", "action": "notify"},
    {"when": "breach", "action": "notify"},
]


@dataclass(frozen=True)
class SlaWorkerPolicy:
    warning: timedelta = timedelta(minutes=15)
    batch: int = 200
    # The longest sleep; the worker otherwise wakes for the next due time.
    poll_interval: float = 30.0
    # Seconds between two passes that handle messages heard on the bus. A lone message
    # is handled at once; under a stream of them (every customer message is heard) one
    # read covers all that arrived in this gap instead of one read each, which was most
    # of the hub's CPU per message with one customer writing.
    message_gap: float = 0.2

    @classmethod
    def from_settings(cls, settings: Settings) -> SlaWorkerPolicy:
        return cls(warning=timedelta(minutes=settings.sla_warning_minutes))


@dataclass(frozen=True)
class MessageSeen:
    conversation_id: int
    at: datetime
    agent: bool  # an agent's public reply; else a customer's message


# --- replies ---------------------------------------------------------------------------


async def conversations_with_sla(session: AsyncSession, conversation_ids: set[int]) -> set[int]:
    """Which of these conversations have an active ticket under an SLA policy now."""
    found: set[int] = set()
    ids = sorted(conversation_ids)
    for start in range(0, len(ids), 500):
        rows = await session.execute(
            select(TicketConversation.open_conversation_id)
            .join(Ticket, Ticket.id == TicketConversation.ticket_id)
            .where(
                TicketConversation.open_conversation_id.in_(ids[start : start + 500]),
                Ticket.sla_policy_id.is_not(None),
            )
        )
        found.update(cid for cid in rows.scalars() if cid is not None)
    return found


async def do_message_seen(session: AsyncSession, seen: MessageSeen) -> None:
    """An agent reply meets the running response clock; a customer message after an
    agent reply starts a next-response clock. The ticket row is locked first, so two
    processes hearing the same event do the work once."""
    ticket = await open_ticket_for(session, seen.conversation_id)
    if ticket is None or ticket.sla_policy_id is None:
        return
    ticket = await lock_ticket(session, ticket.id)
    if seen.agent:
        changed = await sla.on_agent_replied(session, ticket, seen.at)
    else:
        started = await sla.on_customer_wrote(session, ticket, seen.at)
        changed = [started] if started is not None else []
    if changed:
        # The inbox's SLA display changes live, like any other ticket change.
        await session.flush()
        emit(
            session,
            TicketUpdated(
                actor=ACTOR,
                ticket_id=ticket.id,
                inbox_id=await ticket_inbox_id(session, ticket.id),
                ticket=await full_view(session, ticket),
                changes={"sla": [{"metric": c.metric, "status": c.status} for c in changed]},
            ),
        )


async def _first_agent_reply(session: AsyncSession, ticket_id: int, since: datetime) -> Any:
    return (
        await session.execute(
            select(func.min(Message.created_at))
            .join(
                TicketConversation,
                TicketConversation.conversation_id == Message.conversation_id,
            )
            .where(
                TicketConversation.ticket_id == ticket_id,
                Message.direction == Direction.OUTBOUND,
                Message.author_kind == AuthorKind.AGENT,
                Message.private.is_(False),
                Message.created_at >= since,
            )
        )
    ).scalar_one_or_none()


# --- the scan --------------------------------------------------------------------------


async def _claim(session: AsyncSession, now: datetime, policy: SlaWorkerPolicy) -> list[int]:
    """Clocks due for a warning or a breach whose tickets this transaction has locked.

    The ticket row is the lock (SKIP LOCKED: another process has that ticket this pass),
    taken before any clock is written, the same order as every ticket change: a breach
    escalation that changes the priority rewrites the ticket's other clocks, and
    locking clock rows first would let two processes deadlock over one ticket."""
    c = SlaClock
    due = (
        await session.execute(
            select(c.id, c.ticket_id)
            .where(
                running(),
                c.due_at <= now + policy.warning,
                or_(c.warned_at.is_(None), c.due_at <= now),
            )
            .order_by(c.due_at)
            .limit(policy.batch)
        )
    ).all()
    if not due:
        return []
    locked = set(
        (
            await session.execute(
                select(Ticket.id)
                .where(Ticket.id.in_({ticket_id for _, ticket_id in due}))
                .order_by(Ticket.id)
                .with_for_update(skip_locked=True, key_share=True)
            )
        ).scalars()
    )
    return [clock_id for clock_id, ticket_id in due if ticket_id in locked]


async def _mark(session: AsyncSession, clock_id: int, now: datetime, breach: bool) -> bool:
    """The exactly-once step: True only for the one transaction that made the mark."""
    c = SlaClock
    if breach:
        statement = (
            update(c)
            .where(
                c.id == clock_id,
                c.status == ClockStatus.ACTIVE,
                c.breached_at.is_(None),
                c.paused_at.is_(None),
                c.due_at <= now,
            )
            .values(status=ClockStatus.MISSED, breached_at=now)
        )
    else:
        statement = (
            update(c)
            .where(
                c.id == clock_id,
                c.status == ClockStatus.ACTIVE,
                c.warned_at.is_(None),
                c.paused_at.is_(None),
            )
            .values(warned_at=now)
        )
    returned = await session.execute(
        statement.returning(c.id).execution_options(synchronize_session=False)
    )
    return returned.scalar_one_or_none() is not None


async def do_sla_pass(session: AsyncSession, now: datetime, policy: SlaWorkerPolicy) -> int:
    """One pass; returns how many clocks it handled."""
    claimed = await _claim(session, now, policy)
    if not claimed:
        return 0
    clocks = list(
        (
            await session.execute(
                select(SlaClock)
                .where(SlaClock.id.in_(claimed))
                .order_by(SlaClock.due_at)
                .execution_options(populate_existing=True)
            )
        ).scalars()
    )
    handled = 0
    for clock in clocks:
        if clock.status != ClockStatus.ACTIVE:
            continue  # settled by another process since the look for due clocks
        try:
            async with savepoint(session):
                await _handle(session, clock, now)
        except DomainError as refused:
            log.warning("SLA clock %s: escalation refused (%s)", clock.id, refused)
        handled += 1
    return handled


async def _handle(session: AsyncSession, clock: SlaClock, now: datetime) -> None:
    ticket = await lock_ticket(session, clock.ticket_id)  # ours already (`_claim`)
    if ticket.status in (TicketStatus.SOLVED, TicketStatus.CLOSED):
        # Closed by a merge, which does not run the SLA hooks: the clock stops there.
        sla.on_ticket_ended(clock, ticket.closed_at or ticket.solved_at or now)
        return
    if clock.metric in RESPONSE_METRICS:
        replied = await _first_agent_reply(session, ticket.id, clock.started_at)
        if replied is not None:
            await sla.on_agent_replied(session, ticket, replied)
            return
    breach = clock.due_at <= now
    if not await _mark(session, clock.id, now, breach):
        return
    await session.refresh(clock)
    await _escalate(session, ticket, clock, "breach" if breach else "warning")


# --- escalation ------------------------------------------------------------------------


def _wanted(escalation: dict[str, Any], when: str, metric: str) -> bool:
    metrics = escalation.get("metrics")
    return escalation.get("when") == when and (not metrics or metric in metrics)


async def _escalate(session: AsyncSession, ticket: Ticket, clock: SlaClock, when: str) -> None:
    policy = await session.get(SlaPolicy, clock.policy_id) if clock.policy_id else None
    escalations = DEFAULT_ESCALATIONS if policy is None else policy.escalations
    actions = [e for e in escalations if _wanted(e, when, clock.metric)]
    kind = "sla_breach" if when == "breach" else "sla_warning"
    record(
        session,
        ticket.id,
        kind,
        ACTOR,
        {
            "metric": clock.metric,
            "due_at": clock.due_at.isoformat(),
            "actions": [a.get("action") for a in actions],
        },
    )
    for action in actions:
        try:
            async with savepoint(session):
                await _run_action(session, ticket, action)
        except DomainError as refused:
            # A refused action (the named user has left since) must not undo the mark
            # above: the clock would stay due, be claimed on every pass and never breach.
            log.warning("SLA clock %s: %s refused (%s)", clock.id, action.get("action"), refused)
            record(
                session,
                ticket.id,
                "sla_escalation_failed",
                ACTOR,
                {"metric": clock.metric, "action": action.get("action"), "error": str(refused)},
            )
    if any(a.get("action") == "notify" for a in actions):
        event_type: type[SlaAlert] = SlaBreached if when == "breach" else SlaWarning
        await session.flush()
        emit(
            session,
            event_type(
                actor=ACTOR,
                ticket_id=ticket.id,
                inbox_id=await ticket_inbox_id(session, ticket.id),
                ticket=await full_view(session, ticket),
                metric=clock.metric,
                due_at=clock.due_at.isoformat(),
            ),
        )


async def _run_action(session: AsyncSession, ticket: Ticket, action: dict[str, Any]) -> None:
    name = action.get("action")
    if name == "raise_priority":
        await _raise_priority(session, ticket)
    elif name == "reassign":
        user_id = action.get("user_id")
        await do_update_ticket(
            session,
            ticket.id,
            TicketChanges(assignee_user_id=user_id if isinstance(user_id, int) else None),
            actor=ACTOR,
            cause=Cause.SYSTEM,
        )


async def _raise_priority(session: AsyncSession, ticket: Ticket) -> None:
    ticket = await lock_ticket(session, ticket.id)  # afresh: an earlier action may have raised it
    index = PRIORITY_ORDER.index(TicketPriority(ticket.priority))
    if index + 1 < len(PRIORITY_ORDER):
        await do_update_ticket(
            session,
            ticket.id,
            TicketChanges(priority=PRIORITY_ORDER[index + 1]),
            actor=ACTOR,
            cause=Cause.SYSTEM,
        )


# --- the worker ------------------------------------------------------------------------


async def next_due_in(session: AsyncSession, now: datetime, policy: SlaWorkerPolicy) -> float:
    """Seconds until the next warning or breach is due (by the index), at most the poll
    interval."""
    c = SlaClock
    base = running()
    warn = (
        await session.execute(select(func.min(c.due_at)).where(base, c.warned_at.is_(None)))
    ).scalar_one_or_none()
    due = (await session.execute(select(func.min(c.due_at)).where(base))).scalar_one_or_none()
    waits = [policy.poll_interval]
    if warn is not None:
        waits.append((warn - policy.warning - now).total_seconds())
    if due is not None:
        waits.append((due - now).total_seconds())
    return max(0.5, min(waits))


DUE_SLACK = 0.05  # seconds: a timer may fire this much before the due time it was set for


class SlaWorker(BackgroundWorker):
    """Runs `do_sla_pass`; hears agent replies and customer messages from any process."""

    wake_topic: ClassVar[str] = INBOX_TOPIC

    def __init__(self, db: Database, policy: SlaWorkerPolicy | None = None) -> None:
        super().__init__(db.bus)
        self.db = db
        self.policy = policy or SlaWorkerPolicy()
        self._seen: list[MessageSeen] = []
        # When the next clock warns or breaches (loop time, from `pause`): a wake-up by a
        # message before then only records what it saw, without a scan.
        self._due_at = 0.0

    async def run_once(self) -> int:
        if self._seen and not await self.space_out(self.policy.message_gap):
            return 0  # stopping
        seen, self._seen = self._seen, []
        if seen:
            # Most messages are in conversations with no SLA clock to touch (no ticket, or
            # no policy): one read finds the few that are, instead of a write transaction
            # per message (the largest cost this worker added to intake).
            async with self.db.reading() as session:
                timed = await conversations_with_sla(session, {i.conversation_id for i in seen})
            seen = [item for item in seen if item.conversation_id in timed]
        for item in seen:
            try:
                await self.db.run(lambda s, item=item: do_message_seen(s, item))  # type: ignore[misc]
            except DomainError as refused:
                log.warning("SLA: message in conversation %s (%s)", item.conversation_id, refused)
        if asyncio.get_running_loop().time() + DUE_SLACK < self._due_at:
            # Woken by messages, with nothing due yet: the scan (a write transaction, on
            # SQLite the write lock) would find nothing. `pause` reads the next due time
            # again, so a clock the messages just started is not missed.
            return 0
        now = utcnow()
        return await self.db.run(lambda s: do_sla_pass(s, now, self.policy))

    async def pause(self) -> float:
        if self._seen:
            # Heard during the last pass: its wake-up was cleared when the pass ended.
            return 0.0
        now = utcnow()
        async with self.db.reading() as session:
            wait = await next_due_in(session, now, self.policy)
        self._due_at = asyncio.get_running_loop().time() + wait
        return wait

    def heard(self, item: Event | Resync) -> None:
        if not isinstance(item, MessageCreated):
            return
        message = item.message
        author = message.get("author_kind")
        agent = author == AuthorKind.AGENT and not message.get("private")
        customer = author == AuthorKind.CUSTOMER and not message.get("automatic")
        if agent or customer:
            at = datetime.fromisoformat(message["created_at"])
            self._seen.append(MessageSeen(item.conversation_id, at, agent))
            self.wake()
