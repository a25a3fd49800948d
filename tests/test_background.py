"""BackgroundWorker's loop: what a wake-up or a stop during a pass does."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import pytest

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


async def test_space_out_keeps_passes_a_gap_apart_and_stops_at_once() -> None:
    worker = NappingWorker(InProcessBus())
    loop = asyncio.get_running_loop()
    assert await worker.space_out(0.1)  # the first is at once
    start = loop.time()
    assert await worker.space_out(0.1)  # the next waits out the gap
    assert loop.time() - start >= 0.09
    await asyncio.sleep(0.12)
    start = loop.time()
    assert await worker.space_out(0.1)  # the gap has passed already: at once
    assert loop.time() - start < 0.05
    worker.stop()
    assert not await worker.space_out(LONG_POLL)


async def test_stopping_workers_waits_one_grace_period_for_them_all() -> None:
    from switchboard.app import stop_tasks

    async def a_pass(seconds: float) -> None:
        await asyncio.sleep(seconds)

    finishing = [asyncio.create_task(a_pass(0.05)) for _ in range(2)]
    hung = [asyncio.create_task(a_pass(LONG_POLL)) for _ in range(3)]
    loop = asyncio.get_running_loop()
    start = loop.time()
    await stop_tasks([*hung, *finishing], grace=0.5)
    # Before: each task's grace period began when the one before it gave up (1.5 s here).
    assert loop.time() - start < 1.0
    assert all(t.done() and not t.cancelled() for t in finishing)
    assert all(t.cancelled() for t in hung)


async def test_a_worker_that_outlives_the_grace_is_cancelled_and_a_failed_one_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from switchboard.app import stop_tasks

    async def stuck() -> None:
        await asyncio.sleep(LONG_POLL)

    async def failed() -> None:
        raise RuntimeError("broke earlier")

    hung = asyncio.create_task(stuck(), name="stuck-worker")
    broken = asyncio.create_task(failed(), name="broken-worker")
    await asyncio.wait_for(stop_tasks([broken, hung], grace=0.1), 5)
    assert hung.cancelled()
    assert "broken-worker had failed" in caplog.text
