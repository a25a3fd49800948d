"""BackgroundWorker's loop: what a wake-up or a stop during a pass does."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from switchboard.background import BackgroundWorker
from switchboard.bus import InProcessBus

LONG_POLL = 3600.0


class GatedWorker(BackgroundWorker):
    """Each pass waits at a gate, so a test can act while a pass is running."""

    wake_topic: ClassVar[str] = "test.background"

    def __init__(self, bus: InProcessBus) -> None:
        super().__init__(bus)
        self.passes = 0
        self.in_pass = asyncio.Event()
        self.gate = asyncio.Event()
        self.second_pass = asyncio.Event()

    async def run_once(self) -> int:
        self.passes += 1
        if self.passes == 2:
            self.second_pass.set()
        self.in_pass.set()
        await self.gate.wait()
        self.gate.clear()
        self.in_pass.clear()
        return 0

    async def pause(self) -> float:
        return LONG_POLL


async def _start(worker: GatedWorker) -> asyncio.Task[None]:
    task = asyncio.create_task(worker.run_forever())
    await asyncio.wait_for(worker.in_pass.wait(), 5)
    return task


async def test_a_stop_during_a_pass_ends_the_loop_when_the_pass_ends() -> None:
    bus = InProcessBus()
    await bus.start()
    worker = GatedWorker(bus)
    task = await _start(worker)
    worker.stop()
    worker.gate.set()
    # Before the fix the loop slept its whole poll interval (an hour here).
    await asyncio.wait_for(task, 5)
    assert worker.passes == 1
    await bus.close()


async def test_a_wake_up_during_a_pass_starts_another_pass() -> None:
    bus = InProcessBus()
    await bus.start()
    worker = GatedWorker(bus)
    task = await _start(worker)
    worker.wake()
    worker.gate.set()
    await asyncio.wait_for(worker.second_pass.wait(), 5)
    worker.stop()
    worker.gate.set()
    await asyncio.wait_for(task, 5)
    await bus.close()
