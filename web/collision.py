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
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, ClassVar

from aiohttp import web

from conversations.events import INBOX_TOPIC
from switchboard.bus import EventBus
from switchboard.errors import DomainError
from switchboard.events import Event, register
from switchboard.models import User
from switchboard.tx import Database
from web.access import access_conversation_by_id

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
        self._window_start = 0.0
        self._frames = 0

    def concerns(self, event: ConversationPresence) -> bool:
        """Whether this page shows the event's conversation: other pages drop it before
        any access check (every viewer's heartbeat reaches every agent socket)."""
        return self._current is not None and self._current[0] == event.conversation_id

    def _allowed(self) -> bool:
        now = time.monotonic()
        if now - self._window_start > PER_SECONDS:
            self._window_start, self._frames = now, 0
        self._frames += 1
        return self._frames <= MAX_FRAMES

    async def handle(self, ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        """A `viewing` frame: the conversation this page shows now (or none)."""
        if not self._allowed():
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
