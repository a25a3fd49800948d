"""The agent inbox socket: cross-site hijacking guard and hostile frames (SECURITY.md 4: 32)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import WSServerHandshakeError

from tests.conftest import AppClient, create_user, login
from tests.security.support import conversation_of, new_visitor, open_widget, receive, send_text

HUB_ORIGIN = "http://127.0.0.1:8080"  # the public URL in the test settings


async def handshake(client: AppClient, headers: dict[str, str]) -> int:
    try:
        ws = await client.ws_connect("/inbox/ws", headers=headers)
    except WSServerHandshakeError as exc:
        return exc.status
    await ws.send_json({"type": "ping"})
    assert (await receive(ws, "pong"))["type"] == "pong"
    await ws.close()
    return 101


async def test_inbox_socket_needs_our_origin_and_a_session(client: AppClient, db: Any) -> None:
    await create_user(db, "alex@example.com")
    await login(client, "alex@example.com")
    reached_as = f"http://{client.host}:{client.port}"

    assert await handshake(client, {"Origin": HUB_ORIGIN}) == 101
    assert await handshake(client, {"Origin": reached_as}) == 101
    for foreign in (
        "https://evil.example",
        "null",
        HUB_ORIGIN + ".evil.example",
        "https://127.0.0.1:8080",
        "http://127.0.0.1:8081",
    ):
        assert await handshake(client, {"Origin": foreign}) == 403, foreign

    client.session.cookie_jar.clear()
    assert await handshake(client, {"Origin": HUB_ORIGIN}) == 401


async def test_typing_for_a_conversation_that_does_not_exist_is_an_error_frame(
    client: AppClient, db: Any
) -> None:
    await create_user(db, "alex@example.com")
    visitor, visitor_id = await new_visitor(client)
    widget = await open_widget(client, visitor)
    assert (await send_text(widget, "hello-0001", "anyone there?"))["type"] == "ack"
    conversation_id = await conversation_of(db, visitor_id)
    await login(client, "alex@example.com")
    ws = await client.ws_connect("/inbox/ws", headers={"Origin": HUB_ORIGIN})

    for bad_id, code in [
        (9999, "not_found"),
        (0, "not_found"),
        (-1, "not_found"),
        (2**31, "not_found"),
        (2**63, "not_found"),
        (10**40, "not_found"),
        ("1", "bad_frame"),
        (True, "bad_frame"),
        (None, "bad_frame"),
        (1.5, "bad_frame"),
    ]:
        await ws.send_json({"type": "typing", "conversation_id": bad_id, "typing": True})
        answer = await receive(ws, "error")
        assert answer["code"] == code, bad_id
        # The socket is still open and answering.
        await ws.send_json({"type": "ping"})
        assert (await receive(ws, "pong"))["type"] == "pong"

    for raw, code in [
        ("{oops", "bad_json"),
        ("[]", "bad_frame"),
        ('{"type": "drop"}', "unknown_type"),
    ]:
        await ws.send_str(raw)
        assert (await receive(ws, "error"))["code"] == code

    # Typing in the visitor's real conversation reaches the visitor.
    await ws.send_json({"type": "typing", "conversation_id": conversation_id, "typing": True})
    typing = await receive(widget, "typing")
    assert typing["typing"] is True
    await ws.close()
    await widget.close()


async def test_logging_out_closes_the_open_inbox_socket_of_that_session(
    make_client: Any, db: Any
) -> None:
    """SECURITY.md 4: 30/33 — revocation reaches sockets that are already open; the same
    user's other sessions stay connected."""
    await create_user(db, "alex@example.com")
    first, second = await make_client(), await make_client()
    csrf = await login(first, "alex@example.com")
    await login(second, "alex@example.com")
    ws_first = await first.ws_connect("/inbox/ws", headers={"Origin": HUB_ORIGIN})
    ws_second = await second.ws_connect("/inbox/ws", headers={"Origin": HUB_ORIGIN})
    for ws in (ws_first, ws_second):
        await ws.send_json({"type": "ping"})
        await receive(ws, "pong")

    out = await first.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert out.status == 303

    closing = await ws_first.receive(timeout=5)
    assert closing.type.name in ("CLOSE", "CLOSED", "CLOSING")
    assert ws_first.close_code == 1008
    await ws_second.send_json({"type": "ping"})
    assert (await receive(ws_second, "pong"))["type"] == "pong"
    await ws_second.close()


async def test_a_typing_flood_reaches_nobody_and_closes_the_socket(
    client: AppClient, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each typing frame used to be a database read plus a publish to every agent socket
    and the customer's widget, with no limit (found in review): repeats are now dropped
    before either, and a socket sending far over its budget is closed with 1008."""
    import asyncio

    from aiohttp import WSMsgType

    import web.inbox

    # "Still typing" is news again after 2 s; a loaded CI machine once took longer than
    # that over the ten frames below, and the customer rightly heard it twice.
    monkeypatch.setattr(web.inbox, "TYPING_REPEAT_SECONDS", 60.0)
    await create_user(db, "alex@example.com")
    visitor, visitor_id = await new_visitor(client)
    widget = await open_widget(client, visitor)
    assert (await send_text(widget, "hello-0001", "anyone there?"))["type"] == "ack"
    conversation_id = await conversation_of(db, visitor_id)
    await login(client, "alex@example.com")
    ws = await client.ws_connect("/inbox/ws", headers={"Origin": HUB_ORIGIN})

    # A page typing normally: the customer hears "typing" once, not once per frame.
    for _ in range(10):
        await ws.send_json({"type": "typing", "conversation_id": conversation_id, "typing": True})
    await ws.send_json({"type": "ping"})
    assert (await receive(ws, "pong"))["type"] == "pong"
    heard = []
    while True:
        try:
            frame = await asyncio.wait_for(widget.receive_json(), 0.5)
        except TimeoutError:
            break
        if frame.get("type") == "typing":
            heard.append(frame)
    assert len(heard) == 1

    # A flood: answered "too_many", then closed as a policy violation.
    codes = []
    for n in range(200):
        if ws.closed:
            break
        await ws.send_json(
            {"type": "typing", "conversation_id": conversation_id, "typing": bool(n % 2)}
        )
    while True:
        msg = await asyncio.wait_for(ws.receive(), 5)
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
            break
        if msg.type == WSMsgType.TEXT and '"error"' in msg.data:
            codes.append(msg.json()["code"])
    assert "too_many" in codes and ws.close_code == 1008
