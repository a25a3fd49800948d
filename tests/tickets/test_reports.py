"""Report arithmetic on known data (see report_support), on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, true

from switchboard.errors import InvalidInput
from switchboard.tx import Database
from tests.tickets.report_support import FIRST_DAY, LAST_DAY, NOW, ZONE, Known, arrange, at
from tickets.models import Ticket
from tickets.reports import Period, Report, Scope, drill_condition, make_period, run_report


def period() -> Period:
    return make_period("custom", ZONE, NOW, FIRST_DAY, LAST_DAY)


async def report(db: Database, which: Report, scope: Scope | None = None) -> dict[str, Any]:
    async with db.reading() as session:
        return await run_report(session, which, period(), scope or Scope(true()))


async def drill(db: Database, which: Report, **kw: Any) -> set[int]:
    async with db.reading() as session:
        rows = await session.execute(
            select(Ticket.id).where(drill_condition(which, period(), **kw))
        )
        return set(rows.scalars())


@pytest.fixture
async def known(db: Database) -> Known:
    return await arrange(db)


def test_period_is_local_days_in_utc() -> None:
    chosen = period()
    assert chosen.bounds == (at(1, 16), at(2, 16), at(3, 16))
    assert chosen.labels == ("2026-11-02", "2026-11-03")
    # A DST day in Berlin is 25 hours long: today's hours are 25 buckets.
    autumn = make_period("today", "Europe/Berlin", at(25, 12).replace(month=10))
    assert len(autumn.labels) == 25
    assert len(make_period("7d", "UTC", NOW).labels) == 7
    with pytest.raises(InvalidInput):
        make_period("custom", ZONE, NOW, "2026-01-01", "2026-12-31")
    with pytest.raises(InvalidInput):
        make_period("custom", "Mars/Olympus", NOW, FIRST_DAY, LAST_DAY)
    with pytest.raises(InvalidInput):
        make_period("forever", ZONE, NOW)


async def test_first_response(db: Database, known: Known) -> None:
    data = await report(db, Report.FIRST_RESPONSE)
    # Replies after 60 and 120 s (day 1), 300 s (day 2); T4 has only a note; T5 is older.
    assert data["total"] == {
        "count": 3,
        "average": 160.0,
        "median": 120.0,
        "p90": 300.0,
        "unanswered": 1,
    }
    day1, day2 = data["series"]
    assert (day1["label"], day1["count"], day1["median"], day1["p90"]) == (
        "2026-11-02",
        2,
        60.0,
        120.0,
    )
    assert (day2["count"], day2["median"], day2["p90"]) == (1, 300.0, 300.0)
    assert await drill(db, Report.FIRST_RESPONSE, bucket=0) == {
        known.tickets["t1"],
        known.tickets["t2"],
    }
    assert await drill(db, Report.FIRST_RESPONSE, part="unanswered") == {known.tickets["t4"]}


async def test_resolution(db: Database, known: Known) -> None:
    data = await report(db, Report.RESOLUTION)
    # Solved inside the period: T1 (1 h), T2 (2 h) on day 1, T5 (26 h, opened before) on day 2.
    assert data["total"] == {"count": 3, "average": 34800.0, "median": 7200.0, "p90": 93600.0}
    assert [s["count"] for s in data["series"]] == [2, 1]
    assert data["series"][0]["median"] == 3600.0
    assert await drill(db, Report.RESOLUTION, bucket=1) == {known.tickets["t5"]}


async def test_sla_hit_rate(db: Database, known: Known) -> None:
    data = await report(db, Report.SLA)
    # Finished clocks due in the period: hit, missed (day 1), hit (day 2); T5's is older
    # and T3's first response is still running.
    assert data["total"] == {"hit": 2, "missed": 1, "rate": 66.7}
    assert data["by_metric"]["first_response"] == {"hit": 1, "missed": 1, "rate": 50.0}
    assert data["by_metric"]["resolution"] == {"hit": 1, "missed": 0, "rate": 100.0}
    assert [s["rate"] for s in data["series"]] == [50.0, 100.0]
    assert await drill(db, Report.SLA, part="missed") == {known.tickets["t2"]}


async def test_csat(db: Database, known: Known) -> None:
    data = await report(db, Report.CSAT)
    assert data["total"] == {"count": 3, "average": 3.67, "satisfied_percent": 66.7}
    assert data["distribution"] == {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1}
    assert [(s["count"], s["average"]) for s in data["series"]] == [(1, 5.0), (2, 3.0)]
    assert await drill(db, Report.CSAT, part="5") == {known.tickets["t1"]}


async def test_containment_and_handoff_reasons(db: Database, known: Known) -> None:
    data = await report(db, Report.CONTAINMENT)
    # C6, C7 start on day 1 (C6 contained), C8 and C10 on day 2 (neither); C9 is older.
    assert data["total"] == {"conversations": 4, "contained": 1, "handed_off": 3, "rate": 25.0}
    assert [(s["conversations"], s["contained"]) for s in data["series"]] == [(2, 1), (2, 0)]
    reasons = await report(db, Report.HANDOFF_REASONS)
    assert reasons["reasons"] == [
        {"reason": "agent_replied", "count": 1},
        {"reason": "customer_asked", "count": 1},
        {"reason": "out_of_scope", "count": 1},
    ]
    assert reasons["total"] == {"count": 3}
    assert await drill(db, Report.HANDOFF_REASONS, reason="out_of_scope") == {known.tickets["c7"]}
    assert await drill(db, Report.CONTAINMENT, part="handed_off") == {known.tickets["c7"]}


async def test_queue_scope(db: Database, known: Known) -> None:
    scoped = Scope(true(), queue_id=known.queue_id)
    data = await report(db, Report.FIRST_RESPONSE, scoped)
    assert (data["total"]["count"], data["total"]["median"]) == (1, 60.0)
    none = await report(db, Report.CSAT, Scope(true(), queue_id=0))
    assert none["distribution"] == {"1": 0, "2": 1, "3": 0, "4": 1, "5": 0}
