"""The channel registry, explicit: which adapter class and hooks serve each kind.

Adding a channel is one line in each mapping; nothing is discovered by magic.
"""

from __future__ import annotations

from bot.channel_hooks import BotChoices
from channels.email.adapter import EmailAdapter
from channels.email.threading import EmailThreading
from channels.slack.adapter import SlackAdapter
from channels.telegram.adapter import TelegramAdapter
from channels.webchat.adapter import WebchatAdapter
from conversations.hooks import ChannelHooks
from switchboard.adapters import AdapterFactory


def adapter_factories() -> dict[str, AdapterFactory]:
    return {
        WebchatAdapter.kind: WebchatAdapter,
        EmailAdapter.kind: EmailAdapter,
        TelegramAdapter.kind: TelegramAdapter,
        SlackAdapter.kind: SlackAdapter,
    }


def channel_hooks() -> dict[str, ChannelHooks]:
    return {
        EmailAdapter.kind: EmailThreading(),
        # A bot's choices become a reply keyboard (email and Slack number them in text).
        TelegramAdapter.kind: BotChoices(),
    }
