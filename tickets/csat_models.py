"""CSAT: one survey per ticket — the rating request, and the customer's answer."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.db import Base, UTCDateTime, utcnow
from tickets import models as _tickets  # noqa: F401  (the tables our foreign keys name)


class CsatSurvey(Base):
    """The rating request sent when a ticket was solved, and its answer. `ticket_id` is
    unique: a ticket is surveyed at most once, however often it is solved."""

    __tablename__ = "csat_surveys"
    __table_args__ = (
        # The report: answered surveys, newest first, by period / agent / inbox.
        Index("ix_csat_surveys_rated_at", "rated_at", "id"),
        Index("ix_csat_surveys_agent", "agent_user_id", "rated_at"),
        Index("ix_csat_surveys_inbox", "inbox_id", "rated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), unique=True
    )
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    # The agent who solved the ticket: the one the rating is about.
    agent_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # The request as sent (its buttons are looked up by this id).
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), unique=True
    )
    locale: Mapped[str] = mapped_column(String(20))
    # Why no request went out ("disabled": CSAT off in the inbox, "no_conversation",
    # "not_by_agent"); NULL: it was sent. Kept so the ticket is never looked at again.
    skipped: Mapped[str | None] = mapped_column(String(32))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # After this, a digit is an ordinary message and the link no longer works.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rating: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    # "reply" (a digit or a button), "link" (the rating page).
    answered_via: Mapped[str | None] = mapped_column(String(16))
    rated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    commented_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
