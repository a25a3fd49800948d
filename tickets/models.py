"""Tickets, the conversations they cover, their tags, notes and timeline."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

# The tables our foreign keys name, so these models work whatever imported them first.
from conversations import models as _conversations  # noqa: F401
from customers import models as _customers  # noqa: F401
from switchboard import models as _users  # noqa: F401
from switchboard.db import Base, UTCDateTime, utcnow


class TicketStatus(enum.StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"  # waiting on the customer
    ON_HOLD = "on_hold"  # waiting on a third party
    SOLVED = "solved"
    CLOSED = "closed"


# A ticket in one of these is the conversation's open ticket: new messages belong to it.
ACTIVE_STATUSES = frozenset(
    {TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING, TicketStatus.ON_HOLD}
)


class TicketPriority(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class TicketSource(enum.StrEnum):
    HANDOFF = "bot_handoff"  # the bot handed the conversation to a person
    INBOX = "inbox"  # a customer wrote to an inbox without a bot
    AGENT = "agent"  # an agent opened it
    CUSTOMER_REPLY = "customer_reply"  # a reply after the reopen window: a follow-up ticket


# The partial indexes' condition, literally: a query filtering on any subset of the
# active statuses (`status IN (...)`) is proved to fall inside it by PostgreSQL.
ACTIVE_SQL = "status IN ('new', 'open', 'pending', 'on_hold')"


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        # The agent's list view, newest first by id: by status, by assignee, by queue.
        Index("ix_tickets_status_id", "status", "id"),
        Index("ix_tickets_assignee_status", "assignee_user_id", "status", "id"),
        Index("ix_tickets_queue_status", "queue_id", "status", "id"),
        # The inbox lists of active tickets (migration 0014), newest first, read in index
        # order with no sort and never touching the finished tickets (most rows at scale):
        # "mine" (my active tickets) and "visible active" (an id-ordered scan filtered by
        # the agent's visibility, which stops after one page).
        Index(
            "ix_tickets_active_assignee",
            "assignee_user_id",
            "id",
            postgresql_where=text(ACTIVE_SQL),
            sqlite_where=text(ACTIVE_SQL),
        ),
        Index(
            "ix_tickets_active_id",
            "id",
            postgresql_where=text(ACTIVE_SQL),
            sqlite_where=text(ACTIVE_SQL),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    subject: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(20), default=TicketStatus.NEW)
    priority: Mapped[str] = mapped_column(String(10), default=TicketPriority.NORMAL)
    source: Mapped[str] = mapped_column(String(32))
    # Why it was opened (the bot's hand-off reason), for people and for routing rules.
    reason: Mapped[str | None] = mapped_column(String(500))
    assignee_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="SET NULL"))
    # SLA attaches here (issue 5, point 4); no foreign key until its table exists.
    sla_policy_id: Mapped[int | None] = mapped_column(Integer)
    first_response_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    resolution_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    merged_into_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    solved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TicketConversation(Base):
    """A conversation a ticket covers. A conversation belongs to many tickets over time
    but to at most one active ticket at once: `open_conversation_id` is the conversation's
    id while the ticket is active and NULL otherwise, and it is unique (NULLs never
    clash), so two writers racing to open a ticket cannot both succeed."""

    __tablename__ = "ticket_conversations"
    __table_args__ = (UniqueConstraint("ticket_id", "conversation_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    open_conversation_id: Mapped[int | None] = mapped_column(Integer, unique=True)
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TicketTag(Base):
    __tablename__ = "ticket_tags"
    __table_args__ = (Index("ix_ticket_tags_tag", "tag", "ticket_id"),)

    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(50), primary_key=True)


class TicketNote(Base):
    """An internal note on a ticket: never shown to the customer."""

    __tablename__ = "ticket_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TicketActivity(Base):
    """One entry of a ticket's timeline: what changed, who did it, when."""

    __tablename__ = "ticket_activities"
    __table_args__ = (Index("ix_ticket_activities_ticket_id", "ticket_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    # "agent:5", "customer:9", "bot", "system": the same form events carry.
    actor: Mapped[str] = mapped_column(String(64))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set on entries that came over from a ticket merged into this one.
    merged_from_ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL")
    )


class TicketWatch(Base):
    """How far the ticket follow-up has read each conversation (`conversations.last_seq`
    at its last look): customer messages after it have not been matched to a ticket yet."""

    __tablename__ = "ticket_watch"

    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    seen_seq: Mapped[int] = mapped_column(Integer, default=0)


# The queues table `Ticket.queue_id` names (routing's models import these, so last).
from routing import models as _routing  # noqa: E402, F401
