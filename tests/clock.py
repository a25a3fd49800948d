"""A database-time clock a test moves forward instead of sleeping."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import ModuleType

import pytest

from switchboard.db import utcnow


class Clock:
    """What a module thinks `utcnow()` is: the real time plus an offset."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


def clock_for(module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Clock:
    """A clock that `module`'s calls to `utcnow` read."""
    clock = Clock()
    monkeypatch.setattr(module, "utcnow", clock.now)
    return clock


class FakeTime:
    """A monotonic clock and sleep for adapters' pacing: a wait is recorded and moves
    time on at once, so a test sees the waits without taking them."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds
