"""What `bot` publishes after commit: the bot's standing in a conversation changed
(handed off, handed back), so the agent inbox shows it live."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from conversations.events import INBOX_TOPIC, conversation_topic
from switchboard.events import Event, register


@register
@dataclasses.dataclass(frozen=True)
class BotStateChanged(Event):
    type_name: ClassVar[str] = "bot.state_changed"

    conversation_id: int
    inbox_id: int
    # `bot.service.bot_state_view`: mode, hand-off reason, detail, guesses, time.
    bot: dict[str, Any]

    def topics(self) -> tuple[str, ...]:
        return (INBOX_TOPIC, conversation_topic(self.conversation_id))
