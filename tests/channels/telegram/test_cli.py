"""`switchboard telegram set-webhook`, as an operator runs it, against the fake Bot API."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from switchboard.cli import main
from tests.channels.telegram.support import SECRET
from tests.fakes.telegram_api import TOKEN, FakeTelegramApi, bad_request


async def run(argv: list[str]) -> int:
    # main() runs its own event loop; the fake API keeps serving on the test's.
    return await asyncio.to_thread(main, argv)


@pytest.fixture
async def env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, telegram_api: FakeTelegramApi
) -> AsyncIterator[None]:
    for key in list(os.environ):
        if key.startswith("SWITCHBOARD_") and key != "SWITCHBOARD_TEST_REQUIRE_SERVICES":
            monkeypatch.delenv(key)
    monkeypatch.setenv("SWITCHBOARD_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("SWITCHBOARD_SECRET_KEY", "cli-test-secret-key-" + "y" * 40)
    monkeypatch.setenv("SWITCHBOARD_PUBLIC_URL", "https://hub.example.com")
    monkeypatch.setenv("SWITCHBOARD_TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SWITCHBOARD_TELEGRAM_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("SWITCHBOARD_TELEGRAM_API_URL", telegram_api.url)
    assert await run(["migrate"]) == 0
    yield


async def test_set_webhook_registers_the_inbox_url_and_secret(
    env: None, telegram_api: FakeTelegramApi, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert await run(["telegram", "set-webhook"]) == 0
    (call,) = telegram_api.calls("setWebhook")
    assert call.fields["url"] == "https://hub.example.com/webhooks/telegram/default"
    assert call.fields["secret_token"] == SECRET
    assert call.json_field("allowed_updates") == ["message", "edited_message", "my_chat_member"]
    assert telegram_api.webhook["url"] == "https://hub.example.com/webhooks/telegram/default"
    assert "https://hub.example.com/webhooks/telegram/default" in capsys.readouterr().out


async def test_without_a_secret_it_refuses_in_one_line_and_calls_nobody(
    env: None,
    telegram_api: FakeTelegramApi,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("SWITCHBOARD_TELEGRAM_WEBHOOK_SECRET")
    capsys.readouterr()
    assert await run(["telegram", "set-webhook", "--inbox", "default"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "webhook secret" in err
    assert telegram_api.calls("setWebhook") == []


async def test_an_unknown_inbox_or_a_plain_http_hub_is_refused_in_one_line(
    env: None,
    telegram_api: FakeTelegramApi,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    capsys.readouterr()
    assert await run(["telegram", "set-webhook", "--inbox", "sales"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'sales'" in err

    monkeypatch.setenv("SWITCHBOARD_PUBLIC_URL", "http://hub.example.com")
    assert await run(["telegram", "set-webhook"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "https" in err
    assert telegram_api.calls("setWebhook") == []


async def test_telegram_refusing_is_one_line_without_the_token(
    env: None,
    telegram_api: FakeTelegramApi,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    telegram_api.script("setWebhook", bad_request("bad webhook: IP address 10.0.0.1 is reserved"))
    capsys.readouterr()
    assert await run(["telegram", "set-webhook"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "ip address 10.0.0.1 is reserved" in err.lower()

    monkeypatch.setenv("SWITCHBOARD_TELEGRAM_BOT_TOKEN", "999:wrong-token-kept-secret")
    assert await run(["telegram", "set-webhook"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "wrong-token-kept-secret" not in err
