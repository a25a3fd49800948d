"""Delivering outbound messages: claim, send, record — safely across processes.

A row moves pending → sending (claimed under a lease, committed before the send) →
sent, or back to pending with a backoff, or to dead after `max_attempts`. A row still
"sending" when its lease expires means a worker died between send and commit: it is sent
again only if the channel dedupes by idempotency key; otherwise it is marked
unconfirmed for an agent to check, because sending twice is worse than asking.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from sqlalchemy import ColumnElement, Integer, Table, and_, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from channels.base import DeliveryFailed, DeliveryReceipt, OutboundFile, OutboundMessage
from conversations import statements
from conversations.attachments import load_attachment
from conversations.events import MessageUpdated
from conversations.hooks import ChannelHooks
from conversations.models import (
    Attachment,
    Conversation,
    DeliveryStatus,
    Inbox,
    Message,
    OutboxEntry,
    OutboxStatus,
)
from conversations.service import attachments_by_message, message_dict
from customers.models import Identity
from switchboard.adapters import AdapterSource
from switchboard.background import BackgroundWorker
from switchboard.db import UTCDateTime, utcnow
from switchboard.tx import Database, emit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutboxPolicy:
    max_attempts: int = 8
    base_delay: float = 1.0
    max_delay: float = 600.0
    lease: timedelta = timedelta(seconds=60)
    batch: int = 20
    poll_interval: float = 1.0
    # Expired leases only exist after a worker died; looking for them every pass would
    # cost a transaction per delivery.
    recovery_interval: timedelta = timedelta(seconds=10)


def backoff_delay(attempts: int, policy: OutboxPolicy, retry_after: float | None) -> float:
    """Exponential backoff with full jitter, never sooner than the channel asked."""
    ceiling = min(policy.max_delay, policy.base_delay * 2 ** max(attempts - 1, 0))
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        # A little jitter on top of the channel's delay keeps workers from stampeding.
        delay = max(delay, retry_after + random.uniform(0, min(1.0, retry_after * 0.1)))
    return delay


def _first_unsent_of_its_conversation() -> ColumnElement[bool]:
    """Per conversation only the oldest unsent row may go out, so replies arrive in order."""
    earlier = aliased(OutboxEntry)
    older_unsent = (
        select(func.count())
        .select_from(earlier)
        .where(
            earlier.conversation_id == OutboxEntry.conversation_id,
            earlier.id < OutboxEntry.id,
            earlier.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING]),
        )
        .scalar_subquery()
    )
    return older_unsent == 0


# Built once: with the aliased subquery, building these per call cost milliseconds of CPU
# per pass, more than running them.
_DUE = (
    select(OutboxEntry.id)
    .where(
        OutboxEntry.status == OutboxStatus.PENDING,
        OutboxEntry.next_attempt_at <= bindparam("now", type_=UTCDateTime),
        _first_unsent_of_its_conversation(),
    )
    .order_by(OutboxEntry.next_attempt_at, OutboxEntry.id)
    .limit(bindparam("batch", type_=Integer))
    .with_for_update(skip_locked=True)
)
_SOONEST_DUE = select(func.min(OutboxEntry.next_attempt_at)).where(
    OutboxEntry.status == OutboxStatus.PENDING, _first_unsent_of_its_conversation()
)
_CLAIM = (
    update(OutboxEntry)
    .where(
        OutboxEntry.id.in_(bindparam("ids", expanding=True)),
        OutboxEntry.status == OutboxStatus.PENDING,
    )
    .values(
        status=OutboxStatus.SENDING,
        lease_until=bindparam("lease_until", type_=UTCDateTime),
        attempts=OutboxEntry.attempts + 1,
    )
    .returning(OutboxEntry.id)
)


async def claim_due(session: AsyncSession, now: datetime, policy: OutboxPolicy) -> list[int]:
    """Claim due rows for this worker. Per conversation only the oldest unsent row is due,
    so replies arrive in order; SKIP LOCKED keeps two PostgreSQL workers off one row."""
    ids = list((await session.execute(_DUE, {"now": now, "batch": policy.batch})).scalars())
    if not ids:
        return []
    claimed = await session.execute(_CLAIM, {"ids": ids, "lease_until": now + policy.lease})
    return sorted(claimed.scalars())


_messages = statements.messages
_outbox: Table = OutboxEntry.__table__  # type: ignore[assignment]
_LOAD_OUTBOUND = (
    select(
        OutboxEntry.id.label("outbox_id"),
        Message.id.label("message_id"),
        Message.seq,
        Message.text,
        Message.author_kind,
        Conversation.id.label("conversation_id"),
        Conversation.thread_key,
        Inbox.id.label("inbox_id"),
        Inbox.kind,
        select(Identity.external_id)
        .where(
            Identity.customer_id == Conversation.customer_id,
            Identity.inbox_id == Conversation.inbox_id,
        )
        .order_by(Identity.id)
        .limit(1)
        .scalar_subquery()
        .label("recipient_id"),
    )
    .join(Message, Message.id == OutboxEntry.message_id)
    .join(Conversation, Conversation.id == OutboxEntry.conversation_id)
    .join(Inbox, Inbox.id == OutboxEntry.inbox_id)
    .where(OutboxEntry.id == bindparam("outbox_id"))
)
_ATTACHMENT_IDS = select(Attachment.id).where(Attachment.message_id == bindparam("message_id"))
_SET_MESSAGE_STATUS = (
    update(_messages)
    .where(_messages.c.id == bindparam("message_id"))
    .values(
        delivery_status=bindparam("status"),
        delivery_error=bindparam("error"),
        sent_at=func.coalesce(bindparam("sent_at", type_=UTCDateTime), _messages.c.sent_at),
    )
    .returning(*_messages.c)
)
_RECORD_SENT = (
    update(_outbox)
    .where(_outbox.c.id == bindparam("outbox_id"))
    .values(
        status=OutboxStatus.SENT.value,
        sent_at=bindparam("at", type_=UTCDateTime),
        lease_until=None,
        external_id=bindparam("external_id"),
        last_error=None,
    )
    .returning(_outbox.c.message_id)
)


async def load_outbound(session: AsyncSession, outbox_id: int) -> tuple[str, OutboundMessage]:
    """Everything a channel needs to send one row: (channel kind, message)."""
    row = (await session.execute(_LOAD_OUTBOUND, {"outbox_id": outbox_id})).one()
    attachment_ids = list(
        (await session.execute(_ATTACHMENT_IDS, {"message_id": row.message_id})).scalars()
    )
    files = []
    for attachment_id in attachment_ids:
        loaded = await load_attachment(session, attachment_id)
        if loaded is not None:
            meta, data = loaded
            files.append(OutboundFile(meta.filename, meta.content_type, data))
    return row.kind, OutboundMessage(
        outbox_id=row.outbox_id,
        message_id=row.message_id,
        conversation_id=row.conversation_id,
        inbox_id=row.inbox_id,
        seq=row.seq,
        thread_key=row.thread_key,
        recipient_id=row.recipient_id or "",
        text=row.text,
        author_kind=row.author_kind,
        attachment_ids=attachment_ids,
        idempotency_key=f"switchboard-{row.message_id}",
        files=files,
    )


async def _set_message_status(
    session: AsyncSession, message_id: int, status: DeliveryStatus, error: str | None
) -> None:
    connection = await session.connection()
    message = (
        (
            await connection.execute(
                _SET_MESSAGE_STATUS,
                {
                    "message_id": message_id,
                    "status": status.value,
                    "error": error,
                    "sent_at": utcnow() if status is DeliveryStatus.SENT else None,
                },
            )
        )
        .one()
        ._mapping
    )
    attachments = await attachments_by_message(session, [message_id])
    emit(
        session,
        MessageUpdated(
            actor="system:outbox",
            conversation_id=message["conversation_id"],
            inbox_id=message["inbox_id"],
            message=message_dict(message_id, dict(message), attachments.get(message_id, [])),
        ),
    )


async def do_record_sent(session: AsyncSession, outbox_id: int, receipt: DeliveryReceipt) -> None:
    connection = await session.connection()
    message_id = (
        await connection.execute(
            _RECORD_SENT,
            {"outbox_id": outbox_id, "at": utcnow(), "external_id": receipt.external_id},
        )
    ).scalar_one()
    await _set_message_status(session, message_id, DeliveryStatus.SENT, None)


async def do_record_failure(
    session: AsyncSession, outbox_id: int, error: DeliveryFailed, policy: OutboxPolicy
) -> None:
    entry = await session.get(OutboxEntry, outbox_id)
    assert entry is not None
    if error.recipient_unreachable:
        await _mark_recipient_unreachable(session, entry.conversation_id)
    entry.last_error = error.reason[:500]
    entry.lease_until = None
    if error.permanent or entry.attempts >= policy.max_attempts:
        entry.status = OutboxStatus.DEAD
        reason = f"not delivered after {entry.attempts} attempts: {error.reason}"
        await _set_message_status(session, entry.message_id, DeliveryStatus.FAILED, reason[:500])
        return
    entry.status = OutboxStatus.PENDING
    delay = backoff_delay(entry.attempts, policy, error.retry_after)
    entry.next_attempt_at = utcnow() + timedelta(seconds=delay)


async def _mark_recipient_unreachable(session: AsyncSession, conversation_id: int) -> None:
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None:
        return
    await session.execute(
        update(Identity)
        .where(
            Identity.customer_id == conversation.customer_id,
            Identity.inbox_id == conversation.inbox_id,
        )
        .values(reachable=False)
    )


async def do_mark_unconfirmed(session: AsyncSession, outbox_id: int, reason: str) -> None:
    entry = await session.get(OutboxEntry, outbox_id)
    assert entry is not None
    entry.status = OutboxStatus.UNCONFIRMED
    entry.lease_until = None
    entry.last_error = reason[:500]
    await _set_message_status(session, entry.message_id, DeliveryStatus.UNCONFIRMED, reason[:500])


async def do_recover_expired(
    session: AsyncSession, now: datetime, idempotent_kinds: set[str], policy: OutboxPolicy
) -> int:
    """Settle rows whose worker died mid-delivery (lease expired while 'sending')."""
    rows = (
        await session.execute(
            select(OutboxEntry.id, Inbox.kind, OutboxEntry.attempts)
            .join(Inbox, Inbox.id == OutboxEntry.inbox_id)
            .where(
                and_(
                    OutboxEntry.status == OutboxStatus.SENDING,
                    OutboxEntry.lease_until < now,
                )
            )
            .with_for_update(skip_locked=True, of=OutboxEntry)
        )
    ).all()
    for outbox_id, kind, attempts in rows:
        if kind in idempotent_kinds and attempts >= policy.max_attempts:
            # A message that takes its worker down every time must not do so forever.
            stopped = DeliveryFailed("delivery was interrupted on every attempt", permanent=True)
            await do_record_failure(session, outbox_id, stopped, policy)
        elif kind in idempotent_kinds:
            # The channel shows one message per idempotency key: repeating is safe.
            await session.execute(
                update(OutboxEntry)
                .where(OutboxEntry.id == outbox_id)
                .values(status=OutboxStatus.PENDING, lease_until=None, next_attempt_at=now)
            )
        else:
            await do_mark_unconfirmed(
                session,
                outbox_id,
                "delivery was interrupted and may or may not have reached the customer; "
                "check before sending again",
            )
    return len(rows)


class OutboxWorker(BackgroundWorker):
    """Claims due rows and delivers them; woken by `OutboxWake` events or by its poll."""

    wake_topic: ClassVar[str] = "outbox"

    def __init__(
        self,
        db: Database,
        adapters: AdapterSource,
        policy: OutboxPolicy | None = None,
        *,
        hooks: Mapping[str, ChannelHooks] | None = None,
    ) -> None:
        super().__init__(db.bus)
        self.db = db
        self.adapters = adapters
        self.hooks = dict(hooks or {})
        self.policy = policy or OutboxPolicy()
        self._next_recovery: datetime | None = None

    async def run_once(self) -> int:
        """Recover expired leases, then claim and deliver one batch; return rows handled."""
        now = utcnow()
        if self._next_recovery is None or now >= self._next_recovery:
            idempotent = self.adapters.idempotent_kinds()
            await self.db.run(lambda s: do_recover_expired(s, now, idempotent, self.policy))
            self._next_recovery = now + self.policy.recovery_interval
        ids = await self.db.run(lambda s: claim_due(s, now, self.policy))
        if ids:
            await asyncio.gather(*(self.deliver(i) for i in ids))
        return len(ids)

    async def deliver(self, outbox_id: int) -> None:
        async with self.db.reading() as session:
            kind, outbound = await load_outbound(session, outbox_id)
            hooks = self.hooks.get(kind)
            if hooks is not None:
                outbound = await hooks.before_send(session, outbound)
        adapter = await self.adapters.for_inbox(outbound.inbox_id, kind)
        if adapter is None:
            failure = DeliveryFailed(f"no {kind} channel is configured", permanent=True)
            await self.db.run(lambda s: do_record_failure(s, outbox_id, failure, self.policy))
            return
        try:
            # A send that outlives its lease would race the recovery of its own row.
            async with asyncio.timeout(self.policy.lease.total_seconds() * 0.8):
                receipt = await adapter.send(outbound)
        except DeliveryFailed as failed:
            log.info("outbox %s: %s (retry_after=%s)", outbox_id, failed.reason, failed.retry_after)
            refused = failed  # the `as` name is unbound when the block ends; keep it explicit
            await self.db.run(lambda s: do_record_failure(s, outbox_id, refused, self.policy))
            return
        except Exception as exc:
            # We cannot tell whether the channel got it. Repeat only where that is safe.
            log.exception("outbox %s: send outcome unknown", outbox_id)
            if adapter.idempotent:
                unknown = DeliveryFailed(f"{type(exc).__name__}: {exc}")
                await self.db.run(lambda s: do_record_failure(s, outbox_id, unknown, self.policy))
            else:
                reason = f"send outcome unknown ({type(exc).__name__}); check before sending again"
                await self.db.run(lambda s: do_mark_unconfirmed(s, outbox_id, reason))
            return
        sent = outbound

        async def record(session: AsyncSession) -> None:
            await do_record_sent(session, outbox_id, receipt)
            if hooks is not None:
                await hooks.after_send(session, sent, receipt)

        await self.db.run(record)

    def more_after(self, handled: int) -> bool:
        # A batch that was not full took every row due: the next pass would be an empty
        # claim (a write transaction). `pause` finds a row that fell due meanwhile (one
        # queued behind a reply just sent) and a new reply's wake-up ends the wait at once.
        return handled >= self.policy.batch

    async def pause(self) -> float:
        return await self.next_due_in()

    async def next_due_in(self) -> float:
        # A row queued behind one still being sent (maybe by a worker that died, until its
        # lease expires) is overdue but cannot be claimed: counting it would spin this loop.
        async with self.db.reading() as session:
            soonest = (await session.execute(_SOONEST_DUE)).scalar_one_or_none()
        if soonest is None:
            return self.policy.poll_interval
        return max(0.0, min(self.policy.poll_interval, (soonest - utcnow()).total_seconds()))
