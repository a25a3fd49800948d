"""SLA tables: business-hours calendars, policies, and each ticket's SLA clocks."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    String,
    and_,
    literal_column,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.db import Base, UTCDateTime, utcnow
from tickets import models as _tickets  # noqa: F401  (the table our foreign key names)


class SlaMetric(enum.StrEnum):
    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    RESOLUTION = "resolution"


RESPONSE_METRICS = frozenset({SlaMetric.FIRST_RESPONSE, SlaMetric.NEXT_RESPONSE})


class ClockStatus(enum.StrEnum):
    ACTIVE = "active"  # running or paused
    HIT = "hit"  # met in time
    MISSED = "missed"  # breached


# Written out (not a bound parameter) so the planner can match the partial index.
RUNNING_SQL = "status = 'active' AND paused_at IS NULL"


class SlaCalendar(Base):
    """Weekly business hours in a time zone, with holidays (see `tickets.business_hours`)."""

    __tablename__ = "sla_calendars"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    time_zone: Mapped[str] = mapped_column(String(64))
    # {"monday": [["09:00", "17:00"]], ...}: checked by `business_hours.parse_week`.
    hours: Mapped[dict[str, Any]] = mapped_column(JSON)
    # ["2026-12-25", ...]
    holidays: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SlaPolicy(Base):
    """Targets per priority and metric in business minutes, and what to do on a breach."""

    __tablename__ = "sla_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # None: the clock runs around the clock (24/7).
    calendar_id: Mapped[int | None] = mapped_column(
        ForeignKey("sla_calendars.id", ondelete="RESTRICT"), index=True
    )
    # {"urgent": {"first_response": 30, "next_response": 60, "resolution": 240}, ...}
    targets: Mapped[dict[str, Any]] = mapped_column(JSON)
    # [{"when": "breach", "action": "raise_priority", "metrics": ["first_response"]}, ...]
    escalations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # The policy a ticket gets when routing named none.
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SlaClock(Base):
    """One SLA target being measured on one ticket. A ticket has at most one active clock
    per metric; next-response clocks repeat (one per customer message that follows an
    agent reply), and a reopened ticket gets a new resolution clock."""

    __tablename__ = "sla_clocks"
    __table_args__ = (
        # The breach worker's scan: running clocks (active, not paused) by due time. Partial,
        # so finished clocks (most rows) and paused ones (whose due times slip into the past
        # while they wait) are not in the range every pass reads.
        Index(
            "ix_sla_clocks_running_due",
            "due_at",
            postgresql_where=text(RUNNING_SQL),
            sqlite_where=text(RUNNING_SQL),
        ),
        Index("ix_sla_clocks_ticket", "ticket_id", "metric", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    policy_id: Mapped[int | None] = mapped_column(
        ForeignKey("sla_policies.id", ondelete="SET NULL")
    )
    metric: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(10), default=ClockStatus.ACTIVE)
    priority: Mapped[str] = mapped_column(String(10))
    target_minutes: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set while the ticket is pending or on hold; the business time spent paused adds up
    # in `paused_seconds`, and the due time moves by it on resume.
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paused_seconds: Mapped[int] = mapped_column(Integer, default=0)
    warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the target was met (an agent replied, the ticket was solved), even if late.
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def running() -> ColumnElement[bool]:
    """Clocks that are counting down: the partial index's condition, literally."""
    return and_(SlaClock.status == literal_column("'active'"), SlaClock.paused_at.is_(None))
