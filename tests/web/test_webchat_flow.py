"""A customer writes in the widget; an agent sees it live, replies; the widget gets it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import WSMsgType

from conversations.service import IntakeResult
from tests.conftest import AppClient, create_user, login, widget_session
from tests.security.support import receive
from web.widget import WidgetSocket


async def test_widget_message_reaches_agent_and_reply_reaches_widget(
    client: AppClient, db: Any
) -> None:
    await create_user(db, "alex@example.com")
    _, token = await widget_session(client)
    widget = await client.ws_connect(f"/widget/ws?token={token}")
    assert (await receive(widget, "hello"))["visitor_id"].startswith("v_")
    await widget.send_json({"type": "resume", "last_seq": 0})

    csrf = await login(client, "alex@example.com")
    inbox = await client.ws_connect("/inbox/ws")

    await widget.send_json(
        {"type": "message", "client_msg_id": "m-0001-abcd", "text": "Where is my order?"}
    )
    ack = await receive(widget, "ack")
    assert ack["seq"] == 1 and ack["duplicate"] is False

    created = await receive(inbox, "message.created")
    message = created["data"]["message"]
    assert message["text"] == "Where is my order?" and message["author_kind"] == "customer"
    conversation_id = created["data"]["conversation_id"]

    reply = await client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        json={"text": "It ships today."},
        headers={"X-CSRF-Token": csrf},
    )
    assert reply.status == 201, await reply.text()

    while True:
        frame = await receive(widget, "message")
        if frame["message"]["direction"] == "out":
            break
    assert frame["message"]["text"] == "It ships today." and frame["message"]["seq"] == 2

    # The outbox marks the reply sent, and the inbox hears about it live.
    while True:
        update = await receive(inbox, "message.updated")
        if update["data"]["message"]["seq"] == 2:
            break
    assert update["data"]["message"]["delivery_status"] == "sent"
    await widget.close()
    await inbox.close()


async def test_resume_replays_only_what_the_widget_missed(client: AppClient) -> None:
    _, token = await widget_session(client)
    widget = await client.ws_connect(f"/widget/ws?token={token}")
    for n in range(3):
        await widget.send_json(
            {"type": "message", "client_msg_id": f"msg-{n:04d}-xx", "text": f"hello {n}"}
        )
        await receive(widget, "ack")
    await widget.close()

    again = await client.ws_connect(f"/widget/ws?token={token}")
    await again.send_json({"type": "resume", "last_seq": 1})
    replayed = [(await receive(again, "message"))["message"]["seq"] for _ in range(2)]
    assert replayed == [2, 3]
    await again.close()


async def test_retried_send_with_same_client_msg_id_is_stored_once(client: AppClient) -> None:
    _, token = await widget_session(client)
    widget = await client.ws_connect(f"/widget/ws?token={token}")
    for _ in range(2):
        await widget.send_json({"type": "message", "client_msg_id": "same-id-123", "text": "hi"})
    first, second = await receive(widget, "ack"), await receive(widget, "ack")
    assert first["seq"] == second["seq"] == 1
    assert second["duplicate"] is True
    await widget.close()


async def test_ack_carries_the_message_the_socket_expected_next(client: AppClient) -> None:
    _, token = await widget_session(client)
    widget = await client.ws_connect(f"/widget/ws?token={token}")
    await receive(widget, "hello")
    await widget.send_json({"type": "resume", "last_seq": 0})
    # The first message opens the conversation: a plain ack, then the socket follows the
    # conversation and shows the message in a frame of its own.
    await widget.send_json({"type": "message", "client_msg_id": "first-0001", "text": "hi"})
    first = await receive(widget, "ack")
    assert first["seq"] == 1 and "message" not in first
    assert (await receive(widget, "message"))["message"]["seq"] == 1

    await widget.send_json(
        {"type": "message", "client_msg_id": "second-0001", "text": "my <b>parcel</b>"}
    )
    ack = await receive(widget, "ack")
    assert ack["seq"] == 2 and ack["duplicate"] is False
    shown = ack["message"]
    assert shown["id"] == ack["message_id"] and shown["seq"] == 2
    assert (shown["text"], shown["direction"], shown["author_kind"]) == (
        "my <b>parcel</b>",
        "in",
        "customer",
    )
    assert shown["created_at"] and shown["attachments"] == [] and shown["choices"] == []
    assert set(shown) == {
        "id", "seq", "direction", "author_kind", "text", "created_at", "attachments", "choices"
    }  # fmt: skip

    # The message is not shown twice: its event, back from the bus, sends nothing more.
    await widget.send_json({"type": "ping"})
    frames = []
    while (frame := await widget.receive_json(timeout=5))["type"] != "pong":
        frames.append(frame)
    await asyncio.sleep(0.3)
    await widget.send_json({"type": "ping"})
    while (frame := await widget.receive_json(timeout=5))["type"] != "pong":
        frames.append(frame)
    assert [f for f in frames if f["type"] == "message"] == []

    # A retried send is acknowledged as a duplicate, without the message.
    await widget.send_json(
        {"type": "message", "client_msg_id": "second-0001", "text": "my <b>parcel</b>"}
    )
    again = await receive(widget, "ack")
    assert again["duplicate"] is True and again["seq"] == 2 and "message" not in again

    # A reconnecting widget gets both messages replayed as usual.
    await widget.close()
    later = await client.ws_connect(f"/widget/ws?token={token}")
    await later.send_json({"type": "resume", "last_seq": 0})
    replayed = [(await receive(later, "message"))["message"]["seq"] for _ in range(2)]
    assert replayed == [1, 2]
    await later.close()


class _RecordingSocket:
    closed = False

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send_frame(self, data: bytes, opcode: WSMsgType) -> None:
        assert opcode == WSMsgType.TEXT  # the widget parses text frames only
        self.sent.append(json.loads(data))


def _socket_at(cursor: int, conversation_id: int | None) -> tuple[WidgetSocket, _RecordingSocket]:
    """A widget socket's delivery state without a connection behind it."""
    ws = _RecordingSocket()
    socket = WidgetSocket.__new__(WidgetSocket)
    socket.ws = ws  # type: ignore[assignment]
    socket.flush_lock = asyncio.Lock()
    socket.cursor = cursor
    socket.conversation_id = conversation_id
    socket.pump = None if conversation_id is None else asyncio.ensure_future(asyncio.sleep(0))
    return socket, ws


