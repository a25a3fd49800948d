"""The CSAT report: answered surveys with filters and a cursor, and their aggregate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.errors import InvalidInput
from tickets.access import ticket_id_from
from tickets.csat_models import CsatSurvey
from tickets.csat_views import survey_view

MAX_LIMIT = 200


@dataclass(frozen=True)
class CsatFilters:
    since: datetime | None = None  # rated at or after
    until: datetime | None = None  # rated before
    agent_id: int | None = None
    inbox_id: int | None = None
    ticket_id: int | None = None


def _when(name: str, raw: str | None) -> datetime | None:
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be an ISO 8601 time", code="invalid_filter") from None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        # Stored times are UTC; 0001-01-01T00:00+01:00 has no UTC time (OverflowError).
        return value.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(
            f"{name} is outside the supported range of times", code="invalid_filter"
        ) from None


def _row_id(name: str, raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    found = ticket_id_from(raw)
    if found is None:
        raise InvalidInput(f"{name} must be a positive whole number", code="invalid_filter")
    return found


def check_query(query: Any) -> tuple[CsatFilters, int | None, int]:
    """(filters, cursor, limit) from the query string; 400 naming a bad one."""
    known = {"from", "to", "agent_id", "inbox_id", "ticket_id", "cursor", "limit"}
    unknown = sorted(set(query) - known)
    if unknown:
        raise InvalidInput(f"unknown filter {unknown[0]!r}", code="invalid_filter")
    filters = CsatFilters(
        since=_when("from", query.get("from")),
        until=_when("to", query.get("to")),
        agent_id=_row_id("agent_id", query.get("agent_id")),
        inbox_id=_row_id("inbox_id", query.get("inbox_id")),
        ticket_id=_row_id("ticket_id", query.get("ticket_id")),
    )
    cursor = _row_id("cursor", query.get("cursor"))
    raw_limit = query.get("limit") or "50"
    if not (raw_limit.isascii() and raw_limit.isdigit()) or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise InvalidInput(f"limit must be 1 to {MAX_LIMIT}", code="invalid_filter")
    return filters, cursor, int(raw_limit)


def _where(filters: CsatFilters) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [CsatSurvey.rating.is_not(None)]
    if filters.since is not None:
        where.append(CsatSurvey.rated_at >= filters.since)
    if filters.until is not None:
        where.append(CsatSurvey.rated_at < filters.until)
    if filters.agent_id is not None:
        where.append(CsatSurvey.agent_user_id == filters.agent_id)
    if filters.inbox_id is not None:
        where.append(CsatSurvey.inbox_id == filters.inbox_id)
    if filters.ticket_id is not None:
        where.append(CsatSurvey.ticket_id == filters.ticket_id)
    return where


async def list_ratings(
    session: AsyncSession, filters: CsatFilters, cursor: int | None, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    """Answered surveys, newest survey first; (page, cursor of the next page or None)."""
    where = _where(filters)
    if cursor is not None:
        where.append(CsatSurvey.id < cursor)
    rows = list(
        (
            await session.execute(
                select(CsatSurvey).where(*where).order_by(CsatSurvey.id.desc()).limit(limit + 1)
            )
        ).scalars()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return [survey_view(r) for r in rows], (rows[-1].id if more and rows else None)


async def summary(session: AsyncSession, filters: CsatFilters) -> dict[str, Any]:
    """count, average rating and the share of 4s and 5s (percent) over the filters."""
    count, average, satisfied = (
        await session.execute(
            select(
                func.count(CsatSurvey.id),
                func.avg(CsatSurvey.rating),
                func.sum(case((CsatSurvey.rating >= 4, 1), else_=0)),
            ).where(*_where(filters))
        )
    ).one()
    return {
        "count": int(count),
        "average": round(float(average), 2) if count else None,
        "satisfied_percent": round(100.0 * int(satisfied or 0) / count, 1) if count else None,
    }
