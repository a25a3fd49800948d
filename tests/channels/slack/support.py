"""Slack test helpers: captured payloads, real signatures, and waiting for what users see."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import select

from channels.base import InboxSetup, RawInbound
from conversations.models import Conversation, InboundEvent, Message
from switchboard.tx import Database
from tests.conftest import AppClient
from tests.fakes.slack_api import DEFAULT_TOKEN

PAYLOADS = Path(__file__).parent / "payloads"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TOKEN = DEFAULT_TOKEN
WEBHOOK = "/webhooks/slack/default"
T = TypeVar("T")


def payload(name: str, **event_changes: Any) -> dict[str, Any]:
    """A captured payload (payloads/<name>.json), with fields of its event replaced."""
    data: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_text())
    data = copy.deepcopy(data)
    if event_changes:
        data["event"].update(event_changes)
    return data


def signed_headers(
    body: bytes, secret: str = SECRET, timestamp: int | None = None
) -> dict[str, str]:
    """The headers Slack sends with these exact bytes, signed for real."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    assert signature is not None
    return {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
    }


def encode(data: Any) -> bytes:
    return json.dumps(data).encode()


def raw_of(data: Any, **headers: str) -> RawInbound:
    body = encode(data)
    return RawInbound(headers={**signed_headers(body), **headers}, query={}, body=body)


def inbox_setup(api_url: str = "https://slack.com/api/", **credentials: str) -> InboxSetup:
    return InboxSetup(
        id=7,
        key="default",
        kind="slack",
        name="Slack",
        config={"api_url": api_url},
        credentials={"bot_token": TOKEN, "signing_secret": SECRET, **credentials},
        public_url="http://127.0.0.1:8080",
    )


async def post_event(
    client: AppClient, data: Any, *, extra_headers: dict[str, str] | None = None
) -> tuple[int, str]:
    """POST as Slack does: signed, and without the test client's cookies (an agent may be
    logged in on it)."""
    body = encode(data)
    async with aiohttp.ClientSession() as slack:
        response = await slack.post(
            client.make_url(WEBHOOK),
            data=body,
            headers={**signed_headers(body), **(extra_headers or {})},
        )
        return response.status, await response.text()


async def eventually(
    probe: Callable[[], Awaitable[T | None]], within: float = 10.0, what: str = "condition"
) -> T:
    """Poll `probe` until it returns something truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        found = await probe()
        if found:
            return found
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.02)


async def messages(db: Database) -> list[Message]:
    async with db.reading() as session:
        return list((await session.execute(select(Message).order_by(Message.id))).scalars())


async def conversations(db: Database) -> list[Conversation]:
    async with db.reading() as session:
        rows = await session.execute(select(Conversation).order_by(Conversation.id))
        return list(rows.scalars())


async def filed(db: Database) -> list[InboundEvent]:
    async with db.reading() as session:
        rows = await session.execute(select(InboundEvent).order_by(InboundEvent.id))
        return list(rows.scalars())
