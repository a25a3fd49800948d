"""Choices on each channel: buttons where the channel has them (a Telegram reply
keyboard, the widget's buttons), numbered options in the text everywhere."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.channel_hooks import BotChoices
from bot.runtime import BotRuntime
from channels.base import OutboundMessage
from channels.telegram.adapter import TelegramAdapter
from conversations.outbox import load_outbound
from switchboard.tx import Database
from tests.bot.dialogue_support import Chat, chat_with, demo_bot, webchat_with_bot
from tests.channels.telegram.support import setup_for
from tests.fakes.telegram_api import FakeTelegramApi


@pytest.fixture
async def chat(db: Database) -> Chat:
    inbox_id = await webchat_with_bot(db)
    runtime: BotRuntime = await demo_bot(db)
    return chat_with(db, inbox_id, runtime)


@pytest.fixture
async def telegram_api() -> AsyncIterator[FakeTelegramApi]:
    api = FakeTelegramApi()
    await api.start()
    yield api
    await api.close()


def _outbound(text: str, extra: dict[str, object]) -> OutboundMessage:
    return OutboundMessage(
        outbox_id=1,
        message_id=1,
        conversation_id=1,
        inbox_id=7,
        seq=2,
        thread_key="chat:1111111",
        recipient_id="1111111",
        text=text,
        author_kind="bot",
        extra=extra,
    )


async def test_a_clarify_carries_its_options_to_the_channel_and_numbers_them(
    chat: Chat,
) -> None:
    said = await chat.ask("退货退款")
    assert said.explanation.kind == "clarify"
    titles = [c["title"] for c in said.explanation.choices or []]
    assert len(titles) >= 2
    # numbered in the text, for email and Slack
    for n, title in enumerate(titles, 1):
        assert f"{n}. {title}" in said.text
    async with chat.db.reading() as session:
        outbox_id = await _outbox_id_of(session, said.message_id)
        _kind, outbound = await load_outbound(session, outbox_id)
        with_choices = await BotChoices().before_send(session, outbound)
    assert with_choices.extra["choices"] == titles


async def test_an_answer_carries_no_choices(chat: Chat) -> None:
    said = await chat.ask("how much is shipping")
    async with chat.db.reading() as session:
        outbox_id = await _outbox_id_of(session, said.message_id)
        _kind, outbound = await load_outbound(session, outbox_id)
        unchanged = await BotChoices().before_send(session, outbound)
    assert "choices" not in unchanged.extra


async def test_telegram_shows_choices_as_a_one_time_reply_keyboard(
    telegram_api: FakeTelegramApi,
) -> None:
    adapter = TelegramAdapter(setup_for(telegram_api.url))
    try:
        await adapter.send(_outbound("Did you mean?\n1. A\n2. B", {"choices": ["A", "B"]}))
        await adapter.send(_outbound("An answer", {}))
    finally:
        await adapter.aclose()
    with_keyboard, plain = telegram_api.sent()
    markup = with_keyboard.json_field("reply_markup")
    assert markup["keyboard"] == [[{"text": "A"}], [{"text": "B"}]]
    assert markup["one_time_keyboard"] is True
    assert "reply_markup" not in plain.fields


async def _outbox_id_of(session: object, message_id: int) -> int:
    from sqlalchemy import select
    from sqlalchemy.ext.asyncio import AsyncSession

    from conversations.models import OutboxEntry

    assert isinstance(session, AsyncSession)
    return (
        await session.execute(select(OutboxEntry.id).where(OutboxEntry.message_id == message_id))
    ).scalar_one()
