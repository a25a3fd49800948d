"""Conversation operations: intake of customer messages, replies, and reads.

`do_*` functions write within the caller's transaction and emit events that are
published after it commits (`switchboard.tx`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from channels.base import InboundMessage
from conversations import statements
from conversations.events import MessageCreated
from conversations.models import (
    Attachment,
    AuthorKind,
    Conversation,
    DeliveryStatus,
    Direction,
    Inbox,
    Message,
    OutboxEntry,
)
from conversations.text import check_message_text, preview
from customers.service import ResolvedSender, do_resolve_sender
from switchboard.db import utcnow
from switchboard.errors import InvalidInput, NotFound
from switchboard.events import OutboxWake
from switchboard.tx import emit
from switchboard.upsert import insert_ignoring_conflict

MAX_ATTACHMENTS_PER_MESSAGE = 10


@dataclass(frozen=True)
class KnownThread:
    """A sender's conversation and customer, remembered by an edge between messages."""

    conversation_id: int
    customer_id: int


@dataclass(frozen=True)
class IntakeResult:
    message_id: int
    conversation_id: int
    customer_id: int | None
    seq: int
    duplicate: bool
    # The stored message's `message_view` (the one its MessageCreated event carries), so
    # the edge that took it in can show it without reading it back; None for a duplicate.
    message: dict[str, Any] | None = None


def message_view(message: Message, attachments: Sequence[Attachment] = ()) -> dict[str, Any]:
    """The public shape of a message, as the API, the inbox and the widget see it."""
    return {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "seq": message.seq,
        "direction": message.direction,
        "author_kind": message.author_kind,
        "author_user_id": message.author_user_id,
        "text": message.text,
        "private": message.private,
        "delivery_status": message.delivery_status,
        "delivery_error": message.delivery_error,
        "created_at": message.created_at.isoformat(),
        "attachments": [attachment_view(a) for a in attachments],
        "subject": message.subject,
        "html": message.html,
        "automatic": message.automatic,
        "edited_at": message.edited_at.isoformat() if message.edited_at else None,
        "deleted_at": message.deleted_at.isoformat() if message.deleted_at else None,
    }


def attachment_view(attachment: Attachment) -> dict[str, Any]:
    return {
        "id": attachment.id,
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "size": attachment.size,
    }


def conversation_view(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "inbox_id": conversation.inbox_id,
        "customer_id": conversation.customer_id,
        "channel": conversation.channel,
        "status": conversation.status,
        "subject": conversation.subject,
        "last_seq": conversation.last_seq,
        "last_message_at": conversation.last_message_at.isoformat()
        if conversation.last_message_at
        else None,
        "last_preview": conversation.last_preview,
        "unread_count": conversation.unread_count,
    }


async def _open_conversation(session: AsyncSession, msg: InboundMessage, customer_id: int) -> int:
    found = (
        await session.execute(
            select(Conversation.id).where(
                Conversation.inbox_id == msg.inbox_id, Conversation.thread_key == msg.thread_key
            )
        )
    ).scalar_one_or_none()
    if found is not None:
        return found
    now = utcnow()
    created = await insert_ignoring_conflict(
        session,
        Conversation.__table__,  # type: ignore[arg-type]
        {
            "inbox_id": msg.inbox_id,
            "customer_id": customer_id,
            "thread_key": msg.thread_key,
            "channel": msg.channel,
            "status": "open",
            "last_seq": 0,
            "unread_count": 0,
            "created_at": now,
        },
        ("inbox_id", "thread_key"),
    )
    if created is not None:
        return created
    return (
        await session.execute(
            select(Conversation.id).where(
                Conversation.inbox_id == msg.inbox_id, Conversation.thread_key == msg.thread_key
            )
        )
    ).scalar_one()


async def _advance(
    session: AsyncSession, conversation_id: int, text: str, now: datetime, *, inbound: bool
) -> dict[str, Any] | None:
    """Take the conversation's next sequence number; return the conversation's view, or
    None if it does not exist. The row lock orders concurrent writers, so seq order is
    commit order."""
    connection = await session.connection()
    statement = statements.ADVANCE_INBOUND if inbound else statements.ADVANCE_OUTBOUND
    row = (
        await connection.execute(
            statement,
            {"conversation_id": conversation_id, "at": now, "preview": preview(text)},
        )
    ).one_or_none()
    if row is None:
        return None
    view = dict(row._mapping)
    view["last_message_at"] = now.isoformat()
    return view


