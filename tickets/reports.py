"""Reports for the supervisor dashboard, computed in SQL on SQLite and PostgreSQL.

A report covers a `Period` (local days or hours of one time zone, turned into UTC
bounds here, so DST days are 23 or 25 hours long) split into buckets; each row's bucket
is a CASE over the bucket bounds, so the database groups by local day without knowing
the zone. Durations are seconds between two stored times (`seconds_between`: julianday
on SQLite, date_part('epoch') on PostgreSQL). Percentiles are nearest-rank: the smallest
value whose `cume_dist()` reaches p (the median of 1, 2, 3, 4 is 2), one window pass,
no per-dialect percentile function.

What each report counts:

- **first response**: tickets created in the period, seconds from creation to the first
  public agent message in any of their conversations (tickets without one are counted
  as `unanswered`, not timed);
- **resolution**: tickets solved in the period (`solved_at`, the latest solve), seconds
  from creation to that solve;
- **SLA**: finished clocks (hit or missed) due in the period, by metric;
- **CSAT**: surveys rated in the period: count, average, 1–5 distribution;
- **containment**: conversations whose first bot reply falls in the period; contained =
  the bot gave an answer and nobody took over (no hand-off reply, no public agent
  message in the conversation);
- **hand-off reasons**: the bot's hand-offs in the period by reason, plus agents taking
  a conversation over from the bot (`agent_replied`, from the bot's state).

Ticket reports take the caller's visibility clause (`tickets.access.visible_tickets`)
and an optional queue; drill-downs (`drill_ticket_ids`) return the tickets behind any
number with the same conditions.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    and_,
    case,
    exists,
    func,
    literal,
    not_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from bot.models import BotConversation, BotReply
from conversations.models import AuthorKind, Direction, Message
from switchboard.errors import InvalidInput
from tickets.access import ticket_id_from
from tickets.csat_models import CsatSurvey
from tickets.models import Ticket, TicketConversation
from tickets.sla_models import ClockStatus, SlaClock, SlaMetric

MAX_CUSTOM_DAYS = 92


class Report(enum.StrEnum):
    FIRST_RESPONSE = "first_response"
    RESOLUTION = "resolution"
    SLA = "sla"
    CSAT = "csat"
    CONTAINMENT = "containment"
    HANDOFF_REASONS = "handoff_reasons"


# --- seconds between two stored times --------------------------------------------------


class seconds_between(FunctionElement[float]):
    """`end - start` in seconds, as a float."""

    type = Float()
    name = "seconds_between"
    inherit_cache = True


@compiles(seconds_between)
def _seconds_default(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    end, start = list(element.clauses)
    # date_part, not EXTRACT: EXTRACT returns numeric since PostgreSQL 14, slower to
    # sort and average than the double date_part returns.
    return f"date_part('epoch', {compiler.process(end, **kw)} - {compiler.process(start, **kw)})"


@compiles(seconds_between, "sqlite")
def _seconds_sqlite(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    end, start = list(element.clauses)
    return (
        f"((julianday({compiler.process(end, **kw)}) - "
        f"julianday({compiler.process(start, **kw)})) * 86400.0)"
    )


# --- the period --------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC, split at `bounds` (bucket starts, then `end`); `labels` name
    each bucket in the zone's local time."""

    name: str
    zone: str
    bounds: tuple[datetime, ...]
    labels: tuple[str, ...]

    @property
    def start(self) -> datetime:
        return self.bounds[0]

    @property
    def end(self) -> datetime:
        return self.bounds[-1]

    def bucket(self, column: Any) -> ColumnElement[int]:
        """The bucket index of a time inside the period."""
        inner = self.bounds[1:-1]
        if not inner:
            return literal(0)
        return case(*[(column < bound, i) for i, bound in enumerate(inner)], else_=len(inner))

    def contains(self, column: Any) -> ColumnElement[bool]:
        return and_(column >= self.start, column < self.end)

    def bucket_range(self, index: int | None) -> tuple[datetime, datetime]:
        if index is None:
            return self.start, self.end
        if not 0 <= index < len(self.labels):
            raise InvalidInput("bucket is outside the period", code="invalid_bucket")
        return self.bounds[index], self.bounds[index + 1]


