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


class NappingWorker(BackgroundWorker):
    """Each pass naps an hour first, as the ticket follow-up naps out its minimum gap."""

    wake_topic: ClassVar[str] = "test.background"

    def __init__(self, bus: InProcessBus) -> None:
        super().__init__(bus)
        self.napping = asyncio.Event()
        self.work_done = 0

    async def run_once(self) -> int:
        self.napping.set()
        if not await self.nap(LONG_POLL):
            return 0
        self.work_done += 1
        return 1

    async def pause(self) -> float:
        return LONG_POLL


async def test_a_stop_during_a_nap_ends_the_loop_at_once_and_skips_the_pass() -> None:
    bus = InProcessBus()
    await bus.start()
    worker = NappingWorker(bus)
    task = asyncio.create_task(worker.run_forever())
    await asyncio.wait_for(worker.napping.wait(), 5)
    worker.wake()  # a wake-up does not cut a nap short
    await asyncio.sleep(0.05)
    assert not task.done()
    worker.stop()
    # Before: the pass slept out its nap (an hour here) and then did its work.
    await asyncio.wait_for(task, 1)
    assert worker.work_done == 0
    await bus.close()


async def test_a_nap_without_a_stop_sleeps_its_time() -> None:
    worker = NappingWorker(InProcessBus())
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await worker.nap(0.05)
    assert loop.time() - start >= 0.05
    worker.stop()
    assert not await worker.nap(LONG_POLL)  # stopping already: no nap at all
