"""Helpers shared by the security tests: agents with API tokens, visitors with sockets,
raw multipart bodies and a real PNG."""

from __future__ import annotations

import asyncio
import json
import struct
import zlib
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse
from argon2 import PasswordHasher
from sqlalchemy import func, select

from channels.base import InboundMessage
from conversations.models import Attachment, Conversation, Inbox, Message
from conversations.service import do_intake
from switchboard import accounts
from switchboard.models import User
from switchboard.tx import Database
from tests.conftest import AppClient, create_user, widget_session

XSS = "<script>alert(1)</script><img src=x onerror=alert(1)>"
# The real algorithm at its cheapest settings: the tests are about who gets in, not about
# key stretching, and the production cost (~0.1 s per hash) would dominate the suite.
_CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
_CHEAP_DUMMY = _CHEAP_HASHER.hash("dummy password for unknown emails")


def use_cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accounts, "_hasher", _CHEAP_HASHER)
    monkeypatch.setattr(accounts, "_DUMMY_HASH", _CHEAP_DUMMY)


async def staff_token(db: Database, email: str, role: str, name: str = "") -> tuple[int, str]:
    """A new user with this role and an API bearer token for them: (user id, token)."""
    user_id = await create_user(db, email, role=role, name=name)

    async def issue(session: Any) -> str:
        user = await session.get(User, user_id)
        return await accounts.do_create_api_token(session, user, "tests")

    return user_id, await db.run(issue)


async def agent_token(db: Database, email: str = "agent@example.com", name: str = "") -> str:
    """A new agent and an API bearer token for them."""
    _user_id, token = await staff_token(db, email, "agent", name)
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def webchat_inbox(db: Database) -> Inbox:
    async with db.reading() as session:
        return (await session.execute(select(Inbox).where(Inbox.kind == "webchat"))).scalar_one()


async def start_conversation(
    db: Database, visitor_id: str = "v_arranged0000000000", text: str = "hi"
) -> int:
    """A conversation arranged directly through intake (no socket needed)."""
    inbox = await webchat_inbox(db)
    message = InboundMessage(
        channel="webchat",
        inbox_id=inbox.id,
        sender_id=visitor_id,
        external_id=f"{visitor_id}:arranged",
        thread_key=visitor_id,
        text=text,
    )
    result = await db.run(lambda s: do_intake(s, message))
    return result.conversation_id


async def stored_texts(db: Database) -> list[str]:
    async with db.reading() as session:
        return list((await session.execute(select(Message.text).order_by(Message.id))).scalars())


async def conversation_count(db: Database) -> int:
    async with db.reading() as session:
        return (await session.execute(select(func.count(Conversation.id)))).scalar_one()


async def conversation_of(db: Database, visitor_id: str) -> int:
    async with db.reading() as session:
        return (
            await session.execute(
                select(Conversation.id).where(Conversation.thread_key == visitor_id)
            )
        ).scalar_one()


async def attachment_row(db: Database, attachment_id: str) -> Attachment | None:
    async with db.reading() as session:
        return await session.get(Attachment, attachment_id)


async def receive(ws: ClientWebSocketResponse, kind: str, within: float = 5) -> dict[str, Any]:
    """The next frame of this type (frames of other types are skipped)."""
    async with asyncio.timeout(within):
        while True:
            frame: dict[str, Any] = await ws.receive_json()
            if frame.get("type") == kind:
                return frame


async def reply_to(ws: ClientWebSocketResponse, within: float = 5) -> dict[str, Any]:
    """The next ack or error frame: the answer to a send."""
    async with asyncio.timeout(within):
        while True:
            frame: dict[str, Any] = await ws.receive_json()
            if frame.get("type") in ("ack", "error", "pong"):
                return frame


async def new_visitor(client: AppClient) -> tuple[str, str]:
    """A new anonymous visitor of the default web-chat inbox: (token, visitor id)."""
    public_key, _ = await widget_session(client)
    response = await client.post("/widget/session", json={"inbox": public_key})
    assert response.status == 200
    data = await response.json()
    return data["token"], data["visitor_id"]


async def open_widget(client: AppClient, token: str) -> ClientWebSocketResponse:
    ws = await client.ws_connect(f"/widget/ws?token={token}")
    await receive(ws, "hello")
    return ws


async def send_text(
    ws: ClientWebSocketResponse, client_msg_id: str, text: str, attachments: list[str] | None = None
) -> dict[str, Any]:
    """Send one message frame (UTF-8 on the wire, not \\u escapes) and return the answer."""
    frame: dict[str, Any] = {"type": "message", "client_msg_id": client_msg_id, "text": text}
    if attachments is not None:
        frame["attachments"] = attachments
    await ws.send_str(json.dumps(frame, ensure_ascii=False))
    return await reply_to(ws)


def tiny_png() -> bytes:
    """A real 1x1 RGB PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


BOUNDARY = "sb-test-boundary-7f3a"


def multipart_file(
    data: bytes,
    *,
    disposition: str = 'form-data; name="file"; filename="photo.png"',
    content_type: str = "application/octet-stream",
    extra_headers: str = "",
) -> tuple[bytes, dict[str, str]]:
    """A hand-built multipart body with one part, so every header is under the test's control."""
    head = (
        f"--{BOUNDARY}\r\n"
        f"Content-Disposition: {disposition}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"{extra_headers}"
        "\r\n"
    ).encode()
    body = head + data + f"\r\n--{BOUNDARY}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


async def upload(
    client: AppClient, token: str, data: bytes, **parts: str
) -> tuple[int, dict[str, Any]]:
    body, headers = multipart_file(data, **parts)
    response = await client.post(
        "/widget/upload", data=body, headers={**headers, "X-Visitor-Token": token}
    )
    return response.status, await response.json()
