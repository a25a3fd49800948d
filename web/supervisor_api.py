"""REST routes for the supervisor dashboard and reports, under /api/v1.

Supervisors and admins only (`web.access.access_reader`: agents get 403, non-staff learn
nothing); every ticket condition is combined with `visible_tickets`, so scoping stays
in one place even for readers. Routes:

- `GET /supervisor/overview`: queues and agents now (`tickets.report_floor`);
- `GET /supervisor/tickets` (and `.csv`): the tickets behind a number — a queue's
  waiting / open / breached, an agent's current tickets, or a report's bucket
  (`tickets.reports.drill_condition`), newest first with a cursor;
- `POST /supervisor/tickets/{id}/assign`: reassign, refusing (409 `over_capacity`) an
  agent at capacity unless `over_capacity` is confirmed;
- `GET /reports/{name}` (and `.csv`): one report over a period in a time zone.

CSV is streamed page by page, UTF-8 with a BOM (Excel then reads Chinese correctly),
with a header row; a text cell starting with = + - @ TAB or CR is prefixed with ' so a
spreadsheet never runs it as a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from routing.models import Queue
from switchboard.appkeys import DB
from switchboard.db import utcnow
from switchboard.errors import Conflict, InvalidInput, NotFound
from switchboard.models import User
from tickets.checks import TicketChanges
from tickets.listing import Order, decode_cursor, encode_cursor
from tickets.models import Ticket
from tickets.report_floor import agent_load, floor, state_condition
from tickets.reports import (
    Period,
    Report,
    Scope,
    bucket_index,
    check_zone,
    drill_condition,
    make_period,
    parse_queue,
    run_report,
)
from tickets.service import do_update_ticket, full_view, lock_profile, ticket_views
from tickets.sla_models import SlaMetric
from web.access import access_reader, access_ticket_by_id, row_id_from, visible_tickets
from web.bodies import read_json_object

PERIOD_PARAMS = frozenset({"period", "from", "to", "tz", "queue_id"})
TICKET_PARAMS = PERIOD_PARAMS | {
    "state",
    "assignee_id",
    "report",
    "bucket",
    "part",
    "reason",
    "metric",
    "cursor",
    "limit",
}
STATES = frozenset({"waiting", "open", "breached"})
MAX_LIMIT = 200
CSV_PAGE = 500
# What a spreadsheet may read as the start of a formula: the ASCII signs, their
# full-width forms (an IME types those), tab and carriage return.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")


# --- query parameters --------------------------------------------------------------------


def _check_known(request: web.Request, known: frozenset[str]) -> None:
    unknown = sorted(set(request.query) - known)
    if unknown:
        raise InvalidInput(f"unknown parameter {unknown[0][:40]!r}", code="unknown_parameter")
    if any(len(request.query.getall(name)) > 1 for name in request.query):
        raise InvalidInput("give each parameter once")


def _period(request: web.Request, user: User) -> Period:
    query = request.query
    return make_period(
        query.get("period") or "7d",
        query.get("tz") or user.timezone or "UTC",
        utcnow(),
        query.get("from"),
        query.get("to"),
    )


def _scope(request: web.Request, user: User) -> Scope:
    return Scope(visible_tickets(user), parse_queue(request.query.get("queue_id")))


def _report(raw: str) -> Report:
    try:
        return Report(raw)
    except ValueError:
        raise NotFound("no such report") from None


def _ticket_conditions(request: web.Request, user: User) -> list[ColumnElement[bool]]:
    """The conditions of the ticket list from its query (400 naming a bad one)."""
    query = request.query
    where = _scope(request, user).tickets()
    state = query.get("state")
    if state is not None:
        if state not in STATES:
            raise InvalidInput("state must be waiting, open or breached", code="invalid_state")
        where.append(state_condition(state))
    raw_assignee = query.get("assignee_id")
    if raw_assignee is not None:
        assignee = row_id_from(raw_assignee)
        if assignee is None:
            raise InvalidInput("assignee_id must be a user id", code="invalid_assignee")
        where.append(Ticket.assignee_user_id == assignee)
        where.append(state_condition("open"))
    if "report" in query:
        report = _report(query["report"])
        period = _period(request, user)
        metric = query.get("metric")
        if metric is not None and metric not in {m.value for m in SlaMetric}:
            raise InvalidInput("metric is not an SLA metric", code="invalid_metric")
        reason = query.get("reason")
        if reason is not None and not 0 < len(reason) <= 40:
            raise InvalidInput("reason is 1 to 40 characters", code="invalid_reason")
        where.append(
            drill_condition(
                report,
                period,
                bucket=bucket_index(query.get("bucket"), period),
                part=query.get("part", ""),
                reason=reason,
                metric=metric,
            )
        )
    elif any(name in query for name in ("bucket", "part", "reason", "metric")):
        raise InvalidInput("bucket, part, reason and metric go with report", code="invalid_filter")
    return where


def _limit(request: web.Request, default: int = 50) -> int:
    raw = request.query.get("limit", str(default))
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


# --- routes: overview, tickets, assignment ---------------------------------------------


async def overview_route(request: web.Request) -> web.Response:
    user = access_reader(request, "the dashboard")
    async with request.config_dict[DB].reading() as session:
        data = await floor(session, visible_tickets(user), utcnow())
    return web.json_response(data)


async def _page(
    session: AsyncSession, where: Sequence[ColumnElement[bool]], after: int | None, limit: int
) -> list[Ticket]:
    query = select(Ticket).where(*where)
    if after is not None:
        query = query.where(Ticket.id < after)
    return list((await session.execute(query.order_by(Ticket.id.desc()).limit(limit))).scalars())


async def tickets_route(request: web.Request) -> web.Response:
    user = access_reader(request, "the dashboard")
    _check_known(request, TICKET_PARAMS)
    where = _ticket_conditions(request, user)
    limit = _limit(request)
    cursor = request.query.get("cursor")
    after = decode_cursor(cursor, Order.NEWEST) if cursor else None
    async with request.config_dict[DB].reading() as session:
        rows = await _page(session, where, after, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        views = await ticket_views(session, rows)
    next_cursor = encode_cursor(Order.NEWEST, rows[-1].id) if more and rows else None
    return web.json_response({"tickets": views, "next_cursor": next_cursor})


async def assign_route(request: web.Request) -> web.Response:
    """Reassign a ticket (or unassign: `assignee_id` null). An agent at or over capacity
    is refused with 409 `over_capacity` unless the body says `over_capacity: true`."""
    user = access_reader(request, "the dashboard")
    raw_id = request.match_info["id"]
    data = await read_json_object(request)
    unknown = sorted(set(data) - {"assignee_id", "over_capacity"})
    if unknown or "assignee_id" not in data:
        raise InvalidInput("give assignee_id (and over_capacity)", code="invalid_body")
    raw_assignee = data["assignee_id"]
    assignee = None if raw_assignee is None else row_id_from(raw_assignee)
    if raw_assignee is not None and (assignee is None or isinstance(raw_assignee, str)):
        raise InvalidInput("assignee_id must be a user id or null", code="invalid_assignee")
    confirmed = data.get("over_capacity", False)
    if not isinstance(confirmed, bool):
        raise InvalidInput("over_capacity must be true or false", code="invalid_body")

    async def write(session: AsyncSession) -> dict[str, Any]:
        ticket = await access_ticket_by_id(session, user, raw_id)
        if assignee is not None and assignee != ticket.assignee_user_id:
            # The assigner's lock: a routing pass counting this agent waits for us.
            await lock_profile(session, assignee)
            load, capacity = await agent_load(session, assignee)
            if capacity is not None and load >= capacity and not confirmed:
                person = await session.get(User, assignee)
                name = person.name if person is not None else f"user {assignee}"
                raise Conflict(
                    f"{name} is at capacity ({load} of {capacity} tickets)",
                    code="over_capacity",
                )
        changed = await do_update_ticket(
            session,
            ticket.id,
            TicketChanges(assignee_user_id=assignee),
            actor=f"agent:{user.id}",
            by=user,
        )
        return await full_view(session, changed)

    return web.json_response({"ticket": await request.config_dict[DB].run(write)})


# --- reports ---------------------------------------------------------------------------


async def report_route(request: web.Request) -> web.Response:
    user = access_reader(request, "reports")
    report = _report(request.match_info["name"])
    _check_known(request, PERIOD_PARAMS)
    period, scope = _period(request, user), _scope(request, user)
    async with request.config_dict[DB].reading() as session:
        data = await run_report(session, report, period, scope)
    return web.json_response(data)


# --- CSV -------------------------------------------------------------------------------


def csv_cell(value: Any) -> str:
    """A cell as text; text that a spreadsheet would run as a formula gets a leading '."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    # Leading spaces do not stop a spreadsheet from reading " =1+1" as a formula.
    return "'" + text if text.lstrip(" \u3000").startswith(FORMULA_STARTS) else text


