"""Inbound deliveries: filed by the edge, then processed in the channel's order.

A webhook (or an SMTP session, or an IMAP fetch) verifies the delivery, files its raw
bytes in `inbound_events` under the channel's dedupe key, commits and answers. Nothing
acknowledged is lost, a redelivery hits the unique key, and the answer is fast whatever
the files weigh. The processor then parses the delivery, downloads its files outside any
transaction, and applies it — intake, edit, delete, unreachable — in one transaction.

Order: Telegram numbers updates one by one. An update that arrives after a gap waits
(`reorder_hold`) for the missing one, so two messages sent in quick succession but
delivered the other way round still show in the order they were written.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import (
    ChannelAdapter,
    ChannelEvent,
    Delivery,
    DeliveryFailed,
    Ignored,
    InboundAttachment,
    InboundFile,
    InboundMessage,
    MessageDeleted,
    MessageEdited,
    RawInbound,
    SenderUnreachable,
)
from conversations.attachments import check_channel_file, do_store_attachment, human_size
from conversations.events import MessageUpdated
from conversations.hooks import ChannelHooks
from conversations.models import (
    AuthorKind,
    InboundEvent,
    InboundStatus,
    Inbox,
    Message,
    MessageRevision,
)
from conversations.search import reindex_message
from conversations.service import (
    KnownThread,
    attachments_by_message,
    do_intake,
    do_reply,
    find_duplicate,
    message_view,
    resolve_sender_of,
)
from conversations.text import check_message_text
from customers.models import Identity
from switchboard.adapters import AdapterSource
from switchboard.background import BackgroundWorker
from switchboard.db import utcnow
from switchboard.errors import DomainError
from switchboard.events import InboundWake
from switchboard.tx import Database, emit, savepoint
from switchboard.upsert import insert_ignoring_conflict

log = logging.getLogger(__name__)

# Never kept with the raw delivery: they are the channel's secrets, not its content.
_SECRET_HEADERS = frozenset({"x-telegram-bot-api-secret-token", "authorization", "cookie"})
_THREAD_CACHE_SIZE = 10_000
DEFAULT_GREETING = (
    "Hello! Thanks for getting in touch. Write your question here and we will answer in this chat."
)


@dataclass(frozen=True)
class InboundPolicy:
    max_attempts: int = 8
    base_delay: float = 1.0
    max_delay: float = 300.0
    lease: timedelta = timedelta(seconds=120)
    # Expired leases only exist after a processor died; not worth a statement every pass.
    recovery_interval: timedelta = timedelta(seconds=10)
    batch: int = 100
    poll_interval: float = 1.0
    reorder_hold: timedelta = timedelta(seconds=2)
    # Telegram's own download limit is 20 MB; anything bigger is noted, not stored.
    max_file_bytes: int = 20 * 1024 * 1024
    # Tries at downloading a message's files before it is stored with a note instead.
    file_attempts: int = 3
    # Chats of one inbox stored at once (each its own transaction; see _lanes).
    lanes: int = 8


def kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if k.lower() not in _SECRET_HEADERS}


def inbound_row(inbox_id: int, channel: str, delivery: Delivery, raw: RawInbound) -> dict[str, Any]:
    """The `inbound_events` row for one verified delivery."""
    now = utcnow()
    return {
        "inbox_id": inbox_id,
        "channel": channel,
        "dedupe_key": delivery.dedupe_key[:255],
        "order_key": delivery.order_key,
        "headers": kept_headers(raw.headers),
        "payload": raw.body,
        "status": InboundStatus.PENDING.value,
        "attempts": 0,
        "next_attempt_at": now,
        "received_at": now,
    }


async def do_accept(
    session: AsyncSession,
    *,
    inbox_id: int,
    channel: str,
    delivery: Delivery,
    raw: RawInbound,
) -> bool:
    """File one verified delivery; False when its key was filed before (a redelivery)."""
    created = await insert_ignoring_conflict(
        session,
        InboundEvent.__table__,  # type: ignore[arg-type]
        inbound_row(inbox_id, channel, delivery, raw),
        ("inbox_id", "dedupe_key"),
    )
    if created is not None:
        emit(session, InboundWake(actor=f"{channel}:{inbox_id}"))
    return created is not None


@dataclass(frozen=True)
class _Due:
    id: int
    inbox_id: int
    order_key: int | None
    received_at: datetime


def _in_channel_order(
    due: Sequence[_Due], watermark: int | None, now: datetime, hold: timedelta
) -> list[_Due]:
    """The events of one inbox that may go now: in order, stopping at a young gap."""
    taken: list[_Due] = []
    expected = None if watermark is None else watermark + 1
    for event in due:
        key = event.order_key
        if key is None or expected is None or key <= expected or event.received_at <= now - hold:
            taken.append(event)
        else:
            break  # the update before this one is probably still on its way
        if key is not None:
            expected = key + 1
    return taken


@dataclass(frozen=True)
class Claimed:
    """A claimed delivery, with what processing it needs (read in the claim itself)."""

    id: int
    inbox_id: int
    channel: str
    headers: dict[str, Any]
    payload: bytes
    attempts: int


async def do_recover_expired(session: AsyncSession, now: datetime) -> None:
    """Hand back deliveries whose processor died: processing them again is safe (intake
    dedupes by the message's external id)."""
    await session.execute(
        update(InboundEvent)
        .where(
            InboundEvent.status == InboundStatus.PROCESSING,
            InboundEvent.lease_until < now,
        )
        .values(status=InboundStatus.PENDING, lease_until=None)
    )


async def claim_inbound(
    session: AsyncSession, now: datetime, policy: InboundPolicy
) -> tuple[list[list[Claimed]], datetime | None]:
    """Claim due events, grouped per inbox in channel order; also say when a held event
    falls due. One processor per inbox at a time: the inbox row is locked to claim, and
    an inbox with events still processing is skipped."""
    waiting = (
        select(InboundEvent.inbox_id)
        .where(InboundEvent.status == InboundStatus.PENDING, InboundEvent.next_attempt_at <= now)
        .distinct()
    )
    inbox_ids = list(
        (
            await session.execute(
                select(Inbox.id).where(Inbox.id.in_(waiting)).with_for_update(skip_locked=True)
            )
        ).scalars()
    )
    if not inbox_ids:
        return [], None
    busy = select(InboundEvent.inbox_id).where(InboundEvent.status == InboundStatus.PROCESSING)
    rows = (
        await session.execute(
            select(
                InboundEvent.id,
                InboundEvent.inbox_id,
                InboundEvent.order_key,
                InboundEvent.received_at,
            )
            .where(
                InboundEvent.inbox_id.in_(inbox_ids),
                InboundEvent.inbox_id.not_in(busy),
                InboundEvent.status == InboundStatus.PENDING,
                InboundEvent.next_attempt_at <= now,
            )
            .order_by(InboundEvent.inbox_id, InboundEvent.order_key, InboundEvent.id)
            .limit(policy.batch)
        )
    ).all()
    per_inbox: dict[int, list[_Due]] = {}
    for row in rows:
        per_inbox.setdefault(row.inbox_id, []).append(_Due(*row))
    ordered = [i for i, events in per_inbox.items() if any(e.order_key for e in events)]
    watermarks: dict[int, int | None] = {}
    for inbox_id in ordered:
        # The newest handled order key: a backward walk of (inbox_id, order_key) that
        # stops at the first row not pending, so it stays cheap however long the history.
        watermarks[inbox_id] = (
            await session.execute(
                select(InboundEvent.order_key)
                .where(
                    InboundEvent.inbox_id == inbox_id,
                    InboundEvent.order_key.is_not(None),
                    InboundEvent.status != InboundStatus.PENDING,
                )
                .order_by(InboundEvent.order_key.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
    groups: list[list[int]] = []
    held_until: datetime | None = None
    for inbox_id, events in per_inbox.items():
        taken = _in_channel_order(events, watermarks.get(inbox_id), now, policy.reorder_hold)
        if len(taken) < len(events):
            release = events[len(taken)].received_at + policy.reorder_hold
            held_until = release if held_until is None else min(held_until, release)
        if taken:
            groups.append([e.id for e in taken])
    ids = [i for group in groups for i in group]
    if not ids:
        return [], held_until
    claimed = {
        row.id: Claimed(
            row.id, row.inbox_id, row.channel, dict(row.headers or {}), row.payload, row.attempts
        )
        for row in await session.execute(
            update(InboundEvent)
            .where(InboundEvent.id.in_(ids))
            .values(
                status=InboundStatus.PROCESSING,
                lease_until=now + policy.lease,
                attempts=InboundEvent.attempts + 1,
            )
            .returning(
                InboundEvent.id,
                InboundEvent.inbox_id,
                InboundEvent.channel,
                InboundEvent.headers,
                InboundEvent.payload,
                InboundEvent.attempts,
            )
        )
    }
    return [[claimed[i] for i in group] for group in groups], held_until


@dataclass(frozen=True)
class _Prepared:
    """A parsed event with its files downloaded, ready for one transaction."""

    event: ChannelEvent
    files: Sequence[tuple[InboundFile, bytes | None]] = ()  # None: could not be fetched


class InboundProcessor(BackgroundWorker):
    wake_topic: ClassVar[str] = "inbound"

    def __init__(
        self,
        db: Database,
        adapters: AdapterSource,
        *,
        hooks: Mapping[str, ChannelHooks] | None = None,
        policy: InboundPolicy | None = None,
        greeting: str = DEFAULT_GREETING,
    ) -> None:
        super().__init__(db.bus)
        self.db = db
        self.adapters = adapters
        self.hooks = dict(hooks or {})
        self.policy = policy or InboundPolicy()
        self.greeting = greeting
        self._held_until: datetime | None = None
        self._next_recovery: datetime | None = None
        # Chats seen lately: (inbox, thread key) → their conversation and customer.
        self._threads: dict[tuple[int, str], KnownThread] = {}

    async def run_once(self) -> int:
        """Claim and process one round; return how many events were handled."""
        now = utcnow()
        if self._next_recovery is None or now >= self._next_recovery:
            await self.db.run(lambda s: do_recover_expired(s, now))
            self._next_recovery = now + self.policy.recovery_interval
        groups, self._held_until = await self.db.run(lambda s: claim_inbound(s, now, self.policy))
        # Inboxes in parallel, each inbox's events one after another, in order.
        await asyncio.gather(*(self._process_group(group) for group in groups))
        return sum(len(g) for g in groups)

    async def _process_group(self, claimed: list[Claimed]) -> None:
        """Process one inbox's claimed events, in order: parse and download outside any
        transaction, then store (see `_store` and `_lanes`)."""
        event_ids = [row.id for row in claimed]
        rows = {row.id: row for row in claimed}
        ready: list[tuple[int, list[_Prepared]]] = []
        failures: dict[int, tuple[str, bool]] = {}
        for event_id in event_ids:
            row = rows[event_id]
            raw = RawInbound(headers=row.headers, query={}, body=row.payload)
            try:
                adapter = await self.adapters.for_inbox(row.inbox_id, row.channel)
                if adapter is None:
                    raise _Permanent(f"no {row.channel} adapter for inbox {row.inbox_id}")
                parsed = adapter.parse(raw)
                prepared = [await self._prepare(adapter, p, row.attempts) for p in parsed]
                ready.append((event_id, prepared))
            except Exception as exc:
                failures[event_id] = _failure(event_id, exc)

        lanes = self._lanes(ready)
        if len(lanes) == 1:
            await self._store(lanes[0], failures)
            return
        if failures:
            await self._store([], failures)
        limit = asyncio.Semaphore(self.policy.lanes)

        async def store_lane(lane: list[tuple[int, list[_Prepared]]]) -> None:
            async with limit:
                await self._store(lane, {})

        await asyncio.gather(*(store_lane(lane) for lane in lanes))

    def _lanes(
        self, ready: list[tuple[int, list[_Prepared]]]
    ) -> list[list[tuple[int, list[_Prepared]]]]:
        """Split a group into independent lanes, one per chat, stored concurrently. Order
        matters only within a chat, so plain messages of different chats need not wait
        for each other. Anything else — an edit, which must follow its message; a
        channel whose hooks choose the thread (email) — keeps the group in one lane."""
        lanes: dict[str, list[tuple[int, list[_Prepared]]]] = {}
        for event_id, prepared in ready:
            messages = [p.event for p in prepared if not isinstance(p.event, Ignored)]
            if len(messages) != 1:
                return [ready]
            msg = messages[0]
            if not isinstance(msg, InboundMessage) or msg.channel in self.hooks:
                return [ready]
            lanes.setdefault(msg.thread_key, []).append((event_id, prepared))
        return list(lanes.values()) or [ready]

    async def _store(
        self,
        ready: list[tuple[int, list[_Prepared]]],
        failures: dict[int, tuple[str, bool]],
    ) -> None:
        """Apply prepared events in one transaction and record how each went."""

        async def work(session: AsyncSession, careful: bool) -> None:
            done: list[int] = []
            failed = dict(failures)
            for event_id, prepared in ready:
                if not careful:
                    await self._apply(session, event_id, prepared)
                    done.append(event_id)
                    continue
                try:
                    async with savepoint(session):
                        await self._apply(session, event_id, prepared)
                except DBAPIError as exc:
                    if exc.connection_invalidated:
                        raise  # the whole transaction is gone: Database.run redoes it
                    failed[event_id] = _failure(event_id, exc)
                except Exception as exc:
                    failed[event_id] = _failure(event_id, exc)
                else:
                    done.append(event_id)
            if done:
                await session.execute(
                    update(InboundEvent)
                    .where(InboundEvent.id.in_(done))
                    .values(
                        status=InboundStatus.DONE,
                        lease_until=None,
                        last_error=None,
                        processed_at=utcnow(),
                    )
                )
            for event_id, (error, permanent) in failed.items():
                await self._record_failure(session, event_id, error, permanent)

        event_ids = [event_id for event_id, _ in ready] + list(failures)
        try:
            # Usually every event goes in; only when one fails is the group redone with a
            # savepoint per event (two more statements each), so that one is set aside.
            try:
                await self.db.run(lambda s: work(s, careful=False))
            except Exception:
                log.debug("inbound group failed as a whole; redoing it event by event")
                self._threads.clear()
                await self.db.run(lambda s: work(s, careful=True))
        except Exception as exc:
            log.exception("inbound batch of %d failed; each will be retried", len(event_ids))
            error = f"{type(exc).__name__}: {exc}"[:500]

            async def retry_later(session: AsyncSession) -> None:
                for event_id in event_ids:
                    await self._record_failure(session, event_id, error, False)

            await self.db.run(retry_later)

    async def _prepare(
        self, adapter: ChannelAdapter, item: ChannelEvent, attempts: int
    ) -> _Prepared:
        if not isinstance(item, InboundMessage) or not item.files:
            return _Prepared(item)
        files: list[tuple[InboundFile, bytes | None]] = []
        for file in item.files:
            if file.size is not None and file.size > self.policy.max_file_bytes:
                files.append((file, b""))  # noted in the text, not fetched
                continue
            if file.data is not None:
                files.append((file, file.data))
                continue
            try:
                files.append((file, await adapter.fetch(file)))
            except Exception as exc:
                # A file that cannot be fetched must not take the customer's words with
                # it: after a few tries (or at once, if the channel says it is gone) the
                # message is stored with a note instead of the file.
                gone = isinstance(exc, DeliveryFailed) and exc.permanent
                if not gone and attempts < self.policy.file_attempts:
                    raise
                log.warning("giving up on file %s: %s", file.filename, exc)
                files.append((file, None))
        return _Prepared(item, files)

    async def _apply(self, session: AsyncSession, event_id: int, prepared: list[_Prepared]) -> None:
        for item in prepared:
            event = item.event
            if isinstance(event, InboundMessage):
                await self._intake(session, event_id, item)
            elif isinstance(event, MessageEdited):
                await do_record_edit(session, event)
            elif isinstance(event, MessageDeleted):
                await do_record_delete(session, event)
            elif isinstance(event, SenderUnreachable):
                await do_mark_unreachable(session, event.inbox_id, event.sender_id)
            elif isinstance(event, Ignored):
                log.info("inbound event %s ignored: %s", event_id, event.reason)

    async def _intake(self, session: AsyncSession, event_id: int, item: _Prepared) -> None:
        msg = item.event
        assert isinstance(msg, InboundMessage)
        hooks = self.hooks.get(msg.channel)
        if hooks is not None:
            msg = await hooks.before_intake(session, msg)
        attachments: list[InboundAttachment] = []
        notes: list[str] = []
        if item.files:
            # Before storing files: a redelivered message must not leave orphan copies.
            if await find_duplicate(session, msg.inbox_id, msg.external_id) is not None:
                return
            sender = await resolve_sender_of(session, msg)
            for file, data in item.files:
                if data is None:
                    notes.append(f"[{file.filename}: could not be downloaded]")
                    continue
                if not data or len(data) > self.policy.max_file_bytes:
                    size = file.size if file.size is not None else len(data)
                    notes.append(f"[{file.filename}: {human_size(size)}, too large to keep]")
                    continue
                upload = check_channel_file(file.filename, data, file.content_type)
                stored = await do_store_attachment(
                    session,
                    inbox_id=msg.inbox_id,
                    upload=upload,
                    data=data,
                    customer_id=sender.customer_id,
                )
                attachments.append(InboundAttachment(stored.id))
        text = msg.text
        if notes:
            text = "\n".join([text, *notes]) if text else "\n".join(notes)
        if not text.strip() and not attachments:
            text = "[an empty message]"
        msg = dataclasses.replace(msg, text=text, attachments=attachments, files=())
        thread = (msg.inbox_id, msg.thread_key)
        known = self._threads.get(thread)
        result = await do_intake(session, msg, known=known, inbound_event_id=event_id)
        if result.duplicate:
            return
        if result.customer_id is not None:
            # A chat's next message then costs three statements (see KnownThread). If this
            # transaction rolls back, the conversation may not exist: do_intake finds
            # that out and resolves the thread afresh.
            self._remember(thread, KnownThread(result.conversation_id, result.customer_id))
        if hooks is not None:
            await hooks.after_intake(session, msg, result.conversation_id, result.message_id)
        if msg.wants_greeting:
            await do_reply(
                session,
                conversation_id=result.conversation_id,
                text=self.greeting,
                author_kind=AuthorKind.SYSTEM,
            )

    def _remember(self, thread: tuple[int, str], known: KnownThread) -> None:
        if len(self._threads) >= _THREAD_CACHE_SIZE:
            self._threads.pop(next(iter(self._threads)))
        self._threads[thread] = known

    async def _record_failure(
        self, session: AsyncSession, event_id: int, error: str, permanent: bool
    ) -> None:
        event = await session.get(InboundEvent, event_id)
        assert event is not None
        event.last_error = error
        event.lease_until = None
        if permanent or event.attempts >= self.policy.max_attempts:
            event.status = InboundStatus.FAILED
            return
        event.status = InboundStatus.PENDING
        ceiling = min(self.policy.max_delay, self.policy.base_delay * 2 ** max(event.attempts, 0))
        event.next_attempt_at = utcnow() + timedelta(seconds=random.uniform(ceiling / 2, ceiling))

    async def pause(self) -> float:
        pause = self.policy.poll_interval
        if self._held_until is not None:
            pause = min(pause, max(0.0, (self._held_until - utcnow()).total_seconds()))
        return pause


class _Permanent(Exception):
    """Retrying cannot help (no adapter for the inbox)."""


def _failure(event_id: int, exc: Exception) -> tuple[str, bool]:
    """(what to record, whether retrying is pointless) for an event that failed."""
    permanent = isinstance(exc, _Permanent | DomainError)
    if permanent:
        log.warning("inbound event %s cannot be stored: %s", event_id, exc)
    else:
        log.warning("inbound event %s failed; will retry", event_id, exc_info=exc)
    return f"{type(exc).__name__}: {exc}"[:500], permanent


async def _message_by_external_id(
    session: AsyncSession, inbox_id: int, external_id: str
) -> Message | None:
    return (
        await session.execute(
            select(Message).where(Message.inbox_id == inbox_id, Message.external_id == external_id)
        )
    ).scalar_one_or_none()


async def _publish_update(session: AsyncSession, message: Message) -> None:
    attachments = await attachments_by_message(session, [message.id])
    emit(
        session,
        MessageUpdated(
            actor="customer:edit",
            conversation_id=message.conversation_id,
            inbox_id=message.inbox_id,
            message=message_view(message, attachments.get(message.id, [])),
        ),
    )


async def do_record_edit(session: AsyncSession, edit: MessageEdited) -> bool:
    """Keep the old text as a revision and show the new one; False if the original
    message is unknown (never stored, or deleted with its conversation)."""
    message = await _message_by_external_id(session, edit.inbox_id, edit.external_id)
    if message is None:
        log.info("edit of unknown message %s ignored", edit.external_id)
        return False
    text = check_message_text(edit.text, allow_empty=True)
    if text == message.text:
        return True  # a redelivered edit, or one that changed only formatting we drop
    session.add(MessageRevision(message_id=message.id, text=message.text, replaced_at=utcnow()))
    message.text = text
    message.edited_at = edit.edited_at or utcnow()
    await session.flush()
    # Search finds it by what it says now (the revision keeps the old words).
    await reindex_message(session, message.id, text, message.subject)
    await _publish_update(session, message)
    return True


async def do_record_delete(session: AsyncSession, deletion: MessageDeleted) -> bool:
    """Mark the message deleted by the customer. The text stays for the record (agents
    see it struck through); the customer's channel no longer shows it."""
    message = await _message_by_external_id(session, deletion.inbox_id, deletion.external_id)
    if message is None:
        return False
    if message.deleted_at is None:
        message.deleted_at = deletion.deleted_at or utcnow()
        await session.flush()
        await _publish_update(session, message)
    return True


async def do_mark_unreachable(session: AsyncSession, inbox_id: int, sender_id: str) -> None:
    await session.execute(
        update(Identity)
        .where(Identity.inbox_id == inbox_id, Identity.external_id == sender_id)
        .values(reachable=False)
    )
