"""The customer sees "typing…" on Telegram while an agent types (sendChatAction on the
fake Bot API): throttled per chat, never waiting behind replies, silent after a 429 for
Telegram's retry_after, failures logged and never retried; from the agent's socket to
the customer's chat, and nothing for channels without typing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from telegram.error import BadRequest

from channels.base import OutboundMessage
from channels.telegram.adapter import TYPING_INTERVAL, TelegramAdapter
from switchboard.tx import Database
from tests.channels.telegram.support import api_calls, payload, post_update
from tests.channels.telegram.test_end_to_end import agent_inbox, next_customer_message
from tests.clock import FakeTime
from tests.conftest import AppClient
from tests.fakes.telegram_api import FakeTelegramApi, bad_request, rate_limited, server_error
from tests.security.support import use_cheap_password_hashing

ClientMaker = Callable[..., Awaitable[AppClient]]


@pytest.fixture(autouse=True)
def _cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    use_cheap_password_hashing(monkeypatch)


async def test_typing_reaches_the_chat_at_most_once_per_interval(
    paced: TelegramAdapter, telegram_api: FakeTelegramApi, fake_time: FakeTime
) -> None:
    assert await paced.send_typing("chat:1111111") is True
    # Keystrokes within the interval cost nothing; another chat has its own throttle.
    assert await paced.send_typing("chat:1111111") is False
    fake_time.now += TYPING_INTERVAL - 0.1
    assert await paced.send_typing("chat:1111111") is False
    assert await paced.send_typing("chat:-1001234567890") is True
    fake_time.now += 0.2
    assert await paced.send_typing("chat:1111111") is True

    calls = telegram_api.calls("sendChatAction")
    assert [(c.chat_id, c.fields["action"]) for c in calls] == [
        (1111111, "typing"),
        (-1001234567890, "typing"),
        (1111111, "typing"),
    ]
    assert fake_time.slept == []  # never waited for a pacing slot


async def test_typing_never_waits_behind_replies(
    paced: TelegramAdapter, telegram_api: FakeTelegramApi, fake_time: FakeTime
) -> None:
    reply = OutboundMessage(
        outbox_id=1,
        message_id=1,
        conversation_id=1,
        inbox_id=7,
        seq=2,
        thread_key="chat:1111111",
        recipient_id="1111111",
        text="one",
        author_kind="agent",
    )
    await paced.send(reply)
    # The chat's next reply would wait ~1 s for its pacing slot; typing goes at once.
    assert await paced.send_typing("chat:1111111") is True
    assert fake_time.slept == []
    assert len(telegram_api.calls("sendChatAction")) == 1


async def test_a_429_silences_typing_for_retry_after_and_is_not_retried(
    paced: TelegramAdapter,
    telegram_api: FakeTelegramApi,
    fake_time: FakeTime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    telegram_api.script("sendChatAction", rate_limited(30))
    caplog.set_level("INFO", logger="channels.telegram.adapter")
    assert await paced.send_typing("chat:1111111") is True  # tried once, refused
    assert len(telegram_api.calls("sendChatAction")) == 1  # no retry
    assert "flood control" in caplog.text

    fake_time.now += TYPING_INTERVAL + 1
    assert await paced.send_typing("chat:1111111") is False  # still inside retry_after
    fake_time.now += 30
    assert await paced.send_typing("chat:1111111") is True
    assert len(telegram_api.calls("sendChatAction")) == 2


async def test_failures_are_logged_without_the_token_and_never_raised(
    paced: TelegramAdapter,
    telegram_api: FakeTelegramApi,
    fake_time: FakeTime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    telegram_api.script("sendChatAction", server_error(502), bad_request("chat not found"))
    caplog.set_level("WARNING", logger="channels.telegram.adapter")
    await paced.send_typing("chat:1111111")
    fake_time.now += TYPING_INTERVAL
    await paced.send_typing("chat:1111111")
    assert len(telegram_api.calls("sendChatAction")) == 2
    assert caplog.text.count("telegram typing to chat 1111111 failed") == 2
    assert telegram_api.token not in caplog.text
    # Not a chat: nothing sent, nothing raised.
    assert await paced.send_typing("conversation:9") is False
    assert len(telegram_api.calls("sendChatAction")) == 2


async def test_the_fake_refuses_what_telegram_refuses(
    adapter: TelegramAdapter, telegram_api: FakeTelegramApi
) -> None:
    bot = await adapter._ready()  # the PTB bot, to call the API directly
    with pytest.raises(BadRequest, match=r"(?i)wrong parameter action"):
        await bot.send_chat_action(chat_id=1111111, action="dancing")
    assert await bot.send_chat_action(chat_id=1111111, action="typing") is True


async def test_an_agent_typing_shows_typing_in_the_customers_chat(
    tg_client: ClientMaker, db: Database, telegram_api: FakeTelegramApi
) -> None:
    client = await tg_client()
    _, inbox = await agent_inbox(client, db)
    assert (await post_update(client, payload("private_text")))[0] == 200
    conversation_id = (await next_customer_message(inbox))["conversation_id"]

    # A burst of keystrokes (the page sends a frame every ~2 s while the agent types).
    for _ in range(3):
        await inbox.send_json(
            {"type": "typing", "conversation_id": conversation_id, "typing": True}
        )
    await inbox.send_json({"type": "typing", "conversation_id": conversation_id, "typing": False})
    (action,) = await api_calls(telegram_api, "sendChatAction")
    assert (action.chat_id, action.fields["action"]) == (1111111, "typing")
    await asyncio.sleep(0.3)
    assert len(telegram_api.calls("sendChatAction")) == 1  # throttled, and "stop" sends none
    await inbox.close()