def csv_chunk(rows: Iterable[Sequence[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return out.getvalue().encode("utf-8")


async def stream_csv(
    request: web.Request, filename: str, chunks: AsyncIterator[list[Sequence[Any]]]
) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        }
    )
    await response.prepare(request)
    await response.write("\ufeff".encode())
    async for rows in chunks:
        await response.write(csv_chunk(rows))
    await response.write_eof()
    return response


def _local(value: str | None, zone: ZoneInfo) -> str:
    if not value:
        return ""
    return datetime.fromisoformat(value).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


async def tickets_csv_route(request: web.Request) -> web.StreamResponse:
    user = access_reader(request, "the dashboard")
    _check_known(request, TICKET_PARAMS - {"cursor", "limit"})
    where = _ticket_conditions(request, user)
    zone_name = request.query.get("tz") or user.timezone or "UTC"
    zone = check_zone(zone_name)
    db = request.config_dict[DB]
    async with db.reading() as session:
        queues = dict((await session.execute(select(Queue.id, Queue.name))).all())
        people = dict((await session.execute(select(User.id, User.name))).all())

    async def chunks() -> AsyncIterator[list[Sequence[Any]]]:
        yield [
            (
                "id",
                "subject",
                "status",
                "priority",
                "queue",
                "assignee",
                "customer_id",
                "tags",
                "reason",
                f"created ({zone_name})",
                f"solved ({zone_name})",
                f"first response due ({zone_name})",
                f"resolution due ({zone_name})",
                "sla breached",
            )
        ]
        after: int | None = None
        while True:
            # A short read per page: a long export holds no transaction open.
            async with db.reading() as session:
                rows = await _page(session, where, after, CSV_PAGE)
                views = await ticket_views(session, rows)
            if not rows:
                return
            after = rows[-1].id
            yield [
                (
                    v["id"],
                    v["subject"],
                    v["status"],
                    v["priority"],
                    queues.get(v["queue_id"], ""),
                    people.get(v["assignee_id"], ""),
                    v["customer_id"],
                    " ".join(v["tags"]),
                    v["reason"],
                    _local(v["created_at"], zone),
                    _local(v["solved_at"], zone),
                    _local(v["first_response_due_at"], zone),
                    _local(v["resolution_due_at"], zone),
                    any(c["breached_at"] for c in v["sla"]),
                )
                for v in views
            ]
            if len(rows) < CSV_PAGE:
                return

    stamp = utcnow().astimezone(zone).strftime("%Y%m%d-%H%M")
    return await stream_csv(request, f"tickets-{stamp}.csv", chunks())


def report_rows(data: dict[str, Any]) -> list[Sequence[Any]]:
    """A report as CSV rows: a header, then one row per bucket (or per reason)."""
    report = data["report"]
    if report == Report.HANDOFF_REASONS:
        return [("reason", "count"), *[(r["reason"], r["count"]) for r in data["reasons"]]]
    series = data["series"]
    if report in (Report.FIRST_RESPONSE, Report.RESOLUTION):
        columns = ["count", "average", "median", "p90"]
        header = ["period", "count", "average (s)", "median (s)", "p90 (s)"]
    elif report == Report.SLA:
        columns = ["hit", "missed", "rate"]
        header = ["period", "hit", "missed", "hit rate (%)"]
    elif report == Report.CSAT:
        columns = ["count", "average"]
        header = ["period", "ratings", "average"]
    else:
        columns = ["conversations", "contained", "handed_off", "rate"]
        header = ["period", "bot conversations", "contained", "handed off", "containment (%)"]
    rows: list[Sequence[Any]] = [header]
    rows += [(s["label"], *[s[c] for c in columns]) for s in series]
    rows.append(("total", *[data["total"].get(c) for c in columns]))
    if report == Report.CSAT:
        rows += [(f"rating {r}", n) for r, n in data["distribution"].items()]
    return rows


async def report_csv_route(request: web.Request) -> web.StreamResponse:
    user = access_reader(request, "reports")
    report = _report(request.match_info["name"])
    _check_known(request, PERIOD_PARAMS)
    period, scope = _period(request, user), _scope(request, user)
    async with request.config_dict[DB].reading() as session:
        data = await run_report(session, report, period, scope)

    async def chunks() -> AsyncIterator[list[Sequence[Any]]]:
        yield report_rows(data)

    zone = check_zone(period.zone)
    first = period.start.astimezone(zone).date().isoformat()
    last = (period.end - timedelta(seconds=1)).astimezone(zone).date().isoformat()
    name = f"{report.value}-{first}" + (f"-{last}" if last != first else "")
    return await stream_csv(request, f"{name}.csv", chunks())


def setup(app: web.Application) -> None:
    app.router.add_get("/supervisor/overview", overview_route)
    app.router.add_get("/supervisor/tickets", tickets_route)
    app.router.add_get("/supervisor/tickets.csv", tickets_csv_route)
    app.router.add_post("/supervisor/tickets/{id}/assign", assign_route)
    # The CSV route first: "{name}" alone would also match "sla.csv".
    app.router.add_get("/reports/{name}.csv", report_csv_route)
    app.router.add_get("/reports/{name}", report_route)
