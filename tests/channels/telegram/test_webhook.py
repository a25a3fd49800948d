"""The Telegram webhook of the real app: hostile and repeated deliveries
(SECURITY.md 4: 5, 7, 8, 9, 10, 11)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from conversations.models import Conversation, InboundEvent, Message
from switchboard.tx import Database
from tests.channels.telegram.support import (
    SECRET,
    WEBHOOK,
    count,
    eventually,
    payload,
    post_update,
    texts_in,
)
from tests.conftest import AppClient
from tests.fakes.telegram_api import TOKEN

ClientMaker = Callable[..., Awaitable[AppClient]]


async def nothing_stored(db: Database) -> bool:
    return (
        await count(db, InboundEvent) == 0
        and await count(db, Message) == 0
        and await count(db, Conversation) == 0
    )


async def test_a_wrong_or_missing_secret_is_403_and_nothing_is_stored(
    tg_client: ClientMaker, db: Database
) -> None:
    client = await tg_client()
    for secret in (None, "", "not-the-secret"):
        status, body = await post_update(client, payload("private_text"), secret=secret)
        assert status == 403
        assert body["error"] == "rejected"
    assert await nothing_stored(db)


async def test_an_inbox_without_a_secret_takes_no_webhooks(
    make_client: Any, telegram_api: Any, db: Database
) -> None:
    client = await make_client(telegram_bot_token=TOKEN, telegram_api_url=telegram_api.url)
    for secret in (None, ""):
        status, _ = await post_update(client, payload("private_text"), secret=secret)
        assert status == 403
    assert await nothing_stored(db)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", "application/json"),
        (b"{oops", "application/json"),
        (b"[]", "application/json"),
        (b'{"update_id": 9223372036854775808, "message": {}}', "application/json"),
        (b'{"update_id": true}', "application/json"),
        (b'{"update_id": 5, "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", "application/json"),
        (json.dumps(payload("private_text")).encode(), "text/plain"),
        (
            json.dumps({"update_id": 7, "message": {"chat": {"id": "1"}}}).encode(),
            "application/json",
        ),
    ],
)
async def test_a_malformed_body_is_a_plain_400_with_nothing_stored(
    tg_client: ClientMaker, db: Database, body: bytes, content_type: str
) -> None:
    client = await tg_client()
    status, answer = await post_update(client, body, content_type=content_type)
    assert status == 400
    assert set(answer) == {"error", "message"} and "Traceback" not in answer["message"]
    assert await nothing_stored(db)


async def test_oversized_and_compressed_bodies_are_refused(
    tg_client: ClientMaker, db: Database
) -> None:
    client = await tg_client()
    headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET}
    huge = b'{"update_id": 1, "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    assert (await client.post(WEBHOOK, data=huge, headers=headers)).status == 413
    bomb = gzip.compress(b'{"update_id": 2, "pad": "' + b"0" * (5 * 1024 * 1024) + b'"}')
    response = await client.post(
        WEBHOOK, data=bomb, headers={**headers, "Content-Encoding": "gzip"}
    )
    assert response.status in (400, 413, 415)
    assert await nothing_stored(db)


async def test_unknown_update_types_are_200_logged_and_not_stored(
    tg_client: ClientMaker, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    client = await tg_client()
    caplog.set_level("INFO")
    for name in ("unknown_update", "channel_post"):
        status, _ = await post_update(client, payload(name))
        assert status == 200
    assert await nothing_stored(db)
    assert "message_reaction" in caplog.text and "channel_post" in caplog.text


async def test_a_redelivered_update_is_one_message(tg_client: ClientMaker, db: Database) -> None:
    client = await tg_client()
    update = payload("private_text")
    for _ in range(3):
        status, _ = await post_update(client, update)
        assert status == 200
    assert await eventually(lambda: texts_in(db, "chat:1111111")) == [
        "Hello, my parcel has not arrived"
    ]
    assert await count(db, InboundEvent) == 1
    # A redelivery after it was processed is still nothing new.
    assert (await post_update(client, update))[0] == 200
    assert await count(db, Message) == 1


async def test_updates_delivered_out_of_order_show_in_the_order_they_were_written(
    tg_client: ClientMaker, db: Database
) -> None:
    # Generous hold: the missing update arrives long before it would run out.
    client = await tg_client(inbound_reorder_hold=30)
    first = payload("private_text", update_id=500)

    def written(update_id: int, message_id: int, text: str) -> dict[str, Any]:
        update = payload("private_text", update_id=update_id)
        update["message"].update(message_id=message_id, text=text)
        return update

    assert (await post_update(client, first))[0] == 200
    await eventually(lambda: texts_in(db, "chat:1111111"))
    assert (await post_update(client, written(502, 1367, "third")))[0] == 200
    assert (await post_update(client, written(501, 1366, "second")))[0] == 200

    async def all_three() -> list[str]:
        texts = await texts_in(db, "chat:1111111")
        return texts if len(texts) == 3 else []

    assert await eventually(all_three) == ["Hello, my parcel has not arrived", "second", "third"]
