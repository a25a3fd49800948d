"""Business-hours arithmetic: pure functions over a weekly calendar in an IANA time zone.

A calendar gives, per weekday, intervals of local wall-clock time in minutes after
midnight. An interval whose end is not after its start runs past midnight into the next
day (Monday 22:00–06:00 ends Tuesday 06:00). A holiday (a local date) removes the
intervals that *start* on that date. Durations are real elapsed time: a 00:00–24:00 day
is 23 hours on the day clocks spring forward and 25 on the day they fall back, and a
09:00–17:00 day is 8 hours either way. Wall-clock times that do not exist (inside a
spring-forward gap) are read with the offset before the change, as `zoneinfo` does with
fold=0; spans that then overlap or turn empty are clipped, so business time is never
counted twice.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

MINUTES_PER_DAY = 24 * 60
# How far ahead a due time may lie: beyond this a calendar is treated as having no time.
HORIZON_DAYS = 366 * 20
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class NoBusinessTime(ValueError):
    """The calendar has no business time within the horizon."""


@dataclass(frozen=True)
class BusinessCalendar:
    zone: ZoneInfo
    # Seven entries, Monday first: (start, end) in minutes after local midnight, sorted.
    week: tuple[tuple[tuple[int, int], ...], ...]
    holidays: frozenset[date] = frozenset()

    @classmethod
    def always(cls) -> BusinessCalendar:
        """Every hour of every day (24/7), in UTC."""
        return cls(ZoneInfo("UTC"), tuple(((0, MINUTES_PER_DAY),) for _ in range(7)))


def _local(day: date, minute: int, zone: ZoneInfo) -> datetime:
    if minute >= MINUTES_PER_DAY:
        day, minute = day + timedelta(days=1), minute - MINUTES_PER_DAY
    wall = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=zone)
    return wall.astimezone(UTC)


def spans(calendar: BusinessCalendar, since: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Business spans [start, end) in UTC, in order, clipped to start at `since` or later.
    Raises `NoBusinessTime` after the horizon."""
    since = since.astimezone(UTC)
    # From the day before: its interval may run past midnight into `since`'s day.
    day = since.astimezone(calendar.zone).date() - timedelta(days=1)
    last_end = since
    for _ in range(HORIZON_DAYS):
        if day not in calendar.holidays:
            for start, end in calendar.week[day.weekday()]:
                if end <= start:
                    end += MINUTES_PER_DAY
                begin = max(_local(day, start, calendar.zone), last_end)
                finish = _local(day, end, calendar.zone)
                if finish > begin:
                    yield begin, finish
                    last_end = finish
        day += timedelta(days=1)
    raise NoBusinessTime("the calendar has no business time in the next 20 years")


def add_business_time(calendar: BusinessCalendar, start: datetime, amount: timedelta) -> datetime:
    """The instant when `amount` of business time has passed after `start`."""
    if amount <= timedelta(0):
        return start.astimezone(UTC)
    left = amount
    for begin, finish in spans(calendar, start):
        if left <= finish - begin:
            return begin + left
        left -= finish - begin
    raise AssertionError("unreachable: spans() raises at its horizon")


def business_time_between(calendar: BusinessCalendar, start: datetime, end: datetime) -> timedelta:
    """Business time in [start, end); zero if `end` is not after `start`."""
    total = timedelta(0)
    if end <= start:
        return total
    try:
        for begin, finish in spans(calendar, start):
            if begin >= end:
                break
            total += min(finish, end) - begin
    except NoBusinessTime:
        pass  # no business time left before the horizon: what was counted is all there is
    return total


def add_business_minutes(calendar: BusinessCalendar, start: datetime, minutes: int) -> datetime:
    return add_business_time(calendar, start, timedelta(minutes=minutes))


def business_minutes_between(calendar: BusinessCalendar, start: datetime, end: datetime) -> float:
    return business_time_between(calendar, start, end) / timedelta(minutes=1)


# --- reading a calendar from its stored (and API) form ----------------------------------


class CalendarInvalid(ValueError):
    """A calendar's hours, zone or holidays cannot be used; the message says why."""


def parse_clock(raw: object, *, end: bool) -> int:
    """'HH:MM' → minutes after midnight; '24:00' only as an end."""
    if not isinstance(raw, str) or len(raw) != 5 or raw[2] != ":":
        raise CalendarInvalid(f"time {raw!r} must be HH:MM")
    hh, mm = raw[:2], raw[3:]
    if not (hh.isascii() and hh.isdigit() and mm.isascii() and mm.isdigit()):
        raise CalendarInvalid(f"time {raw!r} must be HH:MM")
    minute = int(hh) * 60 + int(mm)
    if int(mm) > 59 or minute > MINUTES_PER_DAY or (minute == MINUTES_PER_DAY and not end):
        raise CalendarInvalid(f"time {raw!r} is out of range (00:00 to 24:00)")
    return minute


