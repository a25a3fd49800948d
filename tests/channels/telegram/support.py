"""Helpers for the Telegram tests: captured payloads, signed webhook posts, waiting."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from sqlalchemy import func, select

from channels.base import InboxSetup, RawInbound
from channels.telegram.adapter import SECRET_HEADER
from conversations.models import Conversation, Message
from switchboard.tx import Database
from tests.conftest import AppClient
from tests.fakes.telegram_api import TOKEN, ApiRequest, FakeTelegramApi

PAYLOADS = Path(__file__).parent / "payloads"
SECRET = "wh-secret_0123456789-abcdefghij"
WEBHOOK = "/webhooks/telegram/default"
T = TypeVar("T")


def payload(name: str, **changes: Any) -> dict[str, Any]:
    """A captured update; top-level fields (update_id) may be replaced."""
    data: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_text("utf-8"))
    return {**copy.deepcopy(data), **changes}


def raw(
    update: Any, *, secret: str | None = SECRET, content_type: str = "application/json"
) -> RawInbound:
    body = update if isinstance(update, bytes) else json.dumps(update).encode()
    headers = {"Content-Type": content_type}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    return RawInbound(headers=headers, query={}, body=body)


def setup_for(
    api_url: str = "http://127.0.0.1:9", secret: str = SECRET, inbox_id: int = 7
) -> InboxSetup:
    return InboxSetup(
        id=inbox_id,
        key="default",
        kind="telegram",
        name="Telegram",
        config={"api_url": api_url},
        credentials={"bot_token": TOKEN, "webhook_secret": secret},
        public_url="https://hub.example.com",
    )


async def post_update(
    client: AppClient,
    update: Any,
    *,
    secret: str | None = SECRET,
    content_type: str = "application/json",
) -> tuple[int, Any]:
    body = update if isinstance(update, bytes) else json.dumps(update).encode()
    headers = {"Content-Type": content_type}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    # Telegram is its own client: none of the test agent's cookies go along.
    async with (
        aiohttp.ClientSession() as telegram,
        telegram.post(client.make_url(WEBHOOK), data=body, headers=headers) as response,
    ):
        text = await response.text()
        return response.status, json.loads(text) if text else None


async def eventually(probe: Callable[[], Awaitable[T]], within: float = 10.0) -> T:
    """Poll until `probe` gives something truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"condition not met within {within} s"
        await asyncio.sleep(0.02)


async def api_calls(api: FakeTelegramApi, method: str, count: int = 1) -> list[ApiRequest]:
    """The fake API's calls of `method`, once there are `count` of them."""

    async def enough() -> list[ApiRequest]:
        calls = api.calls(method)
        return calls if len(calls) >= count else []

    return await eventually(enough)


async def count(db: Database, model: Any) -> int:
    async with db.reading() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


async def texts_in(db: Database, thread_key: str) -> list[str]:
    """A conversation's messages as it shows them, by seq."""
    async with db.reading() as session:
        return list(
            (
                await session.execute(
                    select(Message.text)
                    .join(Conversation, Conversation.id == Message.conversation_id)
                    .where(Conversation.thread_key == thread_key)
                    .order_by(Message.seq)
                )
            ).scalars()
        )