async def _claim_attachments(
    session: AsyncSession,
    attachment_ids: Sequence[str],
    *,
    inbox_id: int,
    message_id: int,
    conversation_id: int,
    customer_id: int | None = None,
    user_id: int | None = None,
) -> list[Attachment]:
    if not attachment_ids:
        return []
    if len(attachment_ids) > MAX_ATTACHMENTS_PER_MESSAGE:
        raise InvalidInput(f"at most {MAX_ATTACHMENTS_PER_MESSAGE} attachments per message")
    # Only files this sender uploaded to this inbox, not yet used: a guessed or swapped id
    # from someone else's upload claims nothing.
    query = select(Attachment).where(
        Attachment.id.in_(list(attachment_ids)),
        Attachment.inbox_id == inbox_id,
        Attachment.message_id.is_(None),
    )
    if customer_id is not None:
        query = query.where(Attachment.uploader_customer_id == customer_id)
    if user_id is not None:
        query = query.where(Attachment.uploader_user_id == user_id)
    found = list((await session.execute(query)).scalars())
    if len(found) != len(set(attachment_ids)):
        raise InvalidInput("unknown attachment", code="unknown_attachment")
    for attachment in found:
        attachment.message_id = message_id
        attachment.conversation_id = conversation_id
    return found


def _inbound_row(
    msg: InboundMessage,
    conversation_id: int,
    seq: int,
    text: str,
    now: datetime,
    inbound_event_id: int | None = None,
) -> dict[str, Any]:
    """The `messages` row for a customer message, as the Core inserts take it."""
    return {
        "conversation_id": conversation_id,
        "inbox_id": msg.inbox_id,
        "seq": seq,
        "direction": Direction.INBOUND.value,
        "author_kind": AuthorKind.CUSTOMER.value,
        "author_user_id": None,
        "external_id": msg.external_id,
        "text": text,
        "private": False,
        "delivery_status": DeliveryStatus.RECEIVED.value,
        "delivery_error": None,
        "sent_at": msg.sent_at,
        "created_at": now,
        "raw": dict(msg.raw) if msg.raw is not None else None,
        "html": msg.html,
        "subject": msg.subject,
        "automatic": msg.automatic,
        "edited_at": None,
        "deleted_at": None,
        "inbound_event_id": inbound_event_id,
    }


async def resolve_sender_of(session: AsyncSession, msg: InboundMessage) -> ResolvedSender:
    """The customer (and identity) who sent this message, created if new."""
    return await do_resolve_sender(
        session,
        inbox_id=msg.inbox_id,
        channel=msg.channel,
        external_id=msg.sender_id,
        display_name=msg.sender_name,
        verified_email=msg.verified_email,
    )


async def find_duplicate(session: AsyncSession, inbox_id: int, external_id: str) -> Any:
    """The stored message with this channel id (id, conversation_id, seq), or None."""
    connection = await session.connection()
    return (
        await connection.execute(
            statements.FIND_DUPLICATE, {"inbox_id": inbox_id, "external_id": external_id}
        )
    ).one_or_none()


class DuplicateInBatch(Exception):
    """An optimistic intake met a duplicate after taking a seq: roll back and redo carefully."""


