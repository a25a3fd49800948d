"""The bot's state per conversation, the explanation of every bot message, and each
inbox's thresholds and hand-off rules."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

# The tables our foreign keys name, so these models work whatever imported them first.
from conversations import models as _conversations  # noqa: F401
from switchboard.db import Base, UTCDateTime, utcnow


class BotMode(enum.StrEnum):
    BOT = "bot"  # the bot takes every customer message
    HUMAN = "human"  # handed off: people answer until an agent hands it back


class BotConversation(Base):
    """Where the bot stands in one conversation. ``handled_seq`` is the last message the
    bot has looked at: a customer message after it is a pending turn. A worker claims
    the turn under a lease (``lease_owner``/``lease_until``), like the outbox."""

    __tablename__ = "bot_conversations"
    __table_args__ = (Index("ix_bot_conversations_mode", "mode", "lease_until"),)

    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    mode: Mapped[str] = mapped_column(String(8), default=BotMode.BOT)
    handled_seq: Mapped[int] = mapped_column(Integer, default=0)
    misses: Mapped[int] = mapped_column(Integer, default=0)
    locale: Mapped[str | None] = mapped_column(String(20))
    # The options of the last Clarify: [{"topic", "title", "confidence"}].
    pending_choices: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    handoff_reason: Mapped[str | None] = mapped_column(String(40))
    handoff_detail: Mapped[str | None] = mapped_column(String(500))
    # The bot's best guesses when it handed off: [[topic, confidence], …].
    handoff_guesses: Mapped[list[Any] | None] = mapped_column(JSON)
    handed_off_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(40))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BotReply(Base):
    """Why the bot said what it said: one row per bot message, naming the customer
    message it answered, the decision, and the article (id and version) with its
    confidence. Rows that ended in a miss make the "missed questions" list."""

    __tablename__ = "bot_replies"
    __table_args__ = (Index("ix_bot_replies_inbox_kind", "inbox_id", "kind", "dismissed_at"),)

    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"))
    question_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL")
    )
    kind: Mapped[str] = mapped_column(String(20))
    topic: Mapped[str | None] = mapped_column(String(100))
    # No foreign key: the explanation outlives the article, and a model trained just
    # before an article was deleted may still name it.
    article_id: Mapped[int | None] = mapped_column(Integer)
    article_version: Mapped[int | None] = mapped_column(Integer)
    confidence: Mapped[float | None] = mapped_column(Float)
    locale: Mapped[str | None] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(40))
    guesses: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # A Clarify's options, for channels that show them as buttons: [{"topic", "title"}].
    choices: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    model_fingerprint: Mapped[str | None] = mapped_column(String(40))
    dismissed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dismissed_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BotInboxSettings(Base):
    """An inbox's bot thresholds and hand-off rules (defaults when no row exists)."""

    __tablename__ = "bot_inbox_settings"

    inbox_id: Mapped[int] = mapped_column(
        ForeignKey("inboxes.id", ondelete="CASCADE"), primary_key=True
    )
    confidence: Mapped[float] = mapped_column(Float)
    margin: Mapped[float] = mapped_column(Float)
    clarify_gap: Mapped[float] = mapped_column(Float)
    # [{"field": "tier", "value": "vip", "reason": "VIP customers talk to people"}]
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    updated_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
