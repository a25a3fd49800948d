"""The floor right now, for the supervisor dashboard: queues and agents.

Per queue (and "no queue"): active tickets, those waiting for an agent (unassigned),
those with a breached SLA clock, and the soonest-due running clocks (not yet breached),
soonest first. Per agent (queue members and agents): presence, capacity, load (active
tickets assigned, as the assigner counts them) and their latest active tickets. A fixed
number of statements whatever the size of the floor (no query per queue or agent); the
per-queue and per-agent "top N" are window functions. Ticket conditions take the
caller's visibility clause.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from routing.models import AgentProfile, Presence, Queue, QueueMember
from switchboard.models import Role, User
from tickets.models import ACTIVE_STATUSES, Ticket
from tickets.sla_models import ClockStatus, SlaClock, running

ACTIVE = [s.value for s in ACTIVE_STATUSES]


def breached_clock() -> ColumnElement[bool]:
    """The ticket has a breached SLA clock."""
    return exists().where(
        SlaClock.ticket_id == Ticket.id, SlaClock.status == ClockStatus.MISSED.value
    )


def state_condition(state: str) -> ColumnElement[bool]:
    """The dashboard's ticket sets: waiting, open (active), breached."""
    active = Ticket.status.in_(ACTIVE)
    if state == "waiting":
        return active & Ticket.assignee_user_id.is_(None)
    if state == "breached":
        return active & breached_clock()
    return active


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def _queues(
    session: AsyncSession, visible: ColumnElement[bool], soonest: int, now: datetime
) -> list[dict[str, Any]]:
    counts = await session.execute(
        select(
            Ticket.queue_id,
            func.count(),
            func.sum(case((Ticket.assignee_user_id.is_(None), 1), else_=0)),
            func.sum(case((breached_clock(), 1), else_=0)),
        )
        .where(Ticket.status.in_(ACTIVE), visible)
        .group_by(Ticket.queue_id)
    )
    by_queue = {q: (int(n), int(w or 0), int(b or 0)) for q, n, w, b in counts}
    # Each ticket once, by its soonest running clock; then the soonest tickets per queue.
    per_ticket = (
        select(
            Ticket.queue_id.label("queue_id"),
            Ticket.id.label("ticket_id"),
            Ticket.subject.label("subject"),
            Ticket.priority.label("priority"),
            Ticket.assignee_user_id.label("assignee_id"),
            SlaClock.id.label("clock_id"),
            SlaClock.metric.label("metric"),
            SlaClock.due_at.label("due_at"),
            func.row_number()
            .over(partition_by=SlaClock.ticket_id, order_by=(SlaClock.due_at, SlaClock.id))
            .label("nth"),
        )
        .join(Ticket, Ticket.id == SlaClock.ticket_id)
        .where(running(), SlaClock.breached_at.is_(None), Ticket.status.in_(ACTIVE), visible)
        .subquery("soonest_per_ticket")
    )
    t = per_ticket.c
    ranked = (
        select(
            t.queue_id,
            t.ticket_id,
            t.subject,
            t.priority,
            t.assignee_id,
            t.metric,
            t.due_at,
            func.row_number()
            .over(partition_by=t.queue_id, order_by=(t.due_at, t.clock_id))
            .label("rank"),
        )
        .where(t.nth == 1)
        .subquery("ranked_clocks")
    )
    due_rows = await session.execute(
        select(ranked).where(ranked.c.rank <= soonest).order_by(ranked.c.queue_id, ranked.c.rank)
    )
    due: dict[int | None, list[dict[str, Any]]] = {}
    for row in due_rows:
        due.setdefault(row.queue_id, []).append(
            {
                "ticket_id": row.ticket_id,
                "subject": row.subject,
                "priority": row.priority,
                "assignee_id": row.assignee_id,
                "metric": row.metric,
                "due_at": row.due_at.isoformat(),
                "seconds_to_breach": int((row.due_at - now).total_seconds()),
            }
        )
    queues: list[tuple[int | None, str | None]] = [
        (q.id, q.name)
        for q in (await session.execute(select(Queue).order_by(Queue.name))).scalars()
    ]
    if None in by_queue or None in due:
        queues.append((None, None))  # tickets routed nowhere
    out = []
    for queue_id, name in queues:
        n, waiting, breached = by_queue.get(queue_id, (0, 0, 0))
        out.append(
            {
                "id": queue_id,
                "name": name,
                "open": n,
                "waiting": waiting,
                "breached": breached,
                "soonest": due.get(queue_id, []),
            }
        )
    return out


