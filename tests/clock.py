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
