"""Hostile input on the widget's edges: frames, tokens, text (SECURITY.md 4: 22, 23, 37-39).

Each refusal is followed, on the same socket or setup, by the input that is accepted.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any

import pytest
from aiohttp import WSCloseCode, WSMsgType, WSServerHandshakeError
from itsdangerous import TimestampSigner

from channels.webchat.tokens import TOKEN_MAX_AGE_SECONDS
from switchboard.appkeys import VISITOR_TOKENS
from tests.conftest import AppClient, ClientFactory, widget_session
from tests.security.support import (
    agent_token,
    bearer,
    conversation_count,
    new_visitor,
    open_widget,
    receive,
    reply_to,
    send_text,
    stored_texts,
)

# --- malformed frames --------------------------------------------------------------------

BAD_FRAMES: list[tuple[str, str]] = [
    ("{not json", "bad_json"),
    ('{"type": "message", "text": "unterminated', "bad_json"),
    ("[1, 2, 3]", "bad_frame"),
    ('"just a string"', "bad_frame"),
    ("null", "bad_frame"),
    ("[" * 30_000 + "]" * 30_000, "bad_json"),
    (
        '{"type":"message","client_msg_id":"deep-0001","text":' + "[" * 20_000 + "]" * 20_000 + "}",
        "bad_json",
    ),
    ('{"type": "shutdown"}', "unknown_type"),
    ('{"text": "no type"}', "unknown_type"),
    ('{"type": "message", "text": "no id"}', "bad_frame"),
    ('{"type": "message", "client_msg_id": "short", "text": "id too short"}', "bad_frame"),
    ('{"type": "message", "client_msg_id": "number-0001", "text": 12345}', "invalid_text"),
    (
        '{"type": "message", "client_msg_id": "attach-0001", "text": "x", "attachments": "att_x"}',
        "bad_frame",
    ),
    ('{"type": "resume", "last_seq": 99999999999999999999999}', "bad_frame"),
    ('{"type": "resume", "last_seq": -1}', "bad_frame"),
]


async def test_malformed_frames_get_an_error_and_the_socket_keeps_working(
    client: AppClient, db: Any
) -> None:
    token, _ = await new_visitor(client)
    ws = await open_widget(client, token)
    for n, (raw, code) in enumerate(BAD_FRAMES):
        await ws.send_str(raw)
        answer = await reply_to(ws)
        assert answer["type"] == "error", raw[:60]
        assert answer["code"] == code, raw[:60]
        assert "Traceback" not in answer["message"]
        # ...and a valid message right after is still taken.
        ok = await send_text(ws, f"valid-{n:04d}", f"valid {n}")
        assert ok["type"] == "ack", (raw[:60], ok)
    await ws.send_bytes(b"\x00\x01binary")
    answer = await reply_to(ws)
    assert answer == {
        "type": "error",
        "code": "bad_frame",
        "message": "binary frames are not accepted",
    }
    assert (await send_text(ws, "valid-after-binary", "still here"))["type"] == "ack"
    await ws.close()
    assert len(await stored_texts(db)) == len(BAD_FRAMES) + 1


async def test_frame_over_the_size_cap_closes_1009_and_stores_nothing(
    client: AppClient, db: Any
) -> None:
    token, _ = await new_visitor(client)
    frame = {"type": "message", "client_msg_id": "big-frame-0001", "text": "padded message"}
    small = json.dumps({**frame, "pad": "x" * 1000})
    big = json.dumps({**frame, "pad": "x" * (64 * 1024)})  # otherwise a valid message

    ws = await open_widget(client, token)
    await ws.send_str(big)
    closing = await asyncio.wait_for(ws.receive(), 5)
    assert closing.type == WSMsgType.CLOSE
    assert ws.close_code == 1009  # WSCloseCode.MESSAGE_TOO_BIG
    assert await stored_texts(db) == []

    # The same message under the cap is stored.
    again = await open_widget(client, token)
    await again.send_str(small)
    assert (await reply_to(again))["type"] == "ack"
    await again.close()
    assert await stored_texts(db) == ["padded message"]


async def test_flood_is_throttled_then_closed_while_others_keep_working(
    client: AppClient, db: Any
) -> None:
    api = bearer(await agent_token(db))
    flooder_token, _ = await new_visitor(client)
    calm_token, _ = await new_visitor(client)
    calm = await open_widget(client, calm_token)
    flood = await open_widget(client, flooder_token)

    # 25 sends then 40 pings, all at once: the server allows 20 sends per 10 s and closes
    # the socket at the 61st frame.
    for n in range(25):
        await flood.send_str(
            json.dumps({"type": "message", "client_msg_id": f"flood-{n:04d}", "text": f"f{n}"})
        )
    for _ in range(40):
        await flood.send_str('{"type": "ping"}')

    # Meanwhile another visitor and an agent are served.
    assert (await send_text(calm, "calm-0001", "I am a calm customer"))["type"] == "ack"
    listing = await client.get("/api/v1/conversations", headers=api)
    assert listing.status == 200

    seen: Counter[str] = Counter()
    async with asyncio.timeout(20):
        while True:
            msg = await flood.receive()
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
                break
            frame = json.loads(msg.data)
            seen[frame["type"] if frame["type"] != "error" else frame["code"]] += 1
    assert flood.close_code == 1008  # WSCloseCode.POLICY_VIOLATION
    assert seen["ack"] == 20
    assert seen["rate_limited"] == 5
    assert seen["pong"] == 35

    # The calm visitor's socket is still open and still taken.
    assert (await send_text(calm, "calm-0002", "still here"))["type"] == "ack"
    await calm.close()
    texts = await stored_texts(db)
    assert sorted(t for t in texts if t.startswith("f")) == sorted(f"f{n}" for n in range(20))
    assert "I am a calm customer" in texts and "still here" in texts


async def test_binary_frames_count_towards_the_flood_limit(client: AppClient) -> None:
    token, _ = await new_visitor(client)
    ws = await open_widget(client, token)
    for _ in range(60):
        await ws.send_bytes(b"\x00")
        assert (await reply_to(ws))["code"] == "bad_frame"
    await ws.send_bytes(b"\x00")  # the 61st frame in the window
    async with asyncio.timeout(5):
        while (await ws.receive()).type not in (WSMsgType.CLOSE, WSMsgType.CLOSED):
            pass
    assert ws.close_code == WSCloseCode.POLICY_VIOLATION


# --- visitor tokens ----------------------------------------------------------------------


def _swap_signature(token: str, donor: str) -> str:
    """The payload of `token` carrying the timestamp and signature of `donor`."""
    payload = token.split(".")[0]
    return payload + "." + ".".join(donor.split(".")[1:])


def _alter_signature(token: str) -> str:
    head, signature = token.rsplit(".", 1)
    first = "A" if signature[0] != "A" else "B"  # the first character is all signal bits
    return f"{head}.{first}{signature[1:]}"


async def _handshake_status(client: AppClient, url: str) -> int:
    try:
        ws = await client.ws_connect(url)
    except WSServerHandshakeError as exc:
        return exc.status
    await ws.close()
    return 101


async def test_forged_expired_and_missing_tokens_cannot_open_the_socket(
    client: AppClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    public_key, victim = await widget_session(client)
    _, attacker = await widget_session(client)
    tokens = client.app[VISITOR_TOKENS]
    with monkeypatch.context() as patched:
        stale = int(time.time()) - TOKEN_MAX_AGE_SECONDS - 3600
        patched.setattr(TimestampSigner, "get_timestamp", lambda self: stale)
        _, expired = tokens.issue(public_key)
    _, no_such_inbox = tokens.issue("wc_no_such_inbox_000000")

    assert await _handshake_status(client, f"/widget/ws?token={victim}") == 101
    assert (
        await _handshake_status(client, f"/widget/ws?token={_swap_signature(victim, attacker)}")
        == 401
    )
    assert await _handshake_status(client, f"/widget/ws?token={_alter_signature(victim)}") == 401
    assert await _handshake_status(client, f"/widget/ws?token={expired}") == 401
    assert await _handshake_status(client, f"/widget/ws?token={'x' * 600}") == 401
    assert await _handshake_status(client, "/widget/ws?token=") == 401
    assert await _handshake_status(client, "/widget/ws") == 401
    assert await _handshake_status(client, f"/widget/ws?token={no_such_inbox}") == 404


async def test_session_renewal_with_a_bad_token_starts_a_new_anonymous_visitor(
    client: AppClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    public_key, _ = await widget_session(client)
    victim = await (await client.post("/widget/session", json={"inbox": public_key})).json()
    attacker = await (await client.post("/widget/session", json={"inbox": public_key})).json()
    tokens = client.app[VISITOR_TOKENS]
    with monkeypatch.context() as patched:
        stale = int(time.time()) - TOKEN_MAX_AGE_SECONDS - 3600
        patched.setattr(TimestampSigner, "get_timestamp", lambda self: stale)
        _, expired = tokens.issue(public_key, victim["visitor_id"])

    async def renew(token: str) -> dict[str, Any]:
        response = await client.post("/widget/session", json={"inbox": public_key, "token": token})
        assert response.status == 200
        data: dict[str, Any] = await response.json()
        return data

    # The genuine token keeps its visitor...
    assert (await renew(victim["token"]))["visitor_id"] == victim["visitor_id"]
    # ...a forged or stale one names the victim but gets a brand-new visitor.
    for bad in (
        _swap_signature(victim["token"], attacker["token"]),
        _alter_signature(victim["token"]),
        expired,
        "garbage",
        "\ud800" + victim["token"],  # a lone surrogate (legal in a JSON escape)
        "é" + victim["token"],
    ):
        renewed = await renew(bad)
        assert renewed["visitor_id"] not in (victim["visitor_id"], attacker["visitor_id"])
        assert renewed["visitor_id"].startswith("v_")


async def test_visitor_token_header_that_is_not_utf8_is_401_not_a_crash(client: AppClient) -> None:
    _, token = await widget_session(client)

    async def raw_get(token_bytes: bytes) -> bytes:
        reader, writer = await asyncio.open_connection(client.host, client.port)
        writer.write(
            b"GET /widget/attachments/att_0000000000000000 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"X-Visitor-Token: " + token_bytes + b"\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()
        answer = await reader.read()
        writer.close()
        await writer.wait_closed()
        return answer

    assert (await raw_get(token.encode())).startswith(b"HTTP/1.1 404")  # valid token, no file
    assert (await raw_get(b"\xff\xfe" + token.encode())).startswith(b"HTTP/1.1 401")


async def test_unknown_inbox_key_is_404_on_frame_and_session(client: AppClient) -> None:
    public_key, _ = await widget_session(client)
    assert (await client.get("/widget/frame", params={"inbox": public_key})).status == 200
    assert (await client.post("/widget/session", json={"inbox": public_key})).status == 200
    for key in ("wc_no_such_inbox_000000", "", "x" * 3000, "default"):
        frame = await client.get("/widget/frame", params={"inbox": key})
        assert frame.status == 404, key
        session = await client.post("/widget/session", json={"inbox": key})
        assert session.status == 404, key
        assert (await session.json())["error"]["code"] == "not_found"


# --- message text ------------------------------------------------------------------------


async def _agent_view(client: AppClient, db: Any) -> list[dict[str, Any]]:
    """Every message as an agent reads it through the API."""
    api = bearer(await agent_token(db, "reader@example.com"))
    listing = await (await client.get("/api/v1/conversations", headers=api)).json()
    messages: list[dict[str, Any]] = []
    for conversation in listing["conversations"]:
        page = await client.get(f"/api/v1/conversations/{conversation['id']}/messages", headers=api)
        messages.extend((await page.json())["messages"])
    return messages


async def test_nul_and_control_bytes_are_stripped_not_fatal(client: AppClient, db: Any) -> None:
    token, _ = await new_visitor(client)
    ws = await open_widget(client, token)
    assert (await send_text(ws, "nul-00000001", "hel\x00lo\x07 wor\x00ld\n\tok"))["type"] == "ack"
    await ws.close()
    [message] = await _agent_view(client, db)
    assert message["text"] == "hello world\n\tok"


async def test_lone_surrogate_is_refused_and_nothing_is_stored(client: AppClient, db: Any) -> None:
    token, _ = await new_visitor(client)
    ws = await open_widget(client, token)
    await ws.send_str(r'{"type":"message","client_msg_id":"abcdefgh","text":"\ud800"}')
    answer = await reply_to(ws)
    assert answer["type"] == "error"
    assert answer["code"] == "invalid_text"
    assert answer["client_msg_id"] == "abcdefgh"
    assert await stored_texts(db) == []
    # A proper surrogate pair (an escaped emoji) in the same frame is fine.
    await ws.send_str(r'{"type":"message","client_msg_id":"abcdefgh","text":"\ud83d\ude00"}')
    assert (await reply_to(ws))["type"] == "ack"
    await ws.close()
    assert await stored_texts(db) == ["😀"]


HARD_TEXT = (
    "👩‍👩‍👧‍👦👨🏽‍💻🏳️‍🌈🇺🇦 "  # ZWJ sequences, skin tone, flags
    "שלום עולם مرحبا بالعالم "  # Hebrew and Arabic
    "\u202eRTL override\u202c \u2067isolate\u2069 \u200f\u200e "  # direction controls
    "e\u0301 a\u0308\u0323 Z\u0351\u0354\u0355\u0356 "  # combining marks
    "zero\u200bwidth\u200cjoin\u200dner\ufeff "  # zero-width characters and a BOM
    "𝕳𝖊𝖑𝖑𝖔 ﷽ 𒐫"  # astral letters, the widest glyphs
)


async def test_emoji_rtl_and_combining_text_is_stored_byte_exact(
    client: AppClient, db: Any
) -> None:
    text = (HARD_TEXT * 200)[:9_990]
    token, _ = await new_visitor(client)
    ws = await open_widget(client, token)
    assert (await send_text(ws, "hard-text-0001", text))["type"] == "ack"
    assert (await send_text(ws, "hard-text-0002", HARD_TEXT))["type"] == "ack"
    await ws.close()
    messages = await _agent_view(client, db)
    assert [m["text"].encode("utf-8") for m in messages] == [
        text.encode("utf-8"),
        HARD_TEXT.encode("utf-8"),
    ]


async def test_text_over_10000_characters_is_refused(client: AppClient, db: Any) -> None:
    token, _ = await new_visitor(client)
    ws = await open_widget(client, token)
    too_long = await send_text(ws, "long-text-0001", "y" * 10_001)
    assert too_long["type"] == "error"
    assert too_long["code"] == "text_too_long"
    # Counted in characters (code points), not bytes or UTF-16 units.
    emoji_too_long = await send_text(ws, "long-text-0002", "😀" * 10_001)
    assert emoji_too_long["code"] == "text_too_long"
    assert (await send_text(ws, "long-text-0003", "x" * 10_000))["type"] == "ack"
    assert (await send_text(ws, "long-text-0004", "😀" * 10_000))["type"] == "ack"
    await ws.close()
    assert await stored_texts(db) == ["x" * 10_000, "😀" * 10_000]


async def test_two_sockets_starting_a_chat_at_once_open_one_conversation(
    client: AppClient, db: Any
) -> None:
    for round_ in range(3):
        token, _ = await new_visitor(client)
        first, second = await open_widget(client, token), await open_widget(client, token)
        await asyncio.gather(
            first.send_json(
                {"type": "message", "client_msg_id": f"tab-one-{round_}", "text": "from tab one"}
            ),
            second.send_json(
                {"type": "message", "client_msg_id": f"tab-two-{round_}", "text": "from tab two"}
            ),
        )
        acks = await asyncio.gather(receive(first, "ack"), receive(second, "ack"))
        assert sorted(a["seq"] for a in acks) == [1, 2]
        await first.close()
        await second.close()
        assert await conversation_count(db) == round_ + 1


async def test_the_send_limit_is_a_setting(make_client: ClientFactory) -> None:
    client = await make_client(widget_send_limit=3)
    token, _ = await new_visitor(client)
    ws = await open_widget(client, token)
    answers = [(await send_text(ws, f"limit-{n:04d}", f"message {n}"))["type"] for n in range(4)]
    assert answers == ["ack", "ack", "ack", "error"]
    await ws.close()
