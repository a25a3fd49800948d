"""Channel hooks for bot messages: a Clarify's options travel to the adapter in
`OutboundMessage.extra["choices"]`, so a channel with buttons (Telegram's reply
keyboard) shows them; every channel also has them numbered in the text."""

from __future__ import annotations

import dataclasses

from sqlalchemy.ext.asyncio import AsyncSession

from bot.service import choices_by_message
from channels.base import OutboundMessage
from conversations.hooks import ChannelHooks
from conversations.models import AuthorKind


class BotChoices(ChannelHooks):
    async def before_send(self, session: AsyncSession, msg: OutboundMessage) -> OutboundMessage:
        if msg.author_kind != AuthorKind.BOT:
            return msg
        choices = (await choices_by_message(session, [msg.message_id])).get(msg.message_id)
        if not choices:
            return msg
        return dataclasses.replace(msg, extra={**msg.extra, "choices": choices})
