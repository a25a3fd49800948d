"""Collision detection: who else has a conversation open in the agent inbox.

Presence is ephemeral and lives in the agents' browsers, not in a table. A socket says
which conversation its page shows (`{"type": "viewing", "conversation_id": N}`, null
for none; again every ~20 s while it stays open); this module checks the agent may see
it and publishes `ConversationPresence` on the inbox topic, so every process (over
Redis) forwards it to the agents allowed to see that conversation. A newcomer's event
carries `hello`, and pages already showing the conversation answer with their own
"viewing", so the newcomer learns who is there at once. Leaving (another conversation,
none, or the socket closing) publishes "left"; a page that vanished without a word (its
process died) is forgotten by the others when its heartbeats stop. Who is *typing* is
the existing `conversations.events.Typing` (agent side), shown next to this.

The customer sees an agent typing where the channel can show it (`CUSTOMER_SEES_TYPING`):
web chat hears the same `Typing` event on the conversation's topic; Telegram gets
`sendChatAction` from `TypingRelay` (the adapter's `send_typing`, throttled per chat,
best effort, off the socket's loop). Slack and email have no typing indicator for a bot,
so nothing is sent there and the reply box says so.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any, ClassVar, Protocol, runtime_checkable

from aiohttp import web

from conversations.events import INBOX_TOPIC
from conversations.models import Conversation
from switchboard.adapters import AdapterSource
from switchboard.bus import EventBus
from switchboard.errors import DomainError
from switchboard.events import Event, register
from switchboard.models import User
from switchboard.tx import Database
from web.access import access_conversation_by_id
from web.sockets import FrameBudget

log = logging.getLogger(__name__)

VIEWING = "viewing"
LEFT = "left"
# A page sends a heartbeat every 20 s; a burst of hellos to answer stays far below this.
MAX_FRAMES = 20
PER_SECONDS = 10.0


@register
@dataclasses.dataclass(frozen=True)
class ConversationPresence(Event):
    """An agent opened (`viewing`) or left (`left`) a conversation in the inbox."""

    type_name: ClassVar[str] = "conversation.presence"

    conversation_id: int
    inbox_id: int
    user_id: int
    name: str
    state: str
    hello: bool

    def topics(self) -> tuple[str, ...]:
        # Not the conversation's topic: widget sockets listen there.
        return (INBOX_TOPIC,)


class Viewing:
    """One agent socket's share of collision detection."""

    def __init__(self, db: Database, bus: EventBus, user: User) -> None:
        self._db = db
        self._bus = bus
        self._user = user
        self._current: tuple[int, int] | None = None  # (conversation id, inbox id)
        self._budget = FrameBudget(MAX_FRAMES, PER_SECONDS)

    def concerns(self, event: ConversationPresence) -> bool:
        """Whether this page shows the event's conversation: other pages drop it before
        any access check (every viewer's heartbeat reaches every agent socket)."""
        return self._current is not None and self._current[0] == event.conversation_id

    async def handle(self, ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        """A `viewing` frame: the conversation this page shows now (or none)."""
        if not self._budget.allow():
            await ws.send_json({"type": "error", "code": "too_many", "message": "slow down"})
            return
        raw = frame.get("conversation_id")
        if raw is None:
            await self.leave()
            return
        if not isinstance(raw, int) or isinstance(raw, bool):
            await ws.send_json({"type": "error", "code": "bad_frame", "message": "conversation_id"})
            return
        try:
            async with self._db.reading() as session:
                conversation = await access_conversation_by_id(session, self._user, raw)
        except DomainError as exc:
            await ws.send_json({"type": "error", "code": exc.code, "message": exc.message})
            return
        if self._current is not None and self._current[0] != conversation.id:
            await self.leave()
        self._current = (conversation.id, conversation.inbox_id)
        await self._publish(VIEWING, hello=bool(frame.get("hello")))

    async def leave(self) -> None:
        """This page no longer shows its conversation (or the socket closed)."""
        if self._current is not None:
            await self._publish(LEFT, hello=False)
            self._current = None

    async def _publish(self, state: str, *, hello: bool) -> None:
        assert self._current is not None
        conversation_id, inbox_id = self._current
        await self._bus.publish(
            ConversationPresence(
                actor=f"agent:{self._user.id}",
                conversation_id=conversation_id,
                inbox_id=inbox_id,
                user_id=self._user.id,
                name=self._user.name,
                state=state,
                hello=hello,
            )
        )


# Channels where the customer sees that an agent is typing (the inbox's reply box says
# which do not). Web chat: the widget; Telegram: sendChatAction.
CUSTOMER_SEES_TYPING = frozenset({"webchat", "telegram"})
# Channels whose adapter is asked to show it (web chat needs no adapter: the bus does it).
RELAYED_TYPING = frozenset({"telegram"})
# One typing request may take this long before it is dropped (it is stale by then).
TYPING_TIMEOUT = 5.0
# Requests in flight per socket; more keystrokes meanwhile are dropped, not queued.
MAX_TYPING_IN_FLIGHT = 4


@runtime_checkable
class ShowsTyping(Protocol):
    """An adapter that can show the customer "typing…" (best effort, never raises)."""

    async def send_typing(self, thread_key: str) -> bool: ...


class TypingRelay:
    """An agent socket's typing, shown to the customer on channels whose adapter can.

    Fire and forget: the socket's loop never waits for the channel; a slow or failing
    channel loses an indicator, nothing else."""

    def __init__(self, adapters: AdapterSource) -> None:
        self._adapters = adapters
        self._tasks: set[asyncio.Task[None]] = set()

    def agent_typing(self, conversation: Conversation) -> None:
        if conversation.channel not in RELAYED_TYPING or len(self._tasks) >= MAX_TYPING_IN_FLIGHT:
            return
        task = asyncio.create_task(
            self._relay(conversation.inbox_id, conversation.channel, conversation.thread_key),
            name="typing-relay",
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _relay(self, inbox_id: int, channel: str, thread_key: str) -> None:
        try:
            async with asyncio.timeout(TYPING_TIMEOUT):
                adapter = await self._adapters.for_inbox(inbox_id, channel)
                if isinstance(adapter, ShowsTyping):
                    await adapter.send_typing(thread_key)
        except Exception:  # best effort: logged, never retried
            log.warning("typing indicator for inbox %s not shown", inbox_id, exc_info=True)

    async def aclose(self) -> None:
        """Let requests in flight finish (each is bounded by TYPING_TIMEOUT)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
