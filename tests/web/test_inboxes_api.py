"""Admins see every inbox with the URL its channel must call, and never its secrets."""

from __future__ import annotations

from typing import Any

import pytest

from switchboard.tx import Database
from tests.conftest import ClientFactory
from tests.security.support import agent_token, bearer, staff_token

BOT_TOKEN = "123456789:AAHsecret-telegram-token"
SIGNING = "slack-signing-secret-value"


@pytest.fixture
async def channels_client(make_client: ClientFactory) -> Any:
    return await make_client(
        public_url="https://hub.example.com",
        telegram_bot_token=BOT_TOKEN,
        telegram_webhook_secret="tg-secret_1",
        slack_bot_token="xoxb-secret-slack-token",
        slack_signing_secret=SIGNING,
        email_address="support@example.com",
        smtp_password="smtp-password-value",
        run_workers=False,
    )


async def test_each_inbox_shows_its_own_webhook_url_and_no_secret(
    channels_client: Any, db: Database
) -> None:
    response = await channels_client.get(
        "/api/v1/inboxes", headers=bearer((await staff_token(db, "admin@example.com", "admin"))[1])
    )
    assert response.status == 200
    body = await response.text()
    for secret in (BOT_TOKEN, "tg-secret_1", "xoxb-secret-slack-token", SIGNING, "smtp-password"):
        assert secret not in body
    by_kind = {row["kind"]: row for row in (await response.json())["inboxes"]}
    assert by_kind["telegram"]["webhook_url"] == "https://hub.example.com/webhooks/telegram/default"
    assert by_kind["slack"]["webhook_url"] == "https://hub.example.com/webhooks/slack/default"
    assert by_kind["email"]["config"]["address"] == "support@example.com"
    assert by_kind["email"]["webhook_url"] is None
    assert by_kind["webchat"]["widget_key"].startswith("wc_")
    assert by_kind["telegram"]["has_credentials"] is True


async def test_only_admins_see_inbox_settings(channels_client: Any, db: Database) -> None:
    anonymous = await channels_client.get("/api/v1/inboxes")
    agent = await channels_client.get("/api/v1/inboxes", headers=bearer(await agent_token(db)))
    assert anonymous.status == 401
    assert agent.status == 403
    assert BOT_TOKEN not in await agent.text()
