"""Agents' presence, shared by every process through the database.

The agent inbox socket is the signal: opening one makes the agent online (or away, if
that is what they chose); closing their last one starts the grace period. The routing
worker's sweep turns an agent offline only once the grace period has passed with no
socket back — a page reload or a hop to another process behind the load balancer
changes nothing — and then hands back their unstarted tickets (no agent reply yet) to
their queues. A socket's row is refreshed while it lives, so the sockets of a process
that died stop counting once they are `stale` old, and the grace period runs from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.models import AuthorKind, Direction, Message
from routing.events import AgentPresenceChanged, RoutingWake
from routing.models import AgentProfile, AgentSocket, Presence
from routing.service import ensure_profile
from switchboard.db import utcnow
from switchboard.errors import InvalidInput
from switchboard.tx import Database, emit
from tickets.checks import TicketChanges
from tickets.models import Ticket, TicketConversation, TicketStatus
from tickets.service import do_update_ticket

log = logging.getLogger(__name__)

# How often a live socket refreshes its row, and when a row no longer counts.
HEARTBEAT = timedelta(seconds=30)
STALE = timedelta(seconds=90)
# Tickets an agent going offline gives back: not yet worked on.
UNSTARTED_STATUSES = (TicketStatus.NEW.value, TicketStatus.OPEN.value)


def _set(session: AsyncSession, profile: AgentProfile, presence: Presence, now: datetime) -> bool:
    if profile.presence == presence:
        return False
    profile.presence = presence
    profile.presence_changed_at = now
    # Supervisors' dashboards show presence live.
    emit(session, AgentPresenceChanged(actor="system", user_id=profile.user_id, presence=presence))
    return True


async def do_socket_opened(session: AsyncSession, user_id: int, socket_id: str) -> None:
    now = utcnow()
    profile = await ensure_profile(session, user_id)
    session.add(AgentSocket(id=socket_id, user_id=user_id, opened_at=now, seen_at=now))
    profile.disconnected_at = None
    if _set(session, profile, Presence(profile.wants), now) and profile.presence == Presence.ONLINE:
        emit(session, RoutingWake(actor=f"agent:{user_id}"))  # held tickets can go now
    await session.flush()


async def do_socket_closed(session: AsyncSession, user_id: int, socket_id: str) -> None:
    now = utcnow()
    await session.execute(delete(AgentSocket).where(AgentSocket.id == socket_id))
    left = (
        await session.execute(
            select(AgentSocket.id).where(
                AgentSocket.user_id == user_id, AgentSocket.seen_at >= now - STALE
            )
        )
    ).first()
    if left is None:
        await session.execute(
            update(AgentProfile).where(AgentProfile.user_id == user_id).values(disconnected_at=now)
        )


async def do_touch_socket(session: AsyncSession, socket_id: str) -> None:
    await session.execute(
        update(AgentSocket).where(AgentSocket.id == socket_id).values(seen_at=utcnow())
    )


async def do_choose_presence(session: AsyncSession, user_id: int, raw: object) -> AgentProfile:
    """The agent's own choice: online (takes new work) or away (keeps what they have)."""
    if raw not in (Presence.ONLINE.value, Presence.AWAY.value):
        raise InvalidInput("status: must be online or away", code="invalid_presence")
    now = utcnow()
    profile = await ensure_profile(session, user_id)
    profile.wants = raw
    connected = (
        await session.execute(
            select(AgentSocket.id).where(
                AgentSocket.user_id == user_id, AgentSocket.seen_at >= now - STALE
            )
        )
    ).first()
    changed = connected is not None and _set(session, profile, Presence(raw), now)
    if changed and profile.presence == Presence.ONLINE:
        emit(session, RoutingWake(actor=f"agent:{user_id}"))
    await session.flush()
    return profile


async def do_hand_back(session: AsyncSession, user_id: int) -> int:
    """Unassign the agent's unstarted tickets (new or open, no agent reply in any of their
    conversations since the ticket opened); they return to their queues."""
    replied = exists().where(
        TicketConversation.ticket_id == Ticket.id,
        Message.conversation_id == TicketConversation.conversation_id,
        Message.direction == Direction.OUTBOUND,
        Message.author_kind == AuthorKind.AGENT,
        Message.created_at >= Ticket.created_at,
    )
    ids = list(
        (
            await session.execute(
                select(Ticket.id)
                .where(
                    Ticket.assignee_user_id == user_id,
                    Ticket.status.in_(UNSTARTED_STATUSES),
                    ~replied,
                )
                .order_by(Ticket.id)
            )
        ).scalars()
    )
    for ticket_id in ids:
        await do_update_ticket(
            session, ticket_id, TicketChanges(assignee_user_id=None), actor="system"
        )
    if ids:
        emit(session, RoutingWake(actor="system"))
    return len(ids)


async def do_sweep_presence(session: AsyncSession, grace: timedelta) -> list[int]:
    """Turn offline the agents gone for longer than `grace`, and hand back their
    unstarted tickets; the ids of the agents turned offline."""
    now = utcnow()
    live = exists().where(
        AgentSocket.user_id == AgentProfile.user_id, AgentSocket.seen_at >= now - STALE
    )
    gone = list(
        (
            await session.execute(
                select(AgentProfile)
                .where(
                    AgentProfile.presence != Presence.OFFLINE,
                    ~live,
                    or_(
                        AgentProfile.disconnected_at.is_(None),
                        AgentProfile.disconnected_at <= now - grace,
                    ),
                )
                .order_by(AgentProfile.user_id)
                .with_for_update(skip_locked=True)
            )
        ).scalars()
    )
    for profile in gone:
        _set(session, profile, Presence.OFFLINE, now)
        await session.execute(
            delete(AgentSocket).where(
                AgentSocket.user_id == profile.user_id, AgentSocket.seen_at < now - STALE
            )
        )
        await do_hand_back(session, profile.user_id)
    await session.flush()
    return [p.user_id for p in gone]


@contextlib.asynccontextmanager
async def agent_connected(db: Database, user_id: int) -> AsyncIterator[None]:
    """Hold one inbox socket of this agent open in the shared presence state."""
    socket_id = secrets.token_hex(16)
    await db.run(lambda s: do_socket_opened(s, user_id, socket_id))

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(HEARTBEAT.total_seconds())
            try:
                await db.run(lambda s: do_touch_socket(s, socket_id))
            except Exception:
                log.warning("presence heartbeat failed", exc_info=True)

    task = asyncio.create_task(heartbeat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        try:
            await db.run(lambda s: do_socket_closed(s, user_id, socket_id))
        except Exception:
            # The row goes stale instead; the sweep counts the grace period from there.
            log.warning("presence close failed", exc_info=True)
