"""Customer messages → tickets, off the intake path: the ticket follow-up worker.

Intake stores messages in batched transactions and is benchmarked; looking up tickets
there would cost every message statements it does not need. Instead this worker reads
what intake already keeps per conversation (`last_seq`, `last_message_at`) against how
far it has read each one (`ticket_watch.seen_seq`). A pass claims conversations with
unread messages (rows locked with SKIP LOCKED on PostgreSQL, so several processes split
the work; SQLite serialises writers), and for each one with a new customer message:

- its active ticket that is pending (waiting on the customer) goes back to open;
- else a rating (or its comment) answering the CSAT request is stored (`tickets.csat`)
  and nothing else happens;
- else its latest ticket, if solved within the reopen window, is reopened;
- else, in an inbox without a bot, a new ticket is opened (a bot inbox gets its tickets
  from the bot's hand-off instead).

Automatic mail (auto-replies, bounces) never opens or reopens a ticket. The pass and
the watch update are one transaction, so a message is matched exactly once; the unique
open-ticket link makes a second active ticket impossible even if two passes overlapped.
The worker wakes on customer messages on the `inbox` topic and polls as a safety net.
Passes are at least `min_gap` apart, so a stream of messages costs one pass a second,
not one per message; most look back two minutes, one every five minutes the whole day
(`window`), so a pass reads a short index range of `conversations.last_message_at`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.events import INBOX_TOPIC, MessageCreated
from conversations.models import AuthorKind, Conversation, Direction, Inbox, Message
from switchboard.background import BackgroundWorker
from switchboard.bus import Resync
from switchboard.db import utcnow
from switchboard.errors import DomainError
from switchboard.events import Event
from switchboard.settings import Settings
from switchboard.tx import Database, savepoint
from tickets.checks import TicketChanges
from tickets.csat import take_answers
from tickets.lifecycle import Cause
from tickets.models import (
    Ticket,
    TicketConversation,
    TicketSource,
    TicketStatus,
    TicketWatch,
)
from tickets.service import do_open_for_conversation, do_update_ticket

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FollowUpPolicy:
    reopen_window: timedelta = timedelta(hours=72)
    batch: int = 100
    poll_interval: float = 5.0
    # Seconds between the starts of two passes: under a stream of messages one pass
    # matches everything that arrived meanwhile, instead of one pass per message.
    min_gap: float = 1.0
    # Only conversations active this recently are looked at, so a pass reads an index
    # range rather than every conversation ever.
    window: timedelta = timedelta(hours=24)
    # Most passes look back only this far (what arrived since the last pass, with room
    # for transactions that commit late); one pass in `sweep_every` looks back `window`.
    recent: timedelta = timedelta(minutes=2)
    sweep_every: float = 300.0

    @classmethod
    def from_settings(cls, settings: Settings) -> FollowUpPolicy:
        return cls(reopen_window=timedelta(hours=settings.ticket_reopen_hours))


@dataclass(frozen=True)
class _Unread:
    conversation_id: int
    customer_id: int
    last_seq: int
    bot_enabled: bool
    # When the first customer message not yet matched to a ticket arrived (None: none).
    first_customer_at: datetime | None


def _insert_missing_watch(dialect: str, conversation_ids: Sequence[int]) -> Any:
    module: Any = postgresql if dialect == "postgresql" else sqlite
    return (
        module.insert(TicketWatch.__table__)
        .values([{"conversation_id": cid, "seen_seq": 0} for cid in conversation_ids])
        .on_conflict_do_nothing(index_elements=["conversation_id"])
    )


async def _claim(
    session: AsyncSession, now: datetime, policy: FollowUpPolicy, look_back: timedelta
) -> list[int]:
    """Conversations with messages the follow-up has not read, their watch rows locked."""
    candidates = (
        await session.execute(
            select(Conversation.id, TicketWatch.conversation_id)
            .outerjoin(TicketWatch, TicketWatch.conversation_id == Conversation.id)
            .where(
                Conversation.last_message_at >= now - look_back,
                Conversation.last_seq > func.coalesce(TicketWatch.seen_seq, 0),
            )
            .order_by(Conversation.last_message_at)
            .limit(policy.batch)
        )
    ).all()
    if not candidates:
        return []
    missing = [cid for cid, watched in candidates if watched is None]
    if missing:
        await session.execute(_insert_missing_watch(session.get_bind().dialect.name, missing))
    return list(
        (
            await session.execute(
                select(TicketWatch.conversation_id)
                .where(TicketWatch.conversation_id.in_([cid for cid, _ in candidates]))
                .order_by(TicketWatch.conversation_id)
                .with_for_update(skip_locked=True)
            )
        ).scalars()
    )


async def _unread(session: AsyncSession, conversation_ids: Sequence[int]) -> list[_Unread]:
    """Per claimed conversation, in one statement (one snapshot): how far it goes and
    when its first unmatched customer message came."""
    first_customer_at = (
        select(func.min(Message.created_at))
        .where(
            Message.conversation_id == Conversation.id,
            Message.seq > TicketWatch.seen_seq,
            Message.seq <= Conversation.last_seq,
            Message.direction == Direction.INBOUND,
            Message.author_kind == AuthorKind.CUSTOMER,
            Message.automatic.is_(False),
        )
        .correlate(Conversation, TicketWatch)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(
            Conversation.id,
            Conversation.customer_id,
            Conversation.last_seq,
            Inbox.bot_enabled,
            first_customer_at,
        )
        .join(TicketWatch, TicketWatch.conversation_id == Conversation.id)
        .join(Inbox, Inbox.id == Conversation.inbox_id)
        .where(
            Conversation.id.in_(list(conversation_ids)),
            Conversation.last_seq > TicketWatch.seen_seq,
        )
    )
    return [_Unread(*row) for row in rows]


async def _latest_ticket(session: AsyncSession, conversation_id: int) -> Ticket | None:
    return (
        await session.execute(
            select(Ticket)
            .join(TicketConversation, TicketConversation.ticket_id == Ticket.id)
            .where(TicketConversation.conversation_id == conversation_id)
            .order_by(Ticket.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


async def do_customer_wrote(
    session: AsyncSession,
    unread: _Unread,
    active: tuple[int, str] | None,
    policy: FollowUpPolicy,
) -> None:
    """Match a customer's new message(s) in one conversation to a ticket."""
    assert unread.first_customer_at is not None
    actor = f"customer:{unread.customer_id}"
    if active is not None:
        active_id, active_status = active
        if active_status == TicketStatus.PENDING:
            await do_update_ticket(
                session,
                active_id,
                TicketChanges(status=TicketStatus.OPEN),
                actor=actor,
                cause=Cause.CUSTOMER,
            )
        return
    if await take_answers(session, unread.conversation_id, unread.first_customer_at):
        return  # a rating (and its comment) answers the survey, it does not reopen
    latest = await _latest_ticket(session, unread.conversation_id)
    if (
        latest is not None
        and latest.status == TicketStatus.SOLVED
        and latest.solved_at is not None
        and policy.reopen_window > timedelta(0)
        and unread.first_customer_at - latest.solved_at <= policy.reopen_window
    ):
        await do_update_ticket(
            session,
            latest.id,
            TicketChanges(status=TicketStatus.OPEN),
            actor=actor,
            cause=Cause.CUSTOMER,
        )
        return
    if not unread.bot_enabled:
        await do_open_for_conversation(
            session,
            conversation_id=unread.conversation_id,
            source=TicketSource.INBOX if latest is None else TicketSource.CUSTOMER_REPLY,
            reason=None if latest is None else f"follow-up to ticket {latest.id}",
            actor=actor,
        )


