"""SLA clocks on tickets: attach a policy, pause and resume, hit on replies and solve.

A clock's due time is always `started_at` plus (target + business time spent paused) of
business time in the policy's calendar, so pausing, resuming and a priority change all
recompute it the same way. Runs in the caller's transaction (ticket service, breach
worker); it writes no timeline entries itself — the callers record what they changed.
Imports only `tickets.models`, `tickets.sla_models` and `tickets.business_hours`, so
`tickets.service` can call it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.business_hours import (
    BusinessCalendar,
    add_business_time,
    business_time_between,
    calendar_from,
)
from tickets.models import Ticket, TicketStatus
from tickets.sla_models import (
    RESPONSE_METRICS,
    ClockStatus,
    SlaCalendar,
    SlaClock,
    SlaMetric,
    SlaPolicy,
)

PAUSED_STATUSES = frozenset({TicketStatus.PENDING, TicketStatus.ON_HOLD})


def calendar_of_row(row: SlaCalendar | None) -> BusinessCalendar:
    if row is None:
        return BusinessCalendar.always()
    return calendar_from(row.time_zone, row.hours, row.holidays)


async def policy_calendar(
    session: AsyncSession, policy_id: int | None
) -> tuple[SlaPolicy | None, BusinessCalendar]:
    policy = await session.get(SlaPolicy, policy_id) if policy_id is not None else None
    row = None
    if policy is not None and policy.calendar_id is not None:
        row = await session.get(SlaCalendar, policy.calendar_id)
    return policy, calendar_of_row(row)


async def default_policy(session: AsyncSession) -> SlaPolicy | None:
    return (
        await session.execute(
            select(SlaPolicy).where(SlaPolicy.is_default.is_(True)).order_by(SlaPolicy.id).limit(1)
        )
    ).scalar_one_or_none()


def target_minutes(policy: SlaPolicy, priority: str, metric: SlaMetric) -> int | None:
    per_priority = policy.targets.get(priority) or {}
    value = per_priority.get(metric.value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _due(calendar: BusinessCalendar, clock: SlaClock) -> datetime:
    budget = timedelta(minutes=clock.target_minutes, seconds=clock.paused_seconds)
    return add_business_time(calendar, clock.started_at, budget)


async def active_clocks(session: AsyncSession, ticket_id: int) -> list[SlaClock]:
    return list(
        (
            await session.execute(
                select(SlaClock)
                .where(SlaClock.ticket_id == ticket_id, SlaClock.status == ClockStatus.ACTIVE)
                .order_by(SlaClock.id)
            )
        ).scalars()
    )


def _sync_ticket_due(ticket: Ticket, clocks: Sequence[SlaClock]) -> None:
    """Keep the ticket's own due columns (list views sort by them) in step."""
    by_metric = {c.metric: c for c in clocks if c.status == ClockStatus.ACTIVE}
    first = by_metric.get(SlaMetric.FIRST_RESPONSE) or by_metric.get(SlaMetric.NEXT_RESPONSE)
    resolution = by_metric.get(SlaMetric.RESOLUTION)
    ticket.first_response_due_at = first.due_at if first is not None else None
    ticket.resolution_due_at = resolution.due_at if resolution is not None else None


def _start(
    session: AsyncSession,
    ticket: Ticket,
    policy: SlaPolicy,
    calendar: BusinessCalendar,
    metric: SlaMetric,
    now: datetime,
) -> SlaClock | None:
    minutes = target_minutes(policy, ticket.priority, metric)
    if minutes is None:
        return None
    clock = SlaClock(
        ticket_id=ticket.id,
        policy_id=policy.id,
        metric=metric,
        status=ClockStatus.ACTIVE,
        priority=ticket.priority,
        target_minutes=minutes,
        started_at=now,
        paused_seconds=0,
        paused_at=now if ticket.status in PAUSED_STATUSES else None,
    )
    clock.due_at = _due(calendar, clock)
    session.add(clock)
    return clock


