"""Pacing sends to a channel's limits, so its rate limiting rarely has to step in.

Each chat (a Telegram chat, a Slack channel) has a next free slot. A send takes its
chat's slot before it waits, so concurrent sends to one chat queue up one interval apart
instead of all waking at once; when its turn comes it takes the bot's next overall slot
(if the channel has an overall limit), so a chat with sends queued far ahead never holds
up the others. Waits are bounded: a slot later than the deadline is not taken, and
`DeliveryFailed` asks the outbox, which owns retries, to come back then instead of
holding a worker and its lease. A 429 pushes the chat's slot back by the server's delay,
so its other replies wait too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from channels.base import DeliveryFailed

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
Chat = TypeVar("Chat", bound=Hashable)

# Forgetting chats whose slot has passed keeps the table small on a busy hub.
_PRUNE_AT = 10_000


class Pacer(Generic[Chat]):
    def __init__(
        self,
        interval: Callable[[Chat], float],
        *,
        overall: float = 0.0,
        max_wait: float = 10.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.interval = interval
        self.overall = overall
        self.max_wait = max_wait
        self.clock = clock
        self.sleep = sleep
        self._next_in_chat: dict[Chat, float] = {}
        self._next_overall = 0.0

    def reserve(self, chat: Chat, deadline: float | None = None) -> float:
        """Take this chat's next slot; return how long to wait for it. A slot later than
        `deadline` (default: `max_wait` from now) raises `DeliveryFailed` with the delay."""
        now = self.clock()
        if deadline is None:
            deadline = now + self.max_wait
        slot = max(now, self._next_in_chat.get(chat, now))
        if slot > deadline:
            raise DeliveryFailed(
                f"waiting for the next send slot of {chat}", retry_after=slot - now
            )
        self._next_in_chat[chat] = slot + self.interval(chat)
        if len(self._next_in_chat) > _PRUNE_AT:
            self._next_in_chat = {c: t for c, t in self._next_in_chat.items() if t > now}
        return slot - now

    def reserve_overall(self) -> float:
        """Take the bot's next slot (no wait when the channel has no overall limit)."""
        now = self.clock()
        slot = max(now, self._next_overall)
        self._next_overall = slot + self.overall
        return slot - now

    async def wait_turn(self, chat: Chat, deadline: float | None = None) -> None:
        wait = self.reserve(chat, deadline)
        if wait > 0:
            await self.sleep(wait)
        if self.overall:
            wait = self.reserve_overall()
            if wait > 0:
                await self.sleep(wait)

    def hold(self, chat: Chat, seconds: float) -> None:
        """The channel said "retry after": nothing more goes to this chat before then."""
        until = self.clock() + seconds
        self._next_in_chat[chat] = max(self._next_in_chat.get(chat, 0.0), until)