async def do_intake(
    session: AsyncSession,
    msg: InboundMessage,
    *,
    known: KnownThread | None = None,
    optimistic: bool = False,
    inbound_event_id: int | None = None,
) -> IntakeResult:
    """Store one customer message: dedupe, resolve the customer, thread it, number it.

    `known` is what the edge learnt from this sender's previous message; with it the
    common case is three statements (dedupe, take the seq, insert). `optimistic` (for
    batches, where duplicates are rare) drops the dedupe query and lets the unique
    constraint find a duplicate, raising `DuplicateInBatch` so the caller redoes it."""
    text = check_message_text(msg.text, allow_empty=bool(msg.attachments))
    connection = await session.connection()
    if not optimistic:
        duplicate = await find_duplicate(session, msg.inbox_id, msg.external_id)
        if duplicate is not None:
            return IntakeResult(duplicate.id, duplicate.conversation_id, None, duplicate.seq, True)
    now = utcnow()
    conversation = None
    if known is not None:
        customer_id = known.customer_id
        conversation = await _advance(session, known.conversation_id, text, now, inbound=True)
    if conversation is None:
        sender = await resolve_sender_of(session, msg)
        customer_id = sender.customer_id
        conversation_id = await _open_conversation(session, msg, customer_id)
        conversation = await _advance(session, conversation_id, text, now, inbound=True)
        assert conversation is not None
    values = _inbound_row(
        msg, conversation["id"], conversation["last_seq"], text, now, inbound_event_id
    )
    if optimistic:
        insert_unless_duplicate = statements.INSERT_MESSAGES_UNLESS_DUPLICATE[
            connection.dialect.name
        ]
        row = (await connection.execute(insert_unless_duplicate, values)).one_or_none()
        if row is None:
            raise DuplicateInBatch(msg.external_id)
        message_id = row.id
    else:
        message_id = (await connection.execute(statements.INSERT_MESSAGE, values)).scalar_one()
    attachments = await _claim_attachments(
        session,
        [a.attachment_id for a in msg.attachments],
        inbox_id=msg.inbox_id,
        message_id=message_id,
        conversation_id=conversation["id"],
        customer_id=customer_id,
    )
    message = message_dict(message_id, values, attachments)
    emit(
        session,
        MessageCreated(
            actor=f"customer:{customer_id}",
            conversation_id=conversation["id"],
            inbox_id=msg.inbox_id,
            message=message,
            conversation=conversation,
        ),
    )
    return IntakeResult(message_id, conversation["id"], customer_id, values["seq"], False, message)


async def do_intake_returning_senders(
    session: AsyncSession, items: Sequence[tuple[InboundMessage, KnownThread, str]]
) -> list[IntakeResult]:
    """Store messages of returning senders, one per conversation, with one statement for
    the lot on PostgreSQL (two elsewhere): every conversation's next seq, then the
    messages. `items` carry text already checked. A duplicate raises
    `DuplicateInBatch` (the caller redoes the batch one by one); so does a conversation
    that no longer exists. (`conversations.intake_pg` runs the PostgreSQL statement
    without a session, for intake's batches.)"""
    connection = await session.connection()
    now = utcnow()
    by_conversation = returning_senders_batch(items)
    # PostgreSQL takes the batch as arrays in one statement of a fixed text (a message's
    # raw payload, which no batched channel has, would need the per-row form).
    if connection.dialect.name == "postgresql" and all(m.raw is None for m, _k, _t in items):
        advanced, rows, ids = await _store_returning_senders_pg(connection, by_conversation, now)
    else:
        advanced, rows, ids = await _store_returning_senders_core(connection, by_conversation, now)
    results, events = returning_senders_outcome(items, (advanced, rows, ids), now)
    for event in events:
        emit(session, event)
    return results


_Batch = dict[int, tuple[InboundMessage, KnownThread, str]]
_Stored = tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]], dict[int, int]]


def returning_senders_batch(items: Sequence[tuple[InboundMessage, KnownThread, str]]) -> _Batch:
    by_conversation = {known.conversation_id: (msg, known, text) for msg, known, text in items}
    if len(by_conversation) != len(items):
        raise ValueError("one message per conversation")
    return by_conversation


def returning_senders_outcome(
    items: Sequence[tuple[InboundMessage, KnownThread, str]], stored: _Stored, now: datetime
) -> tuple[list[IntakeResult], list[MessageCreated]]:
    """Each stored message's result and event, in the order of `items`."""
    advanced, rows, ids = stored
    results, events = [], []
    for msg, known, _text in items:
        cid = known.conversation_id
        values = rows[cid]
        message_id = ids[cid]
        conversation = advanced[cid]
        conversation["last_message_at"] = now.isoformat()
        message = message_dict(message_id, values, [])
        events.append(
            MessageCreated(
                actor=f"customer:{known.customer_id}",
                conversation_id=cid,
                inbox_id=msg.inbox_id,
                message=message,
                conversation=conversation,
            )
        )
        results.append(
            IntakeResult(message_id, cid, known.customer_id, values["seq"], False, message)
        )
    return results, events


def pg_batch_params(
    by_conversation: _Batch, now: datetime
) -> tuple[dict[int, dict[str, Any]], dict[str, Any]]:
    """The message rows by conversation (seq still 0) and `STORE_RETURNING_SENDERS_PG`'s
    parameters for them."""
    rows = {
        cid: _inbound_row(msg, cid, 0, text, now)  # seq: taken by the statement
        for cid, (msg, _known, text) in by_conversation.items()
    }
    batch = list(rows.values())
    first = batch[0]
    params = {
        **{name: [row[name] for row in batch] for name in statements.PG_ROW_ARRAYS},
        "preview": [preview(row["text"]) for row in batch],
        **{name: first[name] for name in statements.PG_BATCH_SCALARS},
    }
    return rows, params


