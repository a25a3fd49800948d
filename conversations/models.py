"""Inboxes, conversations, messages, attachments and the outbox."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

# The tables our foreign keys name, so these models work whatever imported them first.
from customers import models as _customers  # noqa: F401
from switchboard import models as _users  # noqa: F401
from switchboard.db import Base, UTCDateTime, utcnow


class ChannelKind(enum.StrEnum):
    WEBCHAT = "webchat"
    TELEGRAM = "telegram"
    SLACK = "slack"
    EMAIL = "email"


class Direction(enum.StrEnum):
    INBOUND = "in"
    OUTBOUND = "out"


class AuthorKind(enum.StrEnum):
    CUSTOMER = "customer"
    BOT = "bot"
    AGENT = "agent"
    SYSTEM = "system"


class DeliveryStatus(enum.StrEnum):
    RECEIVED = "received"  # inbound, stored
    PENDING = "pending"  # outbound, waiting in the outbox
    SENT = "sent"
    FAILED = "failed"  # dead-lettered: every attempt failed
    UNCONFIRMED = "unconfirmed"  # a send may have happened, but we could not record it
    NOT_SENT = "not_sent"  # internal notes never leave the hub


class ConversationStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DEAD = "dead"
    UNCONFIRMED = "unconfirmed"


class Inbox(Base):
    __tablename__ = "inboxes"
    # Webhook URLs name the kind and the key (/webhooks/telegram/<key>): unique per kind.
    __table_args__ = (UniqueConstraint("kind", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    # The widget's data-inbox value: public, random, unrelated to the numeric id.
    public_key: Mapped[str] = mapped_column(String(64), unique=True)
    bot_enabled: Mapped[bool] = mapped_column(default=False)
    # Settings an admin may see (addresses, hosts, API URLs).
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Tokens and passwords, encrypted with the secret key (switchboard.crypto).
    credentials: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Conversation(Base):
    __tablename__ = "conversations"
    # One conversation per thread: two concurrent "start chat" calls cannot open two.
    __table_args__ = (
        UniqueConstraint("inbox_id", "thread_key"),
        Index("ix_conversations_last_message_at", "last_message_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    thread_key: Mapped[str] = mapped_column(String(255))
    channel: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default=ConversationStatus.OPEN)
    subject: Mapped[str | None] = mapped_column(String(500))
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    last_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_preview: Mapped[str | None] = mapped_column(String(200))
    unread_count: Mapped[int] = mapped_column(Integer, default=0)
    # Email: the unguessable token in our Reply-To (reply+<token>@…), checked at full length.
    reply_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq"),
        # The dedupe key: a channel's message id is unique within its inbox.
        UniqueConstraint("inbox_id", "external_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    direction: Mapped[str] = mapped_column(String(8))
    author_kind: Mapped[str] = mapped_column(String(16))
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    external_id: Mapped[str | None] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text, default="")
    private: Mapped[bool] = mapped_column(default=False)
    delivery_status: Mapped[str] = mapped_column(String(16))
    delivery_error: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Sanitised HTML (email) shown instead of `text` where the page can.
    html: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(String(500))
    # An auto-reply, bounce or list mail: kept, never answered automatically.
    automatic: Mapped[bool] = mapped_column(default=False)
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The delivery it came in (raw bytes kept there: the original email, the update JSON).
    inbound_event_id: Mapped[int | None] = mapped_column(
        ForeignKey("inbound_events.id", ondelete="SET NULL")
    )


class MessageRevision(Base):
    """A message's text before an edit: the customer's edit never erases what was said."""

    __tablename__ = "message_revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    text: Mapped[str] = mapped_column(Text)
    replaced_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InboundStatus(enum.StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"  # every attempt failed; kept with its error for an admin


class InboundEvent(Base):
    """One verified delivery from a channel, stored before we answer it.

    The webhook (or SMTP session, or IMAP fetch) only files the raw bytes here, under a
    unique key, and answers; the inbound processor parses, downloads files and runs
    intake. A redelivery hits the unique key; nothing acknowledged is ever lost; the raw
    original stays for audit."""

    __tablename__ = "inbound_events"
    __table_args__ = (
        UniqueConstraint("inbox_id", "dedupe_key"),
        Index("ix_inbound_events_due", "status", "next_attempt_at"),
        # The channel-order watermark walks this backwards from the newest key.
        Index("ix_inbound_events_order", "inbox_id", "order_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(20))
    dedupe_key: Mapped[str] = mapped_column(String(255))
    order_key: Mapped[int | None] = mapped_column(BigInteger)
    headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default=InboundStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Attachment(Base):
    """A file sent by a customer or an agent. Bytes live in `attachment_blobs`."""

    __tablename__ = "attachments"

    # Random, unguessable id: uploads are referenced before they belong to a message.
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"))
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    uploader_customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE")
    )
    uploader_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AttachmentBlob(Base):
    """Attachment bytes, kept in the database so every process on every machine sees them."""

    __tablename__ = "attachment_blobs"

    attachment_id: Mapped[str] = mapped_column(
        ForeignKey("attachments.id", ondelete="CASCADE"), primary_key=True
    )
    data: Mapped[bytes] = mapped_column(LargeBinary)


class OutboxEntry(Base):
    """One outbound message waiting for (or done with) delivery through its channel."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), unique=True
    )
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    external_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
