"""Fixtures for the Telegram channel: the fake Bot API and the hub wired to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from channels.telegram.adapter import TelegramAdapter
from tests.channels.telegram.support import SECRET, setup_for
from tests.clock import FakeTime
from tests.conftest import AppClient, ClientFactory
from tests.fakes.telegram_api import TOKEN, FakeTelegramApi


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    # PTB 22 warns on every RetryAfter unless opted in to its next major version's
    # timedelta; the adapter reads both (see test_retry_after_is_read_in_either_form).
    monkeypatch.setenv("PTB_TIMEDELTA", "1")


@pytest.fixture
async def telegram_api() -> AsyncIterator[FakeTelegramApi]:
    api = FakeTelegramApi()
    await api.start()
    yield api
    await api.close()


@pytest.fixture
async def adapter(telegram_api: FakeTelegramApi) -> AsyncIterator[TelegramAdapter]:
    built = TelegramAdapter(setup_for(telegram_api.url))
    yield built
    await built.aclose()


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def paced(
    telegram_api: FakeTelegramApi, fake_time: FakeTime
) -> AsyncIterator[TelegramAdapter]:
    """The adapter with its pacing on a fake clock: waits are recorded, not taken."""
    built = TelegramAdapter(
        setup_for(telegram_api.url), clock=fake_time.clock, sleep=fake_time.sleep
    )
    yield built
    await built.aclose()


@pytest.fixture
def tg_client(
    make_client: ClientFactory, telegram_api: FakeTelegramApi
) -> Callable[..., Awaitable[AppClient]]:
    """The real app with a default Telegram inbox pointed at the fake API."""

    async def factory(**overrides: Any) -> AppClient:
        return await make_client(
            telegram_bot_token=TOKEN,
            telegram_webhook_secret=SECRET,
            telegram_api_url=telegram_api.url,
            **overrides,
        )

    return factory