async def do_attach_policy(
    session: AsyncSession, ticket: Ticket, now: datetime, policy_id: int | None = None
) -> list[str]:
    """Give an active ticket its SLA: the named policy, else the ticket's, else the default
    one. Clocks already running keep their start and take the policy's targets for the
    ticket's priority; missing clocks (first response, resolution) start now. Returns the
    metrics whose clocks changed."""
    if policy_id is not None:
        ticket.sla_policy_id = policy_id
    policy, calendar = await policy_calendar(session, ticket.sla_policy_id)
    if policy is None:
        policy = await default_policy(session)
        if policy is None:
            return []
        ticket.sla_policy_id = policy.id
        _, calendar = await policy_calendar(session, policy.id)
    changed: list[str] = []
    clocks = await active_clocks(session, ticket.id)
    for clock in clocks:
        minutes = target_minutes(policy, ticket.priority, SlaMetric(clock.metric))
        if minutes is None:
            continue
        if (clock.policy_id, clock.target_minutes, clock.priority) != (
            policy.id,
            minutes,
            ticket.priority,
        ):
            clock.policy_id, clock.target_minutes, clock.priority = (
                policy.id,
                minutes,
                ticket.priority,
            )
            clock.due_at = _due(calendar, clock)
            changed.append(clock.metric)
    if ticket.status not in (TicketStatus.SOLVED, TicketStatus.CLOSED):
        already = await _ever_started(session, ticket.id)
        for metric in (SlaMetric.FIRST_RESPONSE, SlaMetric.RESOLUTION):
            if metric in already:
                continue
            started_now = _start(session, ticket, policy, calendar, metric, now)
            if started_now is not None:
                clocks.append(started_now)
                changed.append(metric)
    _sync_ticket_due(ticket, clocks)
    return changed


async def _ever_started(session: AsyncSession, ticket_id: int) -> set[str]:
    """Metrics the ticket has had a clock for, in any state: a first response is measured
    once per ticket, and a resolution once per solve (a reopen starts the next one)."""
    rows = await session.execute(
        select(SlaClock.metric).where(SlaClock.ticket_id == ticket_id).distinct()
    )
    return set(rows.scalars())


def _stop(clock: SlaClock, at: datetime) -> None:
    clock.stopped_at = at
    if clock.status == ClockStatus.ACTIVE:
        clock.status = ClockStatus.HIT if at <= clock.due_at else ClockStatus.MISSED
        if clock.status == ClockStatus.MISSED and clock.breached_at is None:
            clock.breached_at = clock.due_at


async def on_status_changed(
    session: AsyncSession, ticket: Ticket, before: str, now: datetime
) -> None:
    """Pause on pending/on hold, resume on leaving them, stop on solved/closed, and give a
    reopened ticket a new resolution clock."""
    clocks = await active_clocks(session, ticket.id)
    after = ticket.status
    if after in PAUSED_STATUSES:
        for clock in clocks:
            if clock.paused_at is None:
                clock.paused_at = now
    elif after in (TicketStatus.SOLVED, TicketStatus.CLOSED):
        for clock in clocks:
            _resume(clock, await _calendar_for(session, clock), now)
            _stop(clock, now)
        clocks = []
    else:
        for clock in clocks:
            _resume(clock, await _calendar_for(session, clock), now)
        if before == TicketStatus.SOLVED:
            policy, calendar = await policy_calendar(session, ticket.sla_policy_id)
            if policy is not None:
                _start(session, ticket, policy, calendar, SlaMetric.RESOLUTION, now)
                await session.flush()
            clocks = await active_clocks(session, ticket.id)
    _sync_ticket_due(ticket, clocks)


async def _calendar_for(session: AsyncSession, clock: SlaClock) -> BusinessCalendar:
    return (await policy_calendar(session, clock.policy_id))[1]


def _resume(clock: SlaClock, calendar: BusinessCalendar, now: datetime) -> None:
    if clock.paused_at is None:
        return
    if clock.paused_at < clock.due_at:
        paused = business_time_between(calendar, clock.paused_at, now)
        clock.paused_seconds += int(paused.total_seconds())
        clock.due_at = _due(calendar, clock)
    clock.paused_at = None