async def _agents(
    session: AsyncSession, visible: ColumnElement[bool], current: int
) -> list[dict[str, Any]]:
    members = await session.execute(select(QueueMember.user_id, QueueMember.queue_id))
    queues_of: dict[int, list[int]] = {}
    for user_id, queue_id in members:
        queues_of.setdefault(user_id, []).append(queue_id)
    people = await session.execute(
        select(User, AgentProfile)
        .outerjoin(AgentProfile, AgentProfile.user_id == User.id)
        .where(
            User.active.is_(True),
            or_(
                User.role == Role.AGENT,
                User.id.in_(select(QueueMember.user_id)),
                User.id.in_(
                    select(Ticket.assignee_user_id).where(
                        Ticket.status.in_(ACTIVE), Ticket.assignee_user_id.is_not(None)
                    )
                ),
            ),
        )
        .order_by(User.name, User.id)
    )
    loads = dict(
        (
            await session.execute(
                select(Ticket.assignee_user_id, func.count())
                .where(Ticket.status.in_(ACTIVE), Ticket.assignee_user_id.is_not(None))
                .group_by(Ticket.assignee_user_id)
            )
        ).all()
    )
    latest = (
        select(
            Ticket.assignee_user_id.label("user_id"),
            Ticket.id.label("id"),
            Ticket.subject.label("subject"),
            Ticket.status.label("status"),
            Ticket.priority.label("priority"),
            Ticket.queue_id.label("queue_id"),
            func.row_number()
            .over(partition_by=Ticket.assignee_user_id, order_by=Ticket.id.desc())
            .label("rank"),
        )
        .where(Ticket.status.in_(ACTIVE), Ticket.assignee_user_id.is_not(None), visible)
        .subquery("latest_tickets")
    )
    tickets: dict[int, list[dict[str, Any]]] = {}
    for row in await session.execute(
        select(latest).where(latest.c.rank <= current).order_by(latest.c.user_id, latest.c.rank)
    ):
        tickets.setdefault(row.user_id, []).append(
            {
                "id": row.id,
                "subject": row.subject,
                "status": row.status,
                "priority": row.priority,
                "queue_id": row.queue_id,
            }
        )
    out = []
    for user, profile in people:
        out.append(
            {
                "id": user.id,
                "name": user.name,
                "email": user.email,
                "role": user.role,
                "presence": profile.presence if profile else Presence.OFFLINE.value,
                "presence_changed_at": _iso(profile.presence_changed_at) if profile else None,
                "capacity": profile.capacity if profile else None,
                "load": int(loads.get(user.id, 0)),
                "queue_ids": sorted(queues_of.get(user.id, [])),
                "tickets": tickets.get(user.id, []),
            }
        )
    return out


async def floor(
    session: AsyncSession,
    visible: ColumnElement[bool],
    now: datetime,
    *,
    soonest: int = 5,
    current: int = 10,
) -> dict[str, Any]:
    return {
        "at": now.isoformat(),
        "queues": await _queues(session, visible, soonest, now),
        "agents": await _agents(session, visible, current),
    }


async def agent_load(session: AsyncSession, user_id: int) -> tuple[int, int | None]:
    """(active tickets assigned, capacity or None without a routing profile)."""
    load = (
        await session.execute(
            select(func.count()).where(
                Ticket.assignee_user_id == user_id, Ticket.status.in_(ACTIVE)
            )
        )
    ).scalar_one()
    capacity = (
        await session.execute(select(AgentProfile.capacity).where(AgentProfile.user_id == user_id))
    ).scalar_one_or_none()
    return int(load), capacity


__all__ = ["agent_load", "breached_clock", "floor", "state_condition"]