def check_zone(name: str) -> ZoneInfo:
    if not isinstance(name, str) or not 0 < len(name) <= 64 or ".." in name:
        raise InvalidInput("tz must be an IANA time zone", code="invalid_tz")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput("tz must be an IANA time zone", code="invalid_tz") from None


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def _date(name: str, raw: str | None) -> date:
    if not raw or len(raw) != 10:
        raise InvalidInput(f"{name} must be a date (YYYY-MM-DD)", code="invalid_period")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a date (YYYY-MM-DD)", code="invalid_period") from None


def make_period(
    name: str,
    zone_name: str,
    now: datetime,
    first: str | None = None,
    last: str | None = None,
) -> Period:
    """today (hours), 7d / 30d (local days ending today), custom (local days `first` to
    `last`, both included, at most MAX_CUSTOM_DAYS)."""
    zone = check_zone(zone_name)
    today = now.astimezone(zone).date()
    if name == "today":
        start, end = _midnight(today, zone), _midnight(today + timedelta(days=1), zone)
        bounds = []
        at = start
        while at < end:
            bounds.append(at)
            at += timedelta(hours=1)
        bounds.append(end)
        labels = [b.astimezone(zone).strftime("%H:%M") for b in bounds[:-1]]
        return Period(name, zone_name, tuple(bounds), tuple(labels))
    if name in ("7d", "30d"):
        days = 7 if name == "7d" else 30
        first_day = today - timedelta(days=days - 1)
        last_day = today
    elif name == "custom":
        first_day, last_day = _date("from", first), _date("to", last)
        if last_day < first_day:
            raise InvalidInput("to must not be before from", code="invalid_period")
        if (last_day - first_day).days + 1 > MAX_CUSTOM_DAYS:
            raise InvalidInput(
                f"a custom period is at most {MAX_CUSTOM_DAYS} days", code="invalid_period"
            )
    else:
        raise InvalidInput("period must be today, 7d, 30d or custom", code="invalid_period")
    count = (last_day - first_day).days + 1
    day_list = [first_day + timedelta(days=i) for i in range(count + 1)]
    return Period(
        name,
        zone_name,
        tuple(_midnight(d, zone) for d in day_list),
        tuple(d.isoformat() for d in day_list[:-1]),
    )


@dataclass(frozen=True)
class Scope:
    """Whose tickets: the caller's visibility clause, and a queue (None: all; 0: none)."""

    visible: ColumnElement[bool]
    queue_id: int | None = None

    def tickets(self) -> list[ColumnElement[bool]]:
        where = [self.visible]
        if self.queue_id == 0:
            where.append(Ticket.queue_id.is_(None))
        elif self.queue_id is not None:
            where.append(Ticket.queue_id == self.queue_id)
        return where


def parse_queue(raw: str | None) -> int | None:
    """A queue filter: absent or "" (all), "none" (no queue: 0), or a queue id."""
    if raw is None or raw == "":
        return None
    if raw == "none":
        return 0
    found = ticket_id_from(raw)
    if found is None:
        raise InvalidInput("queue_id must be a queue id or none", code="invalid_queue")
    return found


# --- durations: count, average, median, p90 ---------------------------------------------


def _stats(count: Any, average: Any, median: Any, p90: Any) -> dict[str, Any]:
    def secs(value: Any) -> float | None:
        return None if value is None else round(float(value), 1)

    return {
        "count": int(count or 0),
        "average": secs(average),
        "median": secs(median),
        "p90": secs(p90),
    }


