"""A customer writes to the bot; an agent sees it live and answers; the answer reaches
the customer's chat on Telegram (the fake Bot API)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import ClientWebSocketResponse
from sqlalchemy import select

from customers.models import Customer, Identity
from switchboard.tx import Database
from tests.channels.telegram.support import api_calls, payload, post_update
from tests.conftest import AppClient, create_user, login
from tests.fakes.telegram_api import FakeTelegramApi
from tests.security.support import receive, tiny_png, use_cheap_password_hashing

ClientMaker = Callable[..., Awaitable[AppClient]]


@pytest.fixture(autouse=True)
def _cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    use_cheap_password_hashing(monkeypatch)  # logins are not what is tested here


async def next_customer_message(ws: ClientWebSocketResponse) -> dict[str, Any]:
    while True:
        frame = await receive(ws, "message.created")
        data: dict[str, Any] = frame["data"]
        if data["message"]["author_kind"] == "customer":
            return data


async def agent_inbox(client: AppClient, db: Database) -> tuple[str, ClientWebSocketResponse]:
    await create_user(db, "alex@example.com")
    csrf = await login(client, "alex@example.com")
    ws = await client.ws_connect("/inbox/ws")
    await ws.send_json({"type": "ping"})
    await receive(ws, "pong")  # subscribed before anything is posted
    return csrf, ws


async def answer(client: AppClient, csrf: str, conversation_id: int, text: str) -> None:
    response = await client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        json={"text": text},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status == 201, await response.text()


async def test_message_reaches_the_agent_live_and_the_reply_reaches_the_chat(
    tg_client: ClientMaker, db: Database, telegram_api: FakeTelegramApi
) -> None:
    client = await tg_client()
    csrf, inbox = await agent_inbox(client, db)

    assert (await post_update(client, payload("private_text")))[0] == 200
    created = await next_customer_message(inbox)
    assert created["message"]["text"] == "Hello, my parcel has not arrived"
    conversation_id = created["conversation_id"]
    async with db.reading() as session:
        identity = (
            await session.execute(
                select(Identity).where(
                    Identity.channel == "telegram", Identity.external_id == "1111111"
                )
            )
        ).scalar_one()
        customer = await session.get(Customer, identity.customer_id)
    assert customer is not None and customer.name == "Ann Lee"
    assert created["conversation"]["customer_id"] == customer.id

    await answer(client, csrf, conversation_id, "Sorry! It left our warehouse today.")
    (sent,) = await api_calls(telegram_api, "sendMessage")
    assert sent.chat_id == 1111111
    assert sent.fields["text"] == "Sorry! It left our warehouse today."
    while True:
        updated = await receive(inbox, "message.updated")
        if updated["data"]["message"]["delivery_status"] == "sent":
            break

    follow_up = payload("private_text", update_id=829104532)
    follow_up["message"].update(message_id=1371, text="Thank you!")
    assert (await post_update(client, follow_up))[0] == 200
    again = await next_customer_message(inbox)
    assert again["message"]["text"] == "Thank you!"
    assert again["conversation_id"] == conversation_id
    assert again["conversation"]["customer_id"] == customer.id
    await inbox.close()


async def test_a_reply_in_a_group_goes_to_the_group(
    tg_client: ClientMaker, db: Database, telegram_api: FakeTelegramApi
) -> None:
    client = await tg_client()
    csrf, inbox = await agent_inbox(client, db)
    assert (await post_update(client, payload("group_text")))[0] == 200
    created = await next_customer_message(inbox)
    await answer(client, csrf, created["conversation_id"], "Yes, 10 to 16.")
    (sent,) = await api_calls(telegram_api, "sendMessage")
    assert (sent.chat_id, sent.fields["text"]) == (-1001234567890, "Yes, 10 to 16.")
    await inbox.close()


async def test_an_agents_file_reaches_the_chat_as_a_photo_with_the_text(
    tg_client: ClientMaker, db: Database, telegram_api: FakeTelegramApi
) -> None:
    client = await tg_client()
    csrf, inbox = await agent_inbox(client, db)
    assert (await post_update(client, payload("private_text")))[0] == 200
    created = await next_customer_message(inbox)
    image = tiny_png()
    form = aiohttp.FormData()
    form.add_field("file", image, filename="return-label.png", content_type="image/png")
    uploaded = await client.post(
        f"/api/v1/uploads?inbox_id={created['inbox_id']}",
        data=form,
        headers={"X-CSRF-Token": csrf},
    )
    assert uploaded.status == 201, await uploaded.text()
    attachment_id = (await uploaded.json())["attachment_id"]
    response = await client.post(
        f"/api/v1/conversations/{created['conversation_id']}/messages",
        json={"text": "Here is your return label.", "attachments": [attachment_id]},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status == 201, await response.text()

    (photo,) = await api_calls(telegram_api, "sendPhoto")
    assert photo.chat_id == 1111111
    assert photo.fields["caption"] == "Here is your return label."
    assert photo.files["photo"].data == image
    assert telegram_api.calls("sendMessage") == []
    await inbox.close()
