"""The bot on Telegram, through the real webhook and outbox and the fake Bot API: its
choices arrive as a reply keyboard, and pressing a button (an ordinary text message
with the option's text) gets the answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.models import BotReply
from conversations.models import Inbox
from knowledge_base.commands import import_file
from switchboard.appkeys import BOT_RUNTIME
from switchboard.tx import Database
from tests.bot.dialogue_support import DEMO_KB
from tests.channels.telegram.support import SECRET, api_calls, payload, post_update
from tests.conftest import ClientFactory
from tests.fakes.telegram_api import TOKEN, FakeTelegramApi


@pytest.fixture
async def telegram_api() -> AsyncIterator[FakeTelegramApi]:
    api = FakeTelegramApi()
    await api.start()
    yield api
    await api.close()


def _update(n: int, text: str) -> dict[str, Any]:
    update = payload("private_text", update_id=829104531 + n)
    update["message"] = {**update["message"], "message_id": 1365 + n, "text": text}
    return update


async def test_choices_as_a_reply_keyboard_and_a_button_press_answered(
    make_client: ClientFactory, db: Database, telegram_api: FakeTelegramApi
) -> None:
    client = await make_client(
        telegram_bot_token=TOKEN, telegram_webhook_secret=SECRET, telegram_api_url=telegram_api.url
    )
    await db.run(
        lambda s: s.execute(update(Inbox).where(Inbox.kind == "telegram").values(bot_enabled=True))
    )
    await import_file(db, DEMO_KB, note="tests")
    await client.app[BOT_RUNTIME].refresh()

    assert (await post_update(client, _update(0, "退货退款")))[0] == 200
    (clarify,) = await api_calls(telegram_api, "sendMessage")
    keyboard = clarify.json_field("reply_markup")["keyboard"]
    titles = [row[0]["text"] for row in keyboard]
    assert len(titles) >= 2
    assert f"2. {titles[1]}" in clarify.fields["text"]

    assert (await post_update(client, _update(1, titles[1])))[0] == 200
    _clarify, answer = await api_calls(telegram_api, "sendMessage", count=2)
    assert "reply_markup" not in answer.fields
    async with db.reading() as session:
        kinds = [
            (r.kind, r.topic)
            for r in (await session.execute(select(BotReply).order_by(BotReply.message_id)))
            .scalars()
            .all()
        ]
    assert kinds[0] == ("clarify", None)
    assert kinds[1][0] == "answer" and kinds[1][1] is not None