async def _durations(
    session: AsyncSession, period: Period, rows: Select[Any, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(overall, per bucket) stats of `rows` (columns `b`: bucket, `s`: seconds)."""
    base = rows.subquery("durations")
    half, ninety = literal(0.5, Float), literal(0.9, Float)
    # Two statements, each with only the window it needs (a window is a sort of every row).
    in_bucket = select(
        base.c.b,
        base.c.s,
        func.cume_dist().over(partition_by=base.c.b, order_by=base.c.s).label("cd"),
    ).subquery("ranked_in_bucket")
    w = in_bucket.c
    per_bucket = await session.execute(
        select(
            w.b,
            func.count(),
            func.avg(w.s),
            func.min(case((w.cd >= half, w.s))),
            func.min(case((w.cd >= ninety, w.s))),
        ).group_by(w.b)
    )
    found = {int(b): _stats(n, avg, med, p) for b, n, avg, med, p in per_bucket}
    overall = select(base.c.s, func.cume_dist().over(order_by=base.c.s).label("cd")).subquery(
        "ranked"
    )
    o = overall.c
    n, avg, med, p = (
        await session.execute(
            select(
                func.count(),
                func.avg(o.s),
                func.min(case((o.cd >= half, o.s))),
                func.min(case((o.cd >= ninety, o.s))),
            )
        )
    ).one()
    series = [
        {"label": label, **found.get(i, _stats(0, None, None, None))}
        for i, label in enumerate(period.labels)
    ]
    return _stats(n, avg, med, p), series


def first_reply_at() -> Any:
    """The first public agent message in any of the ticket's conversations since it opened."""
    return (
        select(func.min(Message.created_at))
        .join(TicketConversation, TicketConversation.conversation_id == Message.conversation_id)
        .where(
            TicketConversation.ticket_id == Ticket.id,
            Message.direction == Direction.OUTBOUND,
            Message.author_kind == AuthorKind.AGENT,
            Message.private.is_(False),
            Message.created_at >= Ticket.created_at,
        )
        .scalar_subquery()
    )


async def first_response(session: AsyncSession, period: Period, scope: Scope) -> dict[str, Any]:
    replied = first_reply_at()
    created = [*scope.tickets(), period.contains(Ticket.created_at)]
    rows = select(
        period.bucket(Ticket.created_at).label("b"),
        seconds_between(replied, Ticket.created_at).label("s"),
    ).where(*created, replied.is_not(None))
    total, series = await _durations(session, period, rows)
    unanswered = (
        await session.execute(select(func.count(Ticket.id)).where(*created, replied.is_(None)))
    ).scalar_one()
    return {"total": {**total, "unanswered": int(unanswered)}, "series": series}


async def resolution(session: AsyncSession, period: Period, scope: Scope) -> dict[str, Any]:
    rows = select(
        period.bucket(Ticket.solved_at).label("b"),
        seconds_between(Ticket.solved_at, Ticket.created_at).label("s"),
    ).where(*scope.tickets(), period.contains(Ticket.solved_at))
    total, series = await _durations(session, period, rows)
    return {"total": total, "series": series}


# --- SLA hit rate -----------------------------------------------------------------------


def _rate(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


async def sla(session: AsyncSession, period: Period, scope: Scope) -> dict[str, Any]:
    finished = [
        SlaClock.status.in_([ClockStatus.HIT, ClockStatus.MISSED]),
        period.contains(SlaClock.due_at),
        *scope.tickets(),
    ]
    # Bucketed in a subquery: grouping by the CASE itself would bind its bounds twice,
    # and PostgreSQL cannot tell the two copies are the same expression.
    clocks = (
        select(
            period.bucket(SlaClock.due_at).label("b"),
            SlaClock.metric.label("metric"),
            SlaClock.status.label("status"),
        )
        .join(Ticket, Ticket.id == SlaClock.ticket_id)
        .where(*finished)
        .subquery("finished_clocks")
    )
    hit = func.sum(case((clocks.c.status == ClockStatus.HIT.value, 1), else_=0))
    missed = func.sum(case((clocks.c.status == ClockStatus.MISSED.value, 1), else_=0))
    grouped = await session.execute(
        select(clocks.c.b, clocks.c.metric, hit, missed).group_by(clocks.c.b, clocks.c.metric)
    )
    per_bucket: dict[int, list[int]] = {}
    per_metric: dict[str, list[int]] = {m.value: [0, 0] for m in SlaMetric}
    for b, metric, h, m in grouped:
        counts = per_bucket.setdefault(int(b), [0, 0])
        counts[0] += int(h or 0)
        counts[1] += int(m or 0)
        if metric in per_metric:
            per_metric[metric][0] += int(h or 0)
            per_metric[metric][1] += int(m or 0)
    all_hit = sum(h for h, _ in per_metric.values())
    all_missed = sum(m for _, m in per_metric.values())

    def entry(h: int, m: int) -> dict[str, Any]:
        return {"hit": h, "missed": m, "rate": _rate(h, h + m)}

    return {
        "total": entry(all_hit, all_missed),
        "by_metric": {metric: entry(h, m) for metric, (h, m) in per_metric.items()},
        "series": [
            {"label": label, **entry(*per_bucket.get(i, [0, 0]))}
            for i, label in enumerate(period.labels)
        ],
    }


# --- CSAT -------------------------------------------------------------------------------


async def csat(session: AsyncSession, period: Period, scope: Scope) -> dict[str, Any]:
    rated = [
        CsatSurvey.rating.is_not(None),
        period.contains(CsatSurvey.rated_at),
        *scope.tickets(),
    ]
    surveys = (
        select(period.bucket(CsatSurvey.rated_at).label("b"), CsatSurvey.rating.label("rating"))
        .join(Ticket, Ticket.id == CsatSurvey.ticket_id)
        .where(*rated)
        .subquery("rated_surveys")
    )
    rows = await session.execute(
        select(surveys.c.b, surveys.c.rating, func.count()).group_by(surveys.c.b, surveys.c.rating)
    )
    distribution = {str(r): 0 for r in range(1, 6)}
    buckets: dict[int, list[int]] = {}  # [count, sum]
    for b, rating, n in rows:
        if str(rating) in distribution:
            distribution[str(rating)] += int(n)
        counts = buckets.setdefault(int(b), [0, 0])
        counts[0] += int(n)
        counts[1] += int(n) * int(rating)
    count = sum(distribution.values())
    total = sum(int(r) * n for r, n in distribution.items())
    satisfied = distribution["4"] + distribution["5"]

    def average(n: int, s: int) -> float | None:
        return round(s / n, 2) if n else None

    return {
        "total": {
            "count": count,
            "average": average(count, total),
            "satisfied_percent": _rate(satisfied, count),
        },
        "distribution": distribution,
        "series": [
            {"label": label, "count": c[0], "average": average(c[0], c[1])}
            for i, label in enumerate(period.labels)
            for c in [buckets.get(i, [0, 0])]
        ],
    }


# --- the bot: containment and hand-off reasons ------------------------------------------


def _bot_conversations(period: Period) -> Any:
    """Conversations whose first bot reply is in the period: (conversation_id, first_at)."""
    earlier = BotReply.__table__.alias("earlier")
    return (
        select(
            BotReply.conversation_id.label("conversation_id"),
            func.min(BotReply.created_at).label("first_at"),
        )
        .where(
            period.contains(BotReply.created_at),
            ~exists().where(
                earlier.c.conversation_id == BotReply.conversation_id,
                earlier.c.created_at < period.start,
            ),
        )
        .group_by(BotReply.conversation_id)
        .subquery("bot_conversations_in_period")
    )


def _contained(conversation_id: Any) -> ColumnElement[bool]:
    """The bot answered and nobody took over."""
    reply = BotReply.__table__.alias("reply")
    answered = exists().where(reply.c.conversation_id == conversation_id, reply.c.kind == "answer")
    handed = exists().where(reply.c.conversation_id == conversation_id, reply.c.kind == "handoff")
    agent = exists().where(
        Message.conversation_id == conversation_id,
        Message.direction == Direction.OUTBOUND,
        Message.author_kind == AuthorKind.AGENT,
        Message.private.is_(False),
    )
    return and_(answered, not_(handed), not_(agent))


async def containment(session: AsyncSession, period: Period) -> dict[str, Any]:
    conversations = _bot_conversations(period)
    c = conversations.c
    flagged = select(
        period.bucket(c.first_at).label("b"),
        case((_contained(c.conversation_id), 1), else_=0).label("contained"),
    ).subquery("flagged")
    rows = await session.execute(
        select(flagged.c.b, func.count(), func.sum(flagged.c.contained)).group_by(flagged.c.b)
    )
    found = {int(b): (int(n), int(k or 0)) for b, n, k in rows}
    total = sum(n for n, _ in found.values())
    contained = sum(k for _, k in found.values())

    def entry(n: int, k: int) -> dict[str, Any]:
        return {"conversations": n, "contained": k, "handed_off": n - k, "rate": _rate(k, n)}

    return {
        "total": entry(total, contained),
        "series": [
            {"label": label, **entry(*found.get(i, (0, 0)))}
            for i, label in enumerate(period.labels)
        ],
    }


def _handoffs(period: Period) -> Any:
    """Every hand-off in the period: (reason, at, conversation_id)."""
    return union_all(
        select(
            BotReply.reason.label("reason"),
            BotReply.created_at.label("at"),
            BotReply.conversation_id.label("conversation_id"),
        ).where(BotReply.kind == "handoff", period.contains(BotReply.created_at)),
        select(
            BotConversation.handoff_reason.label("reason"),
            BotConversation.handed_off_at.label("at"),
            BotConversation.conversation_id.label("conversation_id"),
        ).where(
            BotConversation.handoff_reason == "agent_replied",
            period.contains(BotConversation.handed_off_at),
        ),
    ).subquery("handoffs")


async def handoff_reasons(session: AsyncSession, period: Period) -> dict[str, Any]:
    handoffs = _handoffs(period)
    reason = func.coalesce(handoffs.c.reason, "unknown").label("reason")
    rows = await session.execute(
        select(reason, func.count()).group_by(reason).order_by(func.count().desc(), reason)
    )
    reasons = [{"reason": r, "count": int(n)} for r, n in rows]
    return {"total": {"count": sum(r["count"] for r in reasons)}, "reasons": reasons}


async def run_report(
    session: AsyncSession, report: Report, period: Period, scope: Scope
) -> dict[str, Any]:
    if report == Report.FIRST_RESPONSE:
        data = await first_response(session, period, scope)
    elif report == Report.RESOLUTION:
        data = await resolution(session, period, scope)
    elif report == Report.SLA:
        data = await sla(session, period, scope)
    elif report == Report.CSAT:
        data = await csat(session, period, scope)
    elif report == Report.CONTAINMENT:
        data = await containment(session, period)
    else:
        data = await handoff_reasons(session, period)
    return {
        "report": report.value,
        "period": {
            "name": period.name,
            "tz": period.zone,
            "from": period.start.isoformat(),
            "to": period.end.isoformat(),
        },
        **data,
    }


# --- drill-down: the tickets behind a number --------------------------------------------

# What each report's numbers may be drilled into ("" is the report's whole count).
DRILL_PARTS: dict[Report, frozenset[str]] = {
    Report.FIRST_RESPONSE: frozenset({"", "unanswered"}),
    Report.RESOLUTION: frozenset({""}),
    Report.SLA: frozenset({"", "hit", "missed"}),
    Report.CSAT: frozenset({"", "1", "2", "3", "4", "5"}),
    Report.CONTAINMENT: frozenset({"", "handed_off"}),
    Report.HANDOFF_REASONS: frozenset({""}),
}


def _tickets_of_conversations(conversation_ids: Any) -> ColumnElement[bool]:
    return Ticket.id.in_(
        select(TicketConversation.ticket_id).where(
            TicketConversation.conversation_id.in_(conversation_ids)
        )
    )


def drill_condition(
    report: Report,
    period: Period,
    *,
    bucket: int | None = None,
    part: str = "",
    reason: str | None = None,
    metric: str | None = None,
) -> ColumnElement[bool]:
    """Which tickets are behind one number: a WHERE clause on `Ticket` (combine it with
    the caller's scope)."""
    if part not in DRILL_PARTS[report]:
        raise InvalidInput(
            f"part must be one of {sorted(DRILL_PARTS[report])}", code="invalid_part"
        )
    start, end = period.bucket_range(bucket)

    def within(column: Any) -> ColumnElement[bool]:
        return and_(column >= start, column < end)

    if report == Report.FIRST_RESPONSE:
        replied = first_reply_at()
        has = replied.is_(None) if part == "unanswered" else replied.is_not(None)
        return and_(within(Ticket.created_at), has)
    if report == Report.RESOLUTION:
        return within(Ticket.solved_at)
    if report == Report.SLA:
        statuses = [part] if part else [ClockStatus.HIT.value, ClockStatus.MISSED.value]
        clocks = select(SlaClock.ticket_id).where(
            SlaClock.status.in_(statuses), within(SlaClock.due_at)
        )
        if metric is not None:
            clocks = clocks.where(SlaClock.metric == metric)
        return Ticket.id.in_(clocks)
    if report == Report.CSAT:
        surveys = select(CsatSurvey.ticket_id).where(
            CsatSurvey.rating.is_not(None), within(CsatSurvey.rated_at)
        )
        if part:
            surveys = surveys.where(CsatSurvey.rating == int(part))
        return Ticket.id.in_(surveys)
    if report == Report.CONTAINMENT:
        conversations = _bot_conversations(period)
        c = conversations.c
        chosen = select(c.conversation_id).where(c.first_at >= start, c.first_at < end)
        if part == "handed_off":
            chosen = chosen.where(not_(_contained(c.conversation_id)))
        return _tickets_of_conversations(chosen)
    handoffs = _handoffs(period)
    chosen = select(handoffs.c.conversation_id).where(handoffs.c.at >= start, handoffs.c.at < end)
    if reason is not None:
        chosen = chosen.where(func.coalesce(handoffs.c.reason, "unknown") == reason)
    return _tickets_of_conversations(chosen)


def bucket_index(raw: str | None, period: Period) -> int | None:
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 4:
        raise InvalidInput("bucket must be a whole number", code="invalid_bucket")
    period.bucket_range(int(raw))
    return int(raw)