def pg_batch_stored(
    returned: Iterable[Any], rows: dict[int, dict[str, Any]], *, partial: bool = False
) -> _Stored:
    """Read `STORE_RETURNING_SENDERS_PG`'s rows back (mappings, or asyncpg records:
    anything `dict` takes); with `partial`, only the conversations that are still there;
    else `DuplicateInBatch` when a message
    was stored before or a conversation is gone (raise it inside the transaction)."""
    advanced: dict[int, dict[str, Any]] = {}
    ids: dict[int, int] = {}
    for row in returned:
        view = dict(row)
        message_id = view.pop("message_id")
        if message_id is None:
            raise DuplicateInBatch("a message in the batch was stored before")
        cid = view["id"]
        advanced[cid], ids[cid] = view, message_id
        rows[cid]["seq"] = view["last_seq"]
    if len(advanced) != len(rows):
        if not partial:
            raise DuplicateInBatch("a conversation is gone")
        # What was stored stands (autocommitted); the caller redoes the rest.
        rows = {cid: row for cid, row in rows.items() if cid in advanced}
    return advanced, rows, ids


async def _store_returning_senders_pg(
    connection: AsyncConnection, by_conversation: _Batch, now: datetime
) -> _Stored:
    """(conversation views, message rows, message ids), each by conversation id."""
    rows, params = pg_batch_params(by_conversation, now)
    result = await connection.execute(statements.STORE_RETURNING_SENDERS_PG, params)
    return pg_batch_stored(result.mappings(), rows)


async def _store_returning_senders_core(
    connection: AsyncConnection, by_conversation: _Batch, now: datetime
) -> _Stored:
    """The same in two Core statements: one UPDATE for every conversation's next seq, one
    multi-row INSERT."""
    previews = {cid: preview(text) for cid, (_m, _k, text) in by_conversation.items()}
    advanced = {
        row.id: dict(row._mapping)
        for row in await connection.execute(
            statements.advance_many(list(previews)),
            {"at": now, **statements.preview_params(previews)},
        )
    }
    if len(advanced) != len(by_conversation):
        raise DuplicateInBatch("a conversation is gone")
    rows = {
        cid: _inbound_row(msg, cid, advanced[cid]["last_seq"], text, now)
        for cid, (msg, _known, text) in by_conversation.items()
    }
    insert_many = statements.INSERT_MESSAGES_UNLESS_DUPLICATE[connection.dialect.name]
    inserted = {
        (row.inbox_id, row.external_id): row.id
        for row in await connection.execute(insert_many, list(rows.values()))
    }
    if len(inserted) != len(rows):
        raise DuplicateInBatch("a message in the batch was stored before")
    ids = {
        cid: inserted[(msg.inbox_id, msg.external_id)]
        for cid, (msg, _known, _text) in by_conversation.items()
    }
    return advanced, rows, ids


def message_dict(
    message_id: int, values: dict[str, Any], attachments: Sequence[Attachment]
) -> dict[str, Any]:
    """`message_view` for a row handled with Core (no ORM object to load back)."""
    return {
        "id": message_id,
        "conversation_id": values["conversation_id"],
        "seq": values["seq"],
        "direction": values["direction"],
        "author_kind": values["author_kind"],
        "author_user_id": values["author_user_id"],
        "text": values["text"],
        "private": values["private"],
        "delivery_status": values["delivery_status"],
        "delivery_error": values["delivery_error"],
        "created_at": values["created_at"].isoformat(),
        "attachments": [attachment_view(a) for a in attachments],
        "subject": values.get("subject"),
        "html": values.get("html"),
        "automatic": values.get("automatic", False),
        "edited_at": None,
        "deleted_at": None,
    }


