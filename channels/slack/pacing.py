"""About one message per second per channel: Slack's `chat.postMessage` limit.

Each channel has a next free slot. A send takes the slot (so concurrent sends to one
channel queue up one interval apart) and waits for it. A wait longer than `max_wait` is
not slept here: the send fails with that delay and the outbox, which owns retries, comes
back then, instead of holding a worker and its lease. A 429 pushes the slot back by the
server's delay, so the channel's other replies wait too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from channels.base import DeliveryFailed

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class ChannelPacer:
    # Forgetting idle channels keeps the map small on a hub with many threads.
    _PRUNE_AT = 1024

    def __init__(
        self,
        interval: float = 1.0,
        *,
        max_wait: float = 10.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.interval = interval
        self.max_wait = max_wait
        self.clock = clock
        self.sleep = sleep
        self._next_slot: dict[str, float] = {}

    async def wait_turn(self, channel: str) -> None:
        """Wait for this channel's next slot, or raise `DeliveryFailed` to come back later."""
        now = self.clock()
        slot = max(now, self._next_slot.get(channel, now))
        wait = slot - now
        if wait > self.max_wait:
            raise DeliveryFailed(f"channel {channel} is busy", retry_after=wait)
        self._next_slot[channel] = slot + self.interval
        if len(self._next_slot) > self._PRUNE_AT:
            self._next_slot = {c: s for c, s in self._next_slot.items() if s > now}
        if wait > 0:
            await self.sleep(wait)

    def hold(self, channel: str, seconds: float) -> None:
        """The channel asked us to wait (a 429): no send to it before then."""
        until = self.clock() + seconds
        self._next_slot[channel] = max(self._next_slot.get(channel, until), until)
