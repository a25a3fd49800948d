"""The bot's hand-off rules by the customer's tier and tag read the real profile: a
customer writes through the real intake, the real bot worker answers or hands off, on
SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from bot.inbox_settings import do_update_settings
from bot.policy import HandoffReason
from bot.runtime import BotRuntime
from conversations.models import Conversation
from customers.profile import check_profile_changes, do_update_profile
from switchboard.tx import Database
from tests.bot.dialogue_support import Chat, chat_with, demo_bot, webchat_with_bot


@pytest.fixture
async def runtime(db: Database) -> BotRuntime:
    return await demo_bot(db)


@pytest.fixture
async def chat(db: Database, runtime: BotRuntime) -> Chat:
    return chat_with(db, await webchat_with_bot(db), runtime)


async def _arrange(db: Database, chat: Chat, rule: dict[str, str], **profile: Any) -> None:
    conversation_id = chat.conversation_id

    async def arrange(session: Any) -> None:
        conversation = await session.get(Conversation, conversation_id)
        if profile:
            changes = check_profile_changes(profile)
            await do_update_profile(session, conversation.customer_id, changes)
        await do_update_settings(session, chat.inbox_id, {"rules": [rule]}, user_id=None)  # type: ignore[arg-type]

    await db.run(arrange)


TIER_RULE = {"field": "tier", "value": "VIP", "reason": "VIPs talk to people"}
TAG_RULE = {"field": "tag", "value": "key-account", "reason": "Key accounts talk to people"}


@pytest.mark.parametrize(
    ("rule", "profile", "hands_off"),
    [
        (TIER_RULE, {"tier": "vip"}, True),
        (TIER_RULE, {"tier": "standard"}, False),
        (TIER_RULE, {}, False),
        (TAG_RULE, {"tags": ["billing", "Key-Account"]}, True),
        (TAG_RULE, {"tags": ["billing"]}, False),
    ],
)
async def test_a_profile_rule_hands_off_at_once_only_when_it_matches(
    db: Database, chat: Chat, rule: dict[str, str], profile: dict[str, Any], hands_off: bool
) -> None:
    await chat.say("hi")
    await chat.worker.run_once()  # the greeting
    await _arrange(db, chat, rule, **profile)

    said = await chat.ask("how much is shipping")

    if hands_off:
        assert said.explanation.reason == HandoffReason.RULE
        assert (await chat.state()).handoff_detail == rule["reason"]
    else:
        assert said.explanation.reason != HandoffReason.RULE
        assert said.explanation.kind == "answer"
