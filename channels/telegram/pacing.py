"""Pacing a bot's sends to Telegram's limits, so flood control rarely has to step in.

The Bot API FAQ (and PTB's constants) give about one message per second per chat, 20
per minute per group and 30 per second overall. Each send reserves its chat's next
free slot before it waits, so concurrent sends to one chat queue up instead of all
waking at once; when its turn comes it takes the bot's next slot. Waits are bounded: a
send never holds its outbox lease sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from channels.base import DeliveryFailed

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

PER_CHAT_INTERVAL = 1.0
PER_GROUP_INTERVAL = 3.0  # 20 per minute
OVERALL_INTERVAL = 1 / 30
# Forgetting chats whose slot has passed keeps the table small on a busy bot.
_PRUNE_AT = 10_000


class Pacer:
    def __init__(self, clock: Clock, sleep: Sleep = asyncio.sleep) -> None:
        self.clock = clock
        self.sleep = sleep
        self._next_in_chat: dict[int, float] = {}
        self._next_overall = 0.0

    @staticmethod
    def interval(chat_id: int) -> float:
        # Group and supergroup ids are negative; users' ids positive.
        return PER_GROUP_INTERVAL if chat_id < 0 else PER_CHAT_INTERVAL

    def reserve(self, chat_id: int, deadline: float) -> float:
        """Take this chat's next slot; return how long to wait for it. A slot later than
        `deadline` is not taken: DeliveryFailed asks the outbox to come back then."""
        now = self.clock()
        slot = max(now, self._next_in_chat.get(chat_id, now))
        if slot > deadline:
            raise DeliveryFailed("waiting for this chat's next send slot", retry_after=slot - now)
        self._next_in_chat[chat_id] = slot + self.interval(chat_id)
        if len(self._next_in_chat) > _PRUNE_AT:
            self._next_in_chat = {c: t for c, t in self._next_in_chat.items() if t > now}
        return slot - now

    def reserve_overall(self) -> float:
        """Take the bot's next slot. Taken only once the chat's turn has come, so a chat
        with sends queued far ahead never holds up the others."""
        now = self.clock()
        slot = max(now, self._next_overall)
        self._next_overall = slot + OVERALL_INTERVAL
        return slot - now

    async def wait_turn(self, chat_id: int, deadline: float) -> None:
        wait = self.reserve(chat_id, deadline)
        if wait > 0:
            await self.sleep(wait)
        wait = self.reserve_overall()
        if wait > 0:
            await self.sleep(wait)

    def hold(self, chat_id: int, seconds: float) -> None:
        """Telegram said "retry after": nothing more goes to this chat before then."""
        until = self.clock() + seconds
        self._next_in_chat[chat_id] = max(self._next_in_chat.get(chat_id, 0.0), until)
