"""Queues (teams), their members, agents' routing profiles and presence, routing rules."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from switchboard import models as _users  # noqa: F401  (users, for the foreign keys)
from switchboard.db import Base, UTCDateTime, utcnow
from tickets import models as _tickets  # noqa: F401  (tickets, for the foreign key)


class Strategy(enum.StrEnum):
    ROUND_ROBIN = "round_robin"
    LEAST_LOADED = "least_loaded"
    # Agents whose skills and languages match the ticket's first (least-loaded among
    # them); any available member when none of them has room.
    SKILLS = "skills"


class Presence(enum.StrEnum):
    ONLINE = "online"
    AWAY = "away"  # connected but taking no new work; keeps what they have
    OFFLINE = "offline"


class Queue(Base):
    """A team's queue: the tickets routed to it and the agents who take them."""

    __tablename__ = "queues"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    strategy: Mapped[str] = mapped_column(String(20), default=Strategy.ROUND_ROBIN)
    # Round-robin's cursor: the member who got the last ticket.
    last_assigned_user_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QueueMember(Base):
    __tablename__ = "queue_members"
    __table_args__ = (Index("ix_queue_members_user_id", "user_id", "queue_id"),)

    queue_id: Mapped[int] = mapped_column(
        ForeignKey("queues.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AgentProfile(Base):
    """What routing knows about one agent: capacity, skills, languages and presence.

    `presence` is the state routing acts on, shared by every process through the
    database: a socket opening sets it online; when the agent's last socket closes
    `disconnected_at` is set, and the routing worker turns them offline (and hands back
    their unstarted tickets) only once the grace period has passed without a reconnect.
    """

    __tablename__ = "agent_profiles"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    capacity: Mapped[int] = mapped_column(Integer, default=5)
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    presence: Mapped[str] = mapped_column(String(10), default=Presence.OFFLINE)
    # The agent's own choice while connected: online or away.
    wants: Mapped[str] = mapped_column(String(10), default=Presence.ONLINE)
    presence_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disconnected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AgentSocket(Base):
    """One open inbox socket of an agent, on any process. `seen_at` is refreshed while it
    lives, so the sockets of a process that died stop counting after a while."""

    __tablename__ = "agent_sockets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RoutingRule(Base):
    """One routing rule: conditions (all must hold) and actions, applied in `position`
    order when a ticket opens. Every saved state is kept in `routing_rule_versions`."""

    __tablename__ = "routing_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, index=True)
    enabled: Mapped[bool] = mapped_column(default=True)
    conditions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    actions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )


class RoutingRuleVersion(Base):
    __tablename__ = "routing_rule_versions"
    __table_args__ = (Index("ix_routing_rule_versions_rule", "rule_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("routing_rules.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    # "created", "updated", "reordered", "deleted"
    change: Mapped[str] = mapped_column(String(20))
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TicketRouting(Base):
    """What routing decided for a ticket when it opened, and what assignment needs:
    the ticket's language and the skills a rule asked for."""

    __tablename__ = "ticket_routing"

    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )
    language: Mapped[str | None] = mapped_column(String(20))
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    rule_id: Mapped[int | None] = mapped_column(Integer)
    rule_version: Mapped[int | None] = mapped_column(Integer)
    routed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
