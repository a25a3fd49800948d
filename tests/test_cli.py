"""The `switchboard` command line, as an operator uses it."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from switchboard.app import create_app
from switchboard.cli import DEMO_USERS, main
from switchboard.settings import load_settings


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(os.environ):
        if key.startswith("SWITCHBOARD_") and key != "SWITCHBOARD_TEST_REQUIRE_SERVICES":
            monkeypatch.delenv(key)
    monkeypatch.setenv("SWITCHBOARD_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    return tmp_path


def test_a_bad_setting_stops_with_one_line_naming_it(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SWITCHBOARD_PORT", "eighty")
    assert main(["serve"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "SWITCHBOARD_PORT" in err and "eighty" in err


def test_the_long_running_commands_run_on_uvloop_unless_told_otherwise(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvloop

    from switchboard import loop
    from switchboard.settings import SettingsError

    async def running_loop() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    settings = load_settings()
    assert settings.event_loop == "uvloop"
    assert isinstance(loop.run(running_loop(), settings.event_loop), uvloop.Loop)
    monkeypatch.setenv("SWITCHBOARD_EVENT_LOOP", "asyncio")
    chosen = load_settings().event_loop
    assert chosen == "asyncio"
    assert not isinstance(loop.run(running_loop(), chosen), uvloop.Loop)
    monkeypatch.setenv("SWITCHBOARD_EVENT_LOOP", "trio")
    with pytest.raises(SettingsError, match="SWITCHBOARD_EVENT_LOOP must be one of"):
        load_settings()
    # Where uvloop is not installed (Windows): asyncio by default, a clear error if asked.
    monkeypatch.setattr(loop, "uvloop_available", lambda: False)
    monkeypatch.delenv("SWITCHBOARD_EVENT_LOOP")
    assert load_settings().event_loop == "asyncio"
    monkeypatch.setenv("SWITCHBOARD_EVENT_LOOP", "uvloop")
    with pytest.raises(SettingsError, match="uvloop package is not installed"):
        load_settings()


def test_serve_refuses_an_unmigrated_database(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve"]) == 2
    assert "switchboard migrate" in capsys.readouterr().err


async def test_migrate_create_user_and_token_give_a_working_api_token(
    env: Path, capsys: pytest.CaptureFixture[str], aiohttp_client: object
) -> None:
    assert await _in_thread(["migrate"]) == 0
    assert (
        await _in_thread(
            [
                "create-user",
                "--email",
                "Lee@Example.com",
                "--role",
                "supervisor",
                "--password",
                "long enough pw",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert await _in_thread(["create-token", "--email", "lee@example.com"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("sbt_")

    client = await aiohttp_client(create_app(load_settings()))  # type: ignore[operator]
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status == 200
    assert (await me.json())["role"] == "supervisor"


async def test_create_user_rejects_a_short_password(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _in_thread(["migrate"]) == 0
    assert (
        await _in_thread(
            ["create-user", "--email", "a@b.c", "--role", "agent", "--password", "short"]
        )
        == 1
    )
    assert "at least 10 characters" in capsys.readouterr().err


async def test_inbox_list_shows_each_webhook_url_without_secrets(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SWITCHBOARD_PUBLIC_URL", "https://hub.example.com")
    monkeypatch.setenv("SWITCHBOARD_TELEGRAM_BOT_TOKEN", "123:telegram-secret-token")
    monkeypatch.setenv("SWITCHBOARD_TELEGRAM_WEBHOOK_SECRET", "hook_secret")
    monkeypatch.setenv("SWITCHBOARD_EMAIL_ADDRESS", "help@example.com")
    assert await _in_thread(["migrate"]) == 0
    capsys.readouterr()
    assert await _in_thread(["inbox", "list"]) == 0
    out = capsys.readouterr().out
    assert "https://hub.example.com/webhooks/telegram/default" in out
    assert "help@example.com" in out
    assert "telegram-secret-token" not in out and "hook_secret" not in out


async def _in_thread(argv: list[str]) -> int:
    # main() runs its own event loop; keep it off the test's.
    return await asyncio.to_thread(main, argv)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_demo_migrates_seeds_and_serves_the_widget_page(tmp_path: Path) -> None:
    port = _free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    environment["SWITCHBOARD_PORT"] = str(port)
    process = subprocess.Popen(  # noqa: ASYNC220 - started once, then only polled
        [sys.executable, "-m", "switchboard.cli", "demo"],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    async with http.get(f"{base}/demo") as page:
                        html = await page.text()
                        break
                except aiohttp.ClientConnectionError:
                    assert process.poll() is None, process.stdout.read() if process.stdout else ""
                    assert time.monotonic() < deadline, "demo did not start in 30 s"
                    await asyncio.sleep(0.2)
            assert page.status == 200
            assert re.search(r'src="/widget.js" data-inbox="wc_[\w-]+"', html)
            # The printed logins work.
            email, _name, _role, password = DEMO_USERS[2]
            async with http.get(f"{base}/login") as login_page:
                assert login_page.status == 200
            csrf = http.cookie_jar.filter_cookies(URL(base))["sb_login_csrf"].value
            async with http.post(
                f"{base}/login",
                data={"email": email, "password": password, "csrf_token": csrf, "next": "/inbox"},
                allow_redirects=False,
            ) as done:
                assert done.status == 303
        assert (tmp_path / "var" / "switchboard.db").exists()
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert email in output and password in output