async def do_reply(
    session: AsyncSession,
    *,
    conversation_id: int,
    text: str,
    author_kind: AuthorKind,
    author_user_id: int | None = None,
    private: bool = False,
    attachment_ids: Sequence[str] = (),
) -> Message:
    """Store a reply and, unless it is an internal note, queue it in the outbox."""
    text = check_message_text(text, allow_empty=bool(attachment_ids))
    now = utcnow()
    conversation = await _advance(session, conversation_id, text, now, inbound=False)
    if conversation is None:
        raise NotFound("conversation not found")
    inbox_id = conversation["inbox_id"]
    message = Message(
        conversation_id=conversation_id,
        inbox_id=inbox_id,
        seq=conversation["last_seq"],
        direction=Direction.OUTBOUND,
        author_kind=author_kind,
        author_user_id=author_user_id,
        text=text,
        private=private,
        # Chatwoot's rule: internal notes never reach the channel.
        delivery_status=DeliveryStatus.NOT_SENT if private else DeliveryStatus.PENDING,
        created_at=now,
    )
    session.add(message)
    await session.flush()
    attachments = await _claim_attachments(
        session,
        attachment_ids,
        inbox_id=inbox_id,
        message_id=message.id,
        conversation_id=conversation_id,
        user_id=author_user_id,
    )
    if not private:
        session.add(
            OutboxEntry(
                message_id=message.id,
                conversation_id=conversation_id,
                inbox_id=inbox_id,
                next_attempt_at=now,
                created_at=now,
            )
        )
        emit(session, OutboxWake(actor=f"{author_kind}:{author_user_id or 0}"))
    emit(
        session,
        MessageCreated(
            actor=f"{author_kind}:{author_user_id or 0}",
            conversation_id=conversation_id,
            inbox_id=inbox_id,
            message=message_view(message, attachments),
            conversation=conversation,
        ),
    )
    return message


async def attachments_by_message(
    session: AsyncSession, message_ids: Sequence[int]
) -> dict[int, list[Attachment]]:
    if not message_ids:
        return {}
    rows = await session.execute(
        select(Attachment)
        .where(Attachment.message_id.in_(list(message_ids)))
        .order_by(Attachment.created_at)
    )
    grouped: dict[int, list[Attachment]] = {}
    for attachment in rows.scalars():
        assert attachment.message_id is not None
        grouped.setdefault(attachment.message_id, []).append(attachment)
    return grouped


async def list_messages(
    session: AsyncSession,
    conversation_id: int,
    *,
    after_seq: int = 0,
    limit: int = 200,
    include_private: bool,
) -> list[dict[str, Any]]:
    """Messages after `after_seq`, oldest first. Customers never see internal notes."""
    query = (
        select(Message)
        .where(Message.conversation_id == conversation_id, Message.seq > after_seq)
        .order_by(Message.seq)
        .limit(limit)
    )
    if not include_private:
        query = query.where(Message.private.is_(False))
    messages = list((await session.execute(query)).scalars())
    attachments = await attachments_by_message(session, [m.id for m in messages])
    return [message_view(m, attachments.get(m.id, [])) for m in messages]


async def latest_customer_texts(
    session: AsyncSession, conversation_id: int, limit: int
) -> list[str]:
    """The customer's last ``limit`` messages' texts, newest first (what routing rules
    and language detection read)."""
    found = await session.execute(
        select(Message.text)
        .where(
            Message.conversation_id == conversation_id,
            Message.direction == Direction.INBOUND,
            Message.author_kind == AuthorKind.CUSTOMER,
        )
        .order_by(Message.seq.desc())
        .limit(limit)
    )
    return [text or "" for text in found.scalars()]


async def list_conversations(
    session: AsyncSession,
    *,
    inbox_ids: Sequence[int] | None = None,
    visible: ColumnElement[bool] | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Most recently active first; `inbox_ids` and `visible` (the caller's
    `web.access.visible_conversations`) limit to what the caller may see."""
    query = select(Conversation).order_by(
        Conversation.last_message_at.desc().nulls_last(), Conversation.id.desc()
    )
    if inbox_ids is not None:
        query = query.where(Conversation.inbox_id.in_(list(inbox_ids)))
    if visible is not None:
        query = query.where(visible)
    rows = (await session.execute(query.limit(limit))).scalars()
    return [conversation_view(c) for c in rows]


async def do_mark_read(session: AsyncSession, conversation_id: int) -> None:
    await session.execute(
        update(Conversation).where(Conversation.id == conversation_id).values(unread_count=0)
    )


async def get_inbox_by_public_key(session: AsyncSession, public_key: str) -> Inbox | None:
    return (
        await session.execute(select(Inbox).where(Inbox.public_key == public_key))
    ).scalar_one_or_none()
