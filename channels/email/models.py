"""What email threading and IMAP polling remember between messages."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from conversations import models as _conversations  # noqa: F401  (the tables our FKs name)
from switchboard.db import Base, UTCDateTime, utcnow


class EmailMessageId(Base):
    """Every Message-ID we sent or received, and its conversation: the second way (after
    the reply token) an inbound mail finds its thread."""

    __tablename__ = "email_message_ids"
    __table_args__ = (UniqueConstraint("inbox_id", "digest"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    # sha256 of the normalised id: Message-IDs may be longer than an index allows.
    digest: Mapped[str] = mapped_column(String(64))
    message_id_header: Mapped[str] = mapped_column(Text)
    direction: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ImapCursor(Base):
    """How far polling got in one folder: nothing fetched twice, nothing skipped. A new
    UIDVALIDITY means the server renumbered the folder, so UIDs start over."""

    __tablename__ = "imap_cursors"

    inbox_id: Mapped[int] = mapped_column(
        ForeignKey("inboxes.id", ondelete="CASCADE"), primary_key=True
    )
    folder: Mapped[str] = mapped_column(String(255), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
