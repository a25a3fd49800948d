"""Business-hours arithmetic: weekends, holidays, both DST changes, overnight hours, 24/7."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickets.business_hours import (
    WEEKDAYS,
    BusinessCalendar,
    CalendarInvalid,
    add_business_minutes,
    add_business_time,
    business_minutes_between,
    business_time_between,
    calendar_from,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
OFFICE = {d: [["09:00", "17:00"]] for d in WEEKDAYS[:5]}


def office(zone: str = "Europe/Berlin", holidays: tuple[str, ...] = ()) -> BusinessCalendar:
    return calendar_from(zone, OFFICE, list(holidays))


def local(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone)  # type: ignore[misc]


def test_minutes_within_one_day_land_the_same_day() -> None:
    start = local(BERLIN, 2026, 12, 1, 10, 0)  # a Tuesday
    assert add_business_minutes(office(), start, 90) == local(BERLIN, 2026, 12, 1, 11, 30)


def test_friday_afternoon_runs_over_the_weekend_to_monday() -> None:
    start = local(BERLIN, 2026, 12, 4, 16, 0)  # Friday 16:00
    due = add_business_minutes(office(), start, 120)
    assert due == local(BERLIN, 2026, 12, 7, 10, 0)  # Monday 10:00
    assert business_minutes_between(office(), start, due) == 120


def test_a_start_outside_hours_waits_for_the_next_opening() -> None:
    saturday = local(BERLIN, 2026, 12, 5, 12, 0)
    assert add_business_minutes(office(), saturday, 1) == local(BERLIN, 2026, 12, 7, 9, 1)
    assert business_minutes_between(office(), saturday, local(BERLIN, 2026, 12, 7, 8, 0)) == 0


def test_holidays_are_skipped() -> None:
    calendar = office(holidays=("2026-12-24", "2026-12-25"))
    start = local(BERLIN, 2026, 12, 23, 16, 0)  # Wednesday; Thu and Fri are holidays
    assert add_business_minutes(calendar, start, 120) == local(BERLIN, 2026, 12, 28, 10, 0)
    # Without the holidays it would be Thursday.
    assert add_business_minutes(office(), start, 120) == local(BERLIN, 2026, 12, 24, 10, 0)


def test_office_day_is_eight_hours_on_both_berlin_dst_changes() -> None:
    # Clocks spring forward on Sunday 29 March 2026 and fall back on 25 October 2026;
    # a Saturday-to-Monday office (06:00–22:00 Sunday) keeps 16 real hours either way.
    calendar = calendar_from("Europe/Berlin", {"sunday": [["06:00", "22:00"]]})
    for day in (29, 25):
        month = 3 if day == 29 else 10
        start = local(BERLIN, 2026, month, day - 1, 12, 0)
        end = local(BERLIN, 2026, month, day + 1, 12, 0)
        assert business_minutes_between(calendar, start, end) == 16 * 60


def test_a_whole_day_is_23_and_25_hours_on_dst_days() -> None:
    calendar = calendar_from("Europe/Berlin", {"sunday": [["00:00", "24:00"]]})
    spring = business_minutes_between(
        calendar, local(BERLIN, 2026, 3, 28, 12, 0), local(BERLIN, 2026, 3, 30, 12, 0)
    )
    autumn = business_minutes_between(
        calendar, local(BERLIN, 2026, 10, 24, 12, 0), local(BERLIN, 2026, 10, 26, 12, 0)
    )
    assert (spring, autumn) == (23 * 60, 25 * 60)


def test_new_york_dst_change_moves_the_utc_opening() -> None:
    # New York springs forward on 8 March 2026: Friday opens 14:00 UTC, Monday 13:00 UTC.
    calendar = office("America/New_York")
    friday = local(NEW_YORK, 2026, 3, 6, 16, 0)
    due = add_business_minutes(calendar, friday, 120)
    assert due.astimezone(UTC) == datetime(2026, 3, 9, 14, 0, tzinfo=UTC)
    assert due == local(NEW_YORK, 2026, 3, 9, 10, 0)


def test_hours_inside_the_spring_gap_count_once() -> None:
    # 01:00–02:30 and 02:30–04:00 local on the spring-forward night: 02:00–03:00 does
    # not exist, so 2 real hours, not 3, and nothing counted twice.
    calendar = calendar_from("Europe/Berlin", {"sunday": [["01:00", "02:30"], ["02:30", "04:00"]]})
    start, end = local(BERLIN, 2026, 3, 28, 12, 0), local(BERLIN, 2026, 3, 30, 12, 0)
    assert business_minutes_between(calendar, start, end) == 120


def test_overnight_hours_span_midnight() -> None:
    night = calendar_from("Europe/Berlin", {"monday": [["22:00", "06:00"]]})
    start = local(BERLIN, 2026, 11, 30, 23, 0)  # Monday 23:00
    assert add_business_minutes(night, start, 300) == local(BERLIN, 2026, 12, 1, 4, 0)
    # Past Tuesday 06:00 the next shift is Monday 22:00 a week later.
    assert add_business_minutes(night, start, 480) == local(BERLIN, 2026, 12, 7, 23, 0)


def test_always_open_calendar_is_wall_clock_time() -> None:
    start = datetime(2026, 3, 28, 22, 17, tzinfo=UTC)
    calendar = BusinessCalendar.always()
    assert add_business_minutes(calendar, start, 5000) == start + timedelta(minutes=5000)
    assert business_minutes_between(calendar, start, start + timedelta(days=3)) == 3 * 1440


@pytest.mark.parametrize(
    ("zone", "hours", "holidays", "message"),
    [
        ("Mars/Olympus", OFFICE, [], "unknown time zone"),
        ("../../etc/passwd", OFFICE, [], "unknown time zone"),
        ("Europe/Berlin", {"monday": [["09:00", "25:00"]]}, [], "out of range"),
        ("Europe/Berlin", {"monday": [["9:00", "17:00"]]}, [], "HH:MM"),
        ("Europe/Berlin", {"monday": [["09:60", "17:00"]]}, [], "out of range"),
        ("Europe/Berlin", {"monday": [["09:00", "09:00"]]}, [], "empty"),
        ("Europe/Berlin", {"monday": [["09:00", "12:00"], ["11:00", "13:00"]]}, [], "overlap"),
        (
            "Europe/Berlin",
            {"sunday": [["22:00", "03:00"]], "monday": [["02:00", "05:00"]]},
            [],
            "overlap",
        ),
        ("Europe/Berlin", {"funday": [["09:00", "17:00"]]}, [], "unknown weekday"),
        ("Europe/Berlin", {}, [], "at least one interval"),
        ("Europe/Berlin", OFFICE, ["2026-02-30"], "YYYY-MM-DD"),
    ],
)
def test_bad_calendars_are_refused_with_the_reason(
    zone: str, hours: object, holidays: object, message: str
) -> None:
    with pytest.raises(CalendarInvalid, match=message):
        calendar_from(zone, hours, holidays)


CALENDARS = [
    office(),
    office("America/New_York", ("2026-07-03",)),
    calendar_from(
        "Europe/Berlin", {"monday": [["22:00", "06:00"]], "sunday": [["00:00", "24:00"]]}
    ),
    calendar_from(
        "America/New_York", {d: [["00:00", "02:30"], ["02:30", "03:30"]] for d in WEEKDAYS}
    ),
    BusinessCalendar.always(),
]
INSTANTS = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=300, deadline=None)
@given(
    calendar=st.sampled_from(CALENDARS),
    start=INSTANTS,
    minutes=st.integers(min_value=0, max_value=20 * 24 * 60),
)
def test_adding_then_measuring_gives_back_the_minutes(
    calendar: BusinessCalendar, start: datetime, minutes: int
) -> None:
    due = add_business_minutes(calendar, start, minutes)
    assert due >= start
    assert business_time_between(calendar, start, due) == timedelta(minutes=minutes)


@settings(max_examples=200, deadline=None)
@given(
    calendar=st.sampled_from(CALENDARS),
    start=INSTANTS,
    a=st.integers(min_value=0, max_value=10_000),
    b=st.integers(min_value=0, max_value=10_000),
    later=st.integers(min_value=0, max_value=10_000),
)
def test_due_times_are_monotonic(
    calendar: BusinessCalendar, start: datetime, a: int, b: int, later: int
) -> None:
    small, big = sorted((a, b))
    assert add_business_minutes(calendar, start, small) <= add_business_minutes(
        calendar, start, big
    )
    moved = start + timedelta(minutes=later)
    assert add_business_time(calendar, start, timedelta(minutes=a)) <= add_business_time(
        calendar, moved, timedelta(minutes=a)
    )
