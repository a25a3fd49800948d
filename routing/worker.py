"""The routing worker: presence sweeps and assignment, in `serve` and `switchboard worker`.

A pass first turns offline the agents whose grace period ran out (handing back their
unstarted tickets), then assigns the waiting tickets of every queue that has a member
online, one transaction per queue (see `routing.assignment` for why that is safe with
several processes). It wakes on `routing.wake` (a routed ticket, an agent online, a
hand-back) from any process, and polls as a safety net and to notice grace periods end.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar

from routing.assignment import do_assign_queue, queues_with_waiting
from routing.events import ROUTING_TOPIC
from routing.presence import do_sweep_presence
from switchboard.background import BackgroundWorker
from switchboard.settings import Settings
from switchboard.tx import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoutingPolicy:
    grace: timedelta = timedelta(seconds=60)
    poll_interval: float = 5.0
    batch: int = 100

    @classmethod
    def from_settings(cls, settings: Settings) -> RoutingPolicy:
        return cls(grace=timedelta(seconds=settings.presence_grace_seconds))


class RoutingWorker(BackgroundWorker):
    wake_topic: ClassVar[str] = ROUTING_TOPIC

    def __init__(self, db: Database, policy: RoutingPolicy | None = None) -> None:
        super().__init__(db.bus)
        self._db = db
        self._policy = policy or RoutingPolicy()

    async def run_once(self) -> int:
        policy = self._policy
        gone = await self._db.run(lambda s: do_sweep_presence(s, policy.grace))
        async with self._db.reading() as session:
            queue_ids = await queues_with_waiting(session)
        assigned = 0
        for queue_id in queue_ids:
            assigned += await self._db.run(
                functools.partial(do_assign_queue, queue_id=queue_id, limit=policy.batch)
            )
        if gone:
            log.info("agents offline after the grace period: %s", gone)
        # Only assignments count as work: a queue whose members are all full would
        # otherwise make the loop spin.
        return assigned

    async def pause(self) -> float:
        return self._policy.poll_interval
