"""Tables behind the agent inbox's list: saved views, what each agent has read, and the
message search index."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from conversations import models as _conversations  # noqa: F401
from switchboard import models as _users  # noqa: F401
from switchboard.db import Base, UTCDateTime, utcnow


class InboxView(Base):
    """An agent's saved view: a name and the list filters it stands for."""

    __tablename__ = "inbox_views"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    # Checked by `conversations.inbox_list.check_filters` before it is stored.
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConversationRead(Base):
    """How far one agent has read one conversation: customer messages with a higher seq
    are unread for them (each agent has their own unread counts)."""

    __tablename__ = "conversation_reads"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    last_read_seq: Mapped[int] = mapped_column(Integer, default=0)
    read_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MessageTerm(Base):
    """The message search index: one row per (term, message). Terms are normalised words
    and Chinese character bigrams and single characters (`conversations.search`)."""

    __tablename__ = "message_terms"
    # Deleting a message (its conversation, its customer) finds its terms by this index.
    __table_args__ = (Index("ix_message_terms_message_id", "message_id"),)

    term: Mapped[str] = mapped_column(String(64), primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )


class SearchIndexState(Base):
    """How far the message search index has got: every message with an id up to
    `last_id` is indexed."""

    __tablename__ = "search_index_state"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger, default=0)