async def on_agent_replied(session: AsyncSession, ticket: Ticket, at: datetime) -> list[SlaClock]:
    """A public agent reply in the ticket's conversation: the running first- or
    next-response clock is met (or, if already breached, marked answered)."""
    stopped: list[SlaClock] = []
    clocks = await active_clocks(session, ticket.id)
    for clock in clocks:
        if clock.metric in RESPONSE_METRICS and clock.started_at <= at:
            _stop(clock, at)
            stopped.append(clock)
    # A breached response clock (status missed) still wants to know it was answered, so a
    # later customer message starts the next-response clock.
    late = (
        await session.execute(
            select(SlaClock).where(
                SlaClock.ticket_id == ticket.id,
                SlaClock.metric.in_([m.value for m in RESPONSE_METRICS]),
                SlaClock.status == ClockStatus.MISSED,
                SlaClock.stopped_at.is_(None),
                SlaClock.started_at <= at,
            )
        )
    ).scalars()
    for clock in late:
        clock.stopped_at = at
        stopped.append(clock)
    _sync_ticket_due(ticket, [c for c in clocks if c.status == ClockStatus.ACTIVE])
    return stopped


async def on_customer_wrote(session: AsyncSession, ticket: Ticket, at: datetime) -> SlaClock | None:
    """A customer message: if an agent has answered since the last response clock
    started, a next-response clock starts now."""
    if ticket.status in (TicketStatus.SOLVED, TicketStatus.CLOSED) or ticket.sla_policy_id is None:
        return None
    latest = (
        await session.execute(
            select(SlaClock)
            .where(
                SlaClock.ticket_id == ticket.id,
                SlaClock.metric.in_([m.value for m in RESPONSE_METRICS]),
            )
            .order_by(SlaClock.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if latest is None or latest.stopped_at is None or latest.stopped_at > at:
        return None  # no agent has answered yet: the running clock still measures this
    policy, calendar = await policy_calendar(session, ticket.sla_policy_id)
    if policy is None:
        return None
    clock = _start(session, ticket, policy, calendar, SlaMetric.NEXT_RESPONSE, at)
    if clock is not None:
        await session.flush()
        _sync_ticket_due(ticket, await active_clocks(session, ticket.id))
    return clock


# --- reading ---------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def clock_view(clock: SlaClock, now: datetime) -> dict[str, Any]:
    """A clock as the ticket view shows it. `seconds_to_breach` is wall-clock time to the
    due time (negative once overdue) for a running clock; None when paused or finished."""
    running = clock.status == ClockStatus.ACTIVE and clock.paused_at is None
    return {
        "metric": clock.metric,
        "status": clock.status,
        "policy_id": clock.policy_id,
        "target_minutes": clock.target_minutes,
        "started_at": clock.started_at.isoformat(),
        "due_at": clock.due_at.isoformat(),
        "paused": clock.paused_at is not None,
        "paused_minutes": clock.paused_seconds // 60,
        "about_to_breach": clock.warned_at is not None,
        "breached_at": _iso(clock.breached_at),
        "met_at": _iso(clock.stopped_at),
        "seconds_to_breach": int((clock.due_at - now).total_seconds()) if running else None,
    }


async def sla_views(
    session: AsyncSession, ticket_ids: Sequence[int], now: datetime
) -> dict[int, list[dict[str, Any]]]:
    """Per ticket, the latest clock of each metric, in one query."""
    found: dict[int, dict[str, SlaClock]] = {i: {} for i in ticket_ids}
    if ticket_ids:
        rows = await session.execute(
            select(SlaClock)
            .where(SlaClock.ticket_id.in_(list(ticket_ids)))
            .order_by(SlaClock.ticket_id, SlaClock.id)
        )
        for clock in rows.scalars():
            found[clock.ticket_id][clock.metric] = clock
    order = {m.value: i for i, m in enumerate(SlaMetric)}
    return {
        ticket_id: [clock_view(c, now) for c in sorted(by.values(), key=lambda c: order[c.metric])]
        for ticket_id, by in found.items()
    }


def on_ticket_ended(clock: SlaClock, at: datetime) -> None:
    """Stop a clock whose ticket was closed without the SLA hooks (a merge)."""
    _stop(clock, at)
