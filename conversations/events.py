"""What `conversations` publishes after commit."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from switchboard.events import Event, register

INBOX_TOPIC = "inbox"


def conversation_topic(conversation_id: int) -> str:
    return f"conversation:{conversation_id}"


@register
@dataclasses.dataclass(frozen=True)
class MessageCreated(Event):
    type_name: ClassVar[str] = "message.created"

    conversation_id: int
    inbox_id: int
    message: dict[str, Any]
    conversation: dict[str, Any]

    def topics(self) -> tuple[str, ...]:
        return (INBOX_TOPIC, conversation_topic(self.conversation_id))


@register
@dataclasses.dataclass(frozen=True)
class MessageUpdated(Event):
    """A message changed after it was stored: delivered, failed, dead-lettered."""

    type_name: ClassVar[str] = "message.updated"

    conversation_id: int
    inbox_id: int
    message: dict[str, Any]

    def topics(self) -> tuple[str, ...]:
        return (INBOX_TOPIC, conversation_topic(self.conversation_id))


@register
@dataclasses.dataclass(frozen=True)
class Typing(Event):
    """Someone is typing. Ephemeral: published directly, never stored."""

    type_name: ClassVar[str] = "conversation.typing"

    conversation_id: int
    inbox_id: int
    side: str  # "customer" or "agent"
    name: str
    typing: bool

    def topics(self) -> tuple[str, ...]:
        return (INBOX_TOPIC, conversation_topic(self.conversation_id))
