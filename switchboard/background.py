"""The loop of a background worker that claims work from the database.

A pass that did work is followed at once by another (unless the worker knows it emptied
its queue: `more_after`); otherwise the worker sleeps until its next due time or until a
wake-up event on its bus topic arrives from any process (the commit that created the
work publishes it). `stop` lets the current pass finish —
never a transaction cut in half — and then `run_forever` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import ClassVar

from switchboard.bus import EventBus, Resync
from switchboard.events import Event

log = logging.getLogger(__name__)

# Slept when asking for the next due time itself failed (the database is restarting).
_FALLBACK_PAUSE = 1.0


class BackgroundWorker:
    wake_topic: ClassVar[str]

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        self._stopping = False
        self._spaced_at = -float("inf")  # loop time of the last `space_out`

    async def run_once(self) -> int:
        """One pass; how much work it handled."""
        raise NotImplementedError

    async def pause(self) -> float:
        """Seconds until work may be due, if no wake-up comes first."""
        raise NotImplementedError

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Finish the current pass, then return from `run_forever` (never mid-transaction)."""
        self._stopping = True
        self._stopped.set()
        self._wake.set()

    async def nap(self, seconds: float) -> bool:
        """Sleep `seconds` inside a pass, unless `stop` comes first; False when stopping
        (wake-ups do not cut it short). A pass that naps must return at False, so a
        stopping worker is gone at once instead of after the nap and one more pass."""
        if not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), seconds)
        return not self._stopping

    async def space_out(self, gap: float) -> bool:
        """Nap until `gap` seconds after the previous call returned, so a stream of
        wake-ups costs a pass per gap rather than one each; False when stopping."""
        loop = asyncio.get_running_loop()
        wait = self._spaced_at + gap - loop.time()
        if wait > 0 and not await self.nap(wait):
            return False
        self._spaced_at = loop.time()
        return True

    def more_after(self, handled: int) -> bool:
        """Whether a pass that handled this much should be followed at once by another,
        rather than by `pause` (which asks when work is next due, and returns at once if
        a wake-up came meanwhile). A worker that knows it emptied its queue says no."""
        return handled > 0

    def heard(self, item: Event | Resync) -> None:
        """Called for each event on `wake_topic` as it is published (in the publisher's
        turn: quick, no I/O). A worker that only needs some of them filters here."""
        self.wake()

    async def run_forever(self) -> None:
        # A listener, not a queue read by a task: every message's event reaches every
        # worker on the inbox topic, and most only look at it and move on.
        async with self._bus.subscribe([self.wake_topic], listener=self.heard):
            while not self._stopping:
                # Cleared before the pass, not after it: a wake-up or a stop() that
                # lands during the pass stays set, so the wait below returns at once
                # instead of sleeping a whole poll interval on news it already had.
                self._wake.clear()
                try:
                    handled = await self.run_once()
                except Exception:
                    log.exception("%s pass failed; retrying", self.wake_topic)
                    handled = 0
                if self.more_after(handled):
                    continue
                # Ask how long to sleep before creating the wait: a cancellation in
                # between must not leave an un-awaited coroutine behind.
                pause = await self._safe_pause()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), pause)

    async def _safe_pause(self) -> float:
        try:
            return await self.pause()
        except Exception:
            return _FALLBACK_PAUSE
