"""Admin operations on SLA calendars and policies: checked whole, then written.

`check_*` refuse bad input with a 400 that says what is wrong, before anything is
stored. A changed calendar or policy applies to clocks from their next recomputation
(a start, a resume, a priority change); running due times are not rewritten in bulk.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.db import utcnow
from switchboard.errors import Conflict, InvalidInput, NotFound
from switchboard.models import Role, User
from tickets.business_hours import (
    BusinessCalendar,
    CalendarInvalid,
    NoBusinessTime,
    add_business_time,
    calendar_from,
    format_week,
)
from tickets.models import ACTIVE_STATUSES, Ticket, TicketPriority
from tickets.sla_models import ClockStatus, SlaCalendar, SlaClock, SlaMetric, SlaPolicy

MAX_NAME = 100
MAX_TARGET_MINUTES = 366 * 24 * 60
MAX_ESCALATIONS = 20
WHENS = ("warning", "breach")
ACTIONS = ("notify", "raise_priority", "reassign")
_STAFF = {Role.AGENT, Role.SUPERVISOR, Role.ADMIN}


def _name(raw: object) -> str:
    if not isinstance(raw, str) or not 0 < len(raw.strip()) <= MAX_NAME:
        raise InvalidInput(f"name must be 1 to {MAX_NAME} characters", code="invalid_name")
    if any(ord(ch) < 32 for ch in raw):
        raise InvalidInput("name must not contain control characters", code="invalid_name")
    return raw.strip()


def _row_id(raw: object, what: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 < raw <= 2**31 - 1:
        raise InvalidInput(f"{what} must be a positive whole number", code=f"invalid_{what}")
    return raw


# --- calendars -------------------------------------------------------------------------


@dataclass(frozen=True)
class CalendarInput:
    name: str
    time_zone: str
    hours: dict[str, list[list[str]]]
    holidays: list[str]


def check_calendar(body: dict[str, Any], current: SlaCalendar | None = None) -> CalendarInput:
    """The calendar a body asks for (fields left out keep `current`'s values)."""
    merged = {
        "name": current.name if current else None,
        "time_zone": current.time_zone if current else None,
        "hours": current.hours if current else None,
        "holidays": current.holidays if current else [],
    }
    merged.update({k: body[k] for k in merged if k in body})
    name = _name(merged["name"])
    try:
        calendar = calendar_from(merged["time_zone"], merged["hours"], merged["holidays"])
    except CalendarInvalid as bad:
        raise InvalidInput(str(bad), code="invalid_calendar") from None
    assert isinstance(merged["time_zone"], str)
    return CalendarInput(
        name=name,
        time_zone=merged["time_zone"],
        hours=format_week(calendar.week),
        holidays=sorted(d.isoformat() for d in calendar.holidays),
    )


def calendar_view(row: SlaCalendar) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "time_zone": row.time_zone,
        "hours": row.hours,
        "holidays": row.holidays,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


async def _unique(session: AsyncSession, model: Any, name: str, own_id: int | None) -> None:
    found = (await session.execute(select(model.id).where(model.name == name))).scalar_one_or_none()
    if found is not None and found != own_id:
        raise Conflict(f"the name {name!r} is taken", code="name_taken")


async def do_save_calendar(
    session: AsyncSession, checked: CalendarInput, calendar_id: int | None = None
) -> SlaCalendar:
    row = None
    if calendar_id is not None:
        row = await get_calendar(session, calendar_id)
    await _unique(session, SlaCalendar, checked.name, calendar_id)
    now = utcnow()
    if row is None:
        row = SlaCalendar(created_at=now)
        session.add(row)
    row.name, row.time_zone = checked.name, checked.time_zone
    row.hours, row.holidays, row.updated_at = checked.hours, checked.holidays, now
    await session.flush()
    return row


async def get_calendar(session: AsyncSession, calendar_id: int) -> SlaCalendar:
    row = await session.get(SlaCalendar, calendar_id)
    if row is None:
        raise NotFound("calendar not found")
    return row


async def do_delete_calendar(session: AsyncSession, calendar_id: int) -> None:
    row = await get_calendar(session, calendar_id)
    used = (
        await session.execute(
            select(SlaPolicy.name).where(SlaPolicy.calendar_id == row.id).limit(1)
        )
    ).scalar_one_or_none()
    if used is not None:
        raise Conflict(f"policy {used!r} uses this calendar", code="calendar_in_use")
    await session.delete(row)


# --- policies --------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyInput:
    name: str
    calendar_id: int | None
    targets: dict[str, dict[str, int]]
    escalations: list[dict[str, Any]]
    is_default: bool


def _targets(raw: object) -> dict[str, dict[str, int]]:
    priorities = [p.value for p in TicketPriority]
    metrics = [m.value for m in SlaMetric]
    if not isinstance(raw, dict) or not raw:
        raise InvalidInput(
            f"targets must be an object keyed by priority ({', '.join(priorities)})",
            code="invalid_targets",
        )
    targets: dict[str, dict[str, int]] = {}
    for priority, per in raw.items():
        if priority not in priorities:
            raise InvalidInput(f"unknown priority {priority!r} in targets", code="invalid_targets")
        if not isinstance(per, dict):
            raise InvalidInput(
                f"targets.{priority} must map metrics ({', '.join(metrics)}) to minutes",
                code="invalid_targets",
            )
        targets[priority] = {}
        for metric, minutes in per.items():
            if metric not in metrics:
                raise InvalidInput(f"unknown metric {metric!r} in targets", code="invalid_targets")
            if (
                isinstance(minutes, bool)
                or not isinstance(minutes, int)
                or not 0 < minutes <= MAX_TARGET_MINUTES
            ):
                raise InvalidInput(
                    f"targets.{priority}.{metric} must be 1 to {MAX_TARGET_MINUTES} minutes",
                    code="invalid_targets",
                )
            targets[priority][metric] = minutes
    return targets


async def _escalations(session: AsyncSession, raw: object) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or len(raw) > MAX_ESCALATIONS:
        raise InvalidInput(
            f"escalations must be a list of at most {MAX_ESCALATIONS} actions",
            code="invalid_escalations",
        )
    checked: list[dict[str, Any]] = []
    for item in raw:
        if not isinstance(item, dict) or set(item) - {"when", "action", "metrics", "user_id"}:
            raise InvalidInput(
                "each escalation is {when, action, metrics?, user_id?}", code="invalid_escalations"
            )
        when, action = item.get("when"), item.get("action")
        if when not in WHENS:
            raise InvalidInput(
                f"escalation when must be one of {', '.join(WHENS)}", code="invalid_escalations"
            )
        if action not in ACTIONS:
            raise InvalidInput(
                f"escalation action must be one of {', '.join(ACTIONS)}", code="invalid_escalations"
            )
        entry: dict[str, Any] = {"when": when, "action": action}
        if "metrics" in item:
            metrics = item["metrics"]
            known = {m.value for m in SlaMetric}
            if not isinstance(metrics, list) or not all(m in known for m in metrics):
                raise InvalidInput(
                    f"escalation metrics must be a list of {', '.join(sorted(known))}",
                    code="invalid_escalations",
                )
            entry["metrics"] = sorted(set(metrics))
        if item.get("user_id") is not None:
            if action != "reassign":
                raise InvalidInput("user_id goes only with reassign", code="invalid_escalations")
            user = await session.get(User, _row_id(item["user_id"], "user_id"))
            if user is None or not user.active or user.role not in _STAFF:
                raise InvalidInput(
                    "user_id must name an active agent, supervisor or admin",
                    code="invalid_escalations",
                )
            entry["user_id"] = user.id
        checked.append(entry)
    return checked


DEFAULT_ESCALATIONS = [
    {"when": "warning", "action": "notify"},
    {"when": "breach", "action": "notify"},
]


async def check_policy(
    session: AsyncSession, body: dict[str, Any], current: SlaPolicy | None = None
) -> PolicyInput:
    merged: dict[str, Any] = {
        "name": current.name if current else None,
        "calendar_id": current.calendar_id if current else None,
        "targets": current.targets if current else None,
        "escalations": current.escalations if current else DEFAULT_ESCALATIONS,
        "is_default": current.is_default if current else False,
    }
    merged.update({k: body[k] for k in merged if k in body})
    name = _name(merged["name"])
    targets = _targets(merged["targets"])
    escalations = await _escalations(session, merged["escalations"])
    if not isinstance(merged["is_default"], bool):
        raise InvalidInput("is_default must be true or false", code="invalid_is_default")
    calendar = BusinessCalendar.always()
    calendar_id = merged["calendar_id"]
    if calendar_id is not None:
        row = await session.get(SlaCalendar, _row_id(calendar_id, "calendar_id"))
        if row is None:
            raise InvalidInput("calendar_id names no calendar", code="invalid_calendar_id")
        calendar = calendar_from(row.time_zone, row.hours, row.holidays)
    longest = max((m for per in targets.values() for m in per.values()), default=0)
    try:
        add_business_time(calendar, utcnow(), timedelta(minutes=longest))
    except NoBusinessTime:
        raise InvalidInput(
            f"the calendar cannot fit {longest} business minutes", code="invalid_targets"
        ) from None
    return PolicyInput(name, calendar_id, targets, escalations, merged["is_default"])


def policy_view(row: SlaPolicy) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "calendar_id": row.calendar_id,
        "targets": row.targets,
        "escalations": row.escalations,
        "is_default": row.is_default,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


async def get_policy(session: AsyncSession, policy_id: int) -> SlaPolicy:
    row = await session.get(SlaPolicy, policy_id)
    if row is None:
        raise NotFound("policy not found")
    return row


async def do_save_policy(
    session: AsyncSession, checked: PolicyInput, policy_id: int | None = None
) -> SlaPolicy:
    row = await get_policy(session, policy_id) if policy_id is not None else None
    await _unique(session, SlaPolicy, checked.name, policy_id)
    now = utcnow()
    if checked.is_default:
        # One default: the previous one stops being it in the same transaction.
        await session.execute(
            update(SlaPolicy).where(SlaPolicy.is_default.is_(True)).values(is_default=False)
        )
    if row is None:
        row = SlaPolicy(created_at=now)
        session.add(row)
    row.name, row.calendar_id, row.targets = checked.name, checked.calendar_id, checked.targets
    row.escalations, row.is_default, row.updated_at = (
        checked.escalations,
        checked.is_default,
        now,
    )
    await session.flush()
    return row


async def do_delete_policy(session: AsyncSession, policy_id: int) -> None:
    """Refused (409) while an active ticket or a running clock uses the policy."""
    row = await get_policy(session, policy_id)
    running = (
        await session.execute(
            select(func.count())
            .select_from(SlaClock)
            .where(SlaClock.policy_id == row.id, SlaClock.status == ClockStatus.ACTIVE)
        )
    ).scalar_one()
    tickets = (
        await session.execute(
            select(func.count())
            .select_from(Ticket)
            .where(Ticket.sla_policy_id == row.id, Ticket.status.in_(list(ACTIVE_STATUSES)))
        )
    ).scalar_one()
    if running or tickets:
        raise Conflict(
            f"policy in use by {tickets} active tickets ({running} running clocks)",
            code="policy_in_use",
        )
    await session.execute(
        update(Ticket).where(Ticket.sla_policy_id == row.id).values(sla_policy_id=None)
    )
    await session.delete(row)