async def do_follow_up(
    session: AsyncSession,
    now: datetime,
    policy: FollowUpPolicy,
    look_back: timedelta | None = None,
) -> int:
    """One pass: claim, match, remember how far each conversation was read. Returns how
    many conversations it read. `look_back` (default: the policy's whole window) bounds
    how long ago a conversation's last message may be."""
    claimed = await _claim(session, now, policy, look_back or policy.window)
    if not claimed:
        return 0
    unread = await _unread(session, claimed)
    with_customer = [u for u in unread if u.first_customer_at is not None]
    # (id, status) of each conversation's active ticket; most have one and nothing to do.
    active: dict[int, tuple[int, str]] = {}
    if with_customer:
        rows = await session.execute(
            select(TicketConversation.open_conversation_id, Ticket.id, Ticket.status)
            .join(Ticket, Ticket.id == TicketConversation.ticket_id)
            .where(
                TicketConversation.open_conversation_id.in_(
                    [u.conversation_id for u in with_customer]
                )
            )
        )
        active = {cid: (tid, status) for cid, tid, status in rows.all() if cid is not None}
    for item in with_customer:
        found = active.get(item.conversation_id)
        if found is not None and found[1] != TicketStatus.PENDING:
            continue  # the usual case: the ticket is already open for this message
        try:
            async with savepoint(session):
                await do_customer_wrote(session, item, found, policy)
        except DomainError as refused:
            # Not retried: the same message would be refused again. The ticket is left
            # as it was and the message counts as read.
            log.warning("conversation %s: no ticket change (%s)", item.conversation_id, refused)
    if unread:
        # One statement for the lot; the rows are ours (locked in `_claim`).
        await session.execute(
            update(TicketWatch)
            .where(TicketWatch.conversation_id.in_([u.conversation_id for u in unread]))
            .values(
                seen_seq=case(
                    {u.conversation_id: u.last_seq for u in unread},
                    value=TicketWatch.conversation_id,
                )
            )
        )
    return len(unread)


class TicketFollowUp(BackgroundWorker):
    """Runs `do_follow_up` passes; woken by customer messages from any process."""

    wake_topic: ClassVar[str] = INBOX_TOPIC

    def __init__(self, db: Database, policy: FollowUpPolicy | None = None) -> None:
        super().__init__(db.bus)
        self.db = db
        self.policy = policy or FollowUpPolicy()
        self._last_sweep = -float("inf")

    async def run_once(self) -> int:
        if not await self.space_out(self.policy.min_gap):
            return 0  # stopping: the next start's first pass sweeps the whole window
        loop = asyncio.get_running_loop()
        look_back = self.policy.recent
        if loop.time() - self._last_sweep >= self.policy.sweep_every:
            # The first pass, then every few minutes: the whole window, for anything a
            # stopped worker or a very late commit left behind.
            look_back = self.policy.window
            self._last_sweep = loop.time()
        now = utcnow()
        return await self.db.run(lambda s: do_follow_up(s, now, self.policy, look_back))

    async def pause(self) -> float:
        return self.policy.poll_interval

    def heard(self, item: Event | Resync) -> None:
        # Typing indicators and agents' and the bot's messages share the topic; only a
        # customer's message can need a ticket.
        if not isinstance(item, MessageCreated):
            return
        if item.message.get("author_kind") == AuthorKind.CUSTOMER:
            self.wake()