def _stored(seq: int, conversation_id: int = 7) -> IntakeResult:
    message = {
        "id": 100 + seq,
        "conversation_id": conversation_id,
        "seq": seq,
        "direction": "in",
        "author_kind": "customer",
        "author_user_id": None,
        "text": f"message {seq}",
        "private": False,
        "delivery_status": "received",
        "delivery_error": None,
        "created_at": "2026-12-05T10:00:00+00:00",
        "attachments": [],
    }
    return IntakeResult(100 + seq, conversation_id, 3, seq, False, message)


@pytest.mark.parametrize(
    ("cursor", "conversation_id", "carried"),
    [
        (2, 7, True),  # the next one this socket expects
        (1, 7, False),  # seq 2 (say an agent's reply) is not shown yet: no skipping past it
        (0, None, False),  # the socket does not follow the conversation yet
        (2, 8, False),  # another conversation (never happens; still not shown here)
    ],
)
async def test_the_ack_carries_the_message_only_when_it_is_next_in_seq_order(
    cursor: int, conversation_id: int | None, carried: bool
) -> None:
    socket, ws = _socket_at(cursor, conversation_id)
    await socket.acknowledge("client-0001", _stored(3))
    (ack,) = ws.sent
    assert (ack["type"], ack["seq"], ack["message_id"]) == ("ack", 3, 103)
    if carried:
        assert ack["message"]["text"] == "message 3" and "private" not in ack["message"]
        assert socket.cursor == 3
        # Its event, back from the bus, shows nothing more.
        await socket.deliver(_stored(3).message or {})
        assert len(ws.sent) == 1
    else:
        assert "message" not in ack
        assert socket.cursor == cursor


async def test_typing_shows_both_ways(client: AppClient, db: Any) -> None:
    await create_user(db, "kim@example.com", name="Kim")
    _, token = await widget_session(client)
    widget = await client.ws_connect(f"/widget/ws?token={token}")
    await widget.send_json({"type": "message", "client_msg_id": "typing-0001", "text": "hi"})
    await receive(widget, "ack")
    await login(client, "kim@example.com")
    inbox = await client.ws_connect("/inbox/ws")
    await inbox.send_json({"type": "ping"})
    await receive(inbox, "pong")  # subscribed before anyone types

    await widget.send_json({"type": "typing", "typing": True})
    seen = await receive(inbox, "conversation.typing")
    assert seen["data"]["side"] == "customer" and seen["data"]["typing"] is True
    conversation_id = seen["data"]["conversation_id"]

    await inbox.send_json({"type": "typing", "conversation_id": conversation_id, "typing": True})
    shown = await receive(widget, "typing")
    assert shown == {"type": "typing", "name": "Kim", "typing": True}
    await widget.close()
    await inbox.close()


async def test_stopping_the_server_closes_sockets_with_going_away(
    aiohttp_server: Any, settings: Any
) -> None:
    """Clients reconnect at once (to another process) instead of waiting on a heartbeat."""
    import aiohttp

    from switchboard.app import create_app

    server = await aiohttp_server(create_app(settings))
    async with aiohttp.ClientSession() as http:
        session = await http.post(
            server.make_url("/widget/session"),
            json={"inbox": await _public_key(server.app)},
        )
        token = (await session.json())["token"]
        widget = await http.ws_connect(server.make_url(f"/widget/ws?token={token}"))
        assert (await receive(widget, "hello"))["type"] == "hello"
        goodbye = asyncio.create_task(widget.receive(timeout=5))
        await server.close()
        assert (await goodbye).type == aiohttp.WSMsgType.CLOSE
        assert widget.close_code == 1001


async def _public_key(app: Any) -> str:
    from sqlalchemy import select

    from conversations.models import Inbox
    from switchboard.appkeys import DB

    async with app[DB].reading() as s:
        key: str = (await s.execute(select(Inbox.public_key))).scalar_one()
    return key