def _format_clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def parse_week(raw: object) -> tuple[tuple[tuple[int, int], ...], ...]:
    """{"monday": [["09:00", "17:00"], ...], ...} → the calendar's week, checked: times in
    range, no empty interval, no two intervals overlapping (across midnight and from
    Sunday into Monday too), at least one interval in the week."""
    if not isinstance(raw, dict):
        raise CalendarInvalid("hours must be an object keyed by weekday")
    unknown = sorted(str(k) for k in raw if k not in WEEKDAYS)
    if unknown:
        raise CalendarInvalid(f"unknown weekday {unknown[0]!r}; use {', '.join(WEEKDAYS)}")
    week: list[tuple[tuple[int, int], ...]] = []
    absolute: list[tuple[int, int, str]] = []
    for index, name in enumerate(WEEKDAYS):
        intervals = raw.get(name, [])
        if not isinstance(intervals, list) or len(intervals) > 24:
            raise CalendarInvalid(f"{name} must be a list of at most 24 [start, end] pairs")
        day: list[tuple[int, int]] = []
        for pair in intervals:
            if not isinstance(pair, list) or len(pair) != 2:
                raise CalendarInvalid(f"{name}: each interval is a [start, end] pair")
            start, end = parse_clock(pair[0], end=False), parse_clock(pair[1], end=True)
            if start == end:
                raise CalendarInvalid(f"{name}: interval {pair[0]}–{pair[1]} is empty")
            if end == MINUTES_PER_DAY and start == 0:
                length = MINUTES_PER_DAY
            else:
                length = (end - start) % MINUTES_PER_DAY
            day.append((start, end))
            offset = index * MINUTES_PER_DAY + start
            absolute.append((offset, offset + length, f"{name} {pair[0]}–{pair[1]}"))
        week.append(tuple(sorted(day)))
    if not absolute:
        raise CalendarInvalid("hours must have at least one interval in the week")
    week_minutes = 7 * MINUTES_PER_DAY
    # Sunday's late hours run into Monday: compare against next week's copy as well.
    ordered = sorted(absolute + [(a + week_minutes, b + week_minutes, n) for a, b, n in absolute])
    for (_, end, first), (start, _, second) in itertools.pairwise(ordered):
        if start < end:
            raise CalendarInvalid(f"intervals overlap: {first} and {second}")
    return tuple(week)


def format_week(week: Sequence[Sequence[tuple[int, int]]]) -> dict[str, list[list[str]]]:
    return {
        WEEKDAYS[i]: [[_format_clock(s), _format_clock(e)] for s, e in day]
        for i, day in enumerate(week)
    }


def parse_zone(raw: object) -> ZoneInfo:
    from zoneinfo import ZoneInfoNotFoundError

    if not isinstance(raw, str) or not 0 < len(raw) <= 64 or not raw.isascii():
        raise CalendarInvalid("time_zone must be an IANA time zone name such as Europe/Berlin")
    # No path tricks: zoneinfo reads files named by the key.
    if raw.startswith("/") or ".." in raw or "\\" in raw or "\x00" in raw:
        raise CalendarInvalid(f"unknown time zone {raw!r}")
    try:
        return ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CalendarInvalid(f"unknown time zone {raw!r}") from None


def parse_holidays(raw: object) -> frozenset[date]:
    if not isinstance(raw, list) or len(raw) > 1000:
        raise CalendarInvalid("holidays must be a list of at most 1000 YYYY-MM-DD dates")
    days: set[date] = set()
    for item in raw:
        if not isinstance(item, str) or len(item) != 10:
            raise CalendarInvalid(f"holiday {item!r} must be a YYYY-MM-DD date")
        try:
            days.add(date.fromisoformat(item))
        except ValueError:
            raise CalendarInvalid(f"holiday {item!r} must be a YYYY-MM-DD date") from None
    return frozenset(days)


def calendar_from(time_zone: object, hours: object, holidays: object = ()) -> BusinessCalendar:
    """A calendar from its stored form, checked (raises `CalendarInvalid`)."""
    return BusinessCalendar(
        parse_zone(time_zone),
        parse_week(hours),
        parse_holidays(list(holidays) if isinstance(holidays, tuple) else holidays),
    )
