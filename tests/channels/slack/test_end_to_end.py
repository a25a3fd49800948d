"""A customer writes in a Slack thread; an agent sees it live, replies; the reply lands in
that thread. And a rate-limited reply waits for Slack's Retry-After, then goes out once."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from channels.slack.adapter import SlackAdapter
from conversations.models import Conversation, OutboxEntry
from customers.models import Identity
from switchboard.appkeys import INBOUND, OUTBOX, REGISTRY
from switchboard.db import utcnow
from tests.channels.slack.support import SECRET, TOKEN, eventually, payload, post_event
from tests.conftest import AppClient, ClientFactory, create_user, login
from tests.fakes.slack_api import FakeSlackApi
from tests.security.support import agent_token, bearer, receive

ROOT = "1700000000.000200"


async def test_slack_thread_to_agent_and_back(
    slack_client: AppClient, slack_api: FakeSlackApi, db: Any
) -> None:
    await create_user(db, "alex@example.com")
    csrf = await login(slack_client, "alex@example.com")
    inbox = await slack_client.ws_connect("/inbox/ws")
    await inbox.send_json({"type": "ping"})
    await receive(inbox, "pong")  # subscribed before the customer writes

    status, _ = await post_event(slack_client, payload("channel_message"))
    assert status == 200
    created = (await receive(inbox, "message.created"))["data"]
    assert created["message"]["text"].startswith("printer is on fire")
    assert created["message"]["author_kind"] == "customer"
    conversation_id = created["conversation_id"]
    async with db.reading() as session:
        conversation = await session.get(Conversation, conversation_id)
        assert conversation is not None and conversation.channel == "slack"
        identity = (
            await session.execute(
                select(Identity).where(Identity.customer_id == conversation.customer_id)
            )
        ).scalar_one()
    assert (identity.channel, identity.external_id) == ("slack", "U0CUST")

    answer = await slack_client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        json={"text": "We are on it: please unplug the printer."},
        headers={"X-CSRF-Token": csrf},
    )
    assert answer.status == 201, await answer.text()
    [posted] = await eventually(lambda: _posted(slack_api), what="the reply at Slack")
    assert (posted.channel, posted.thread_ts) == ("C0SUPPORT", ROOT)
    assert posted.text == "We are on it: please unplug the printer."
    while True:
        updated = (await receive(inbox, "message.updated"))["data"]["message"]
        if updated["direction"] == "out" and updated["delivery_status"] == "sent":
            break

    # Slack echoes our reply into the thread: not a customer message.
    echo = payload("own_echo", ts=posted.ts, text=posted.text)
    assert (await post_event(slack_client, echo))[0] == 200
    # The customer answers in the thread: the same conversation, live again.
    status, _ = await post_event(slack_client, payload("thread_reply"))
    assert status == 200
    again = (await receive(inbox, "message.created"))["data"]
    assert again["conversation_id"] == conversation_id
    assert again["message"]["text"] == "it is still smoking"
    assert again["message"]["seq"] == 3  # message, our reply, this: no echo in between
    await inbox.close()


async def _posted(slack_api: FakeSlackApi) -> list[Any] | None:
    return slack_api.posted or None


async def test_a_rate_limited_reply_waits_for_retry_after(
    make_client: ClientFactory, slack_api: FakeSlackApi, db: Any
) -> None:
    client = await make_client(
        slack_bot_token=TOKEN,
        slack_signing_secret=SECRET,
        slack_api_url=slack_api.api_url,
        run_workers=False,  # the test drives the processor and the outbox itself
    )
    assert (await post_event(client, payload("dm_message")))[0] == 200
    assert await client.app[INBOUND].run_once() == 1
    token = await agent_token(db)
    listing = await (await client.get("/api/v1/conversations", headers=bearer(token))).json()
    conversation_id = listing["conversations"][0]["id"]
    answer = await client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        json={"text": "Checking now."},
        headers=bearer(token),
    )
    assert answer.status == 201

    slack_api.fail_next("chat.postMessage", 429, retry_after=30)
    before = utcnow()
    assert await client.app[OUTBOX].run_once() == 1
    async with db.reading() as session:
        entry = (await session.execute(select(OutboxEntry))).scalar_one()
    assert entry.status == "pending" and entry.attempts == 1
    assert entry.next_attempt_at >= before + timedelta(seconds=30)
    assert slack_api.posted == []
    assert await client.app[OUTBOX].run_once() == 0  # not due yet: nothing is sent early

    # Thirty seconds later (for the outbox row and for the adapter's channel pacing).
    await db.run(lambda s: s.execute(update(OutboxEntry).values(next_attempt_at=utcnow())))
    adapter = await client.app[REGISTRY].for_inbox(entry.inbox_id, "slack")
    assert isinstance(adapter, SlackAdapter)
    adapter.pacer.clock = lambda: time.monotonic() + 31
    assert await client.app[OUTBOX].run_once() == 1
    [posted] = slack_api.posted
    assert (posted.channel, posted.thread_ts, posted.text) == (
        "D0DMCUST",
        None,  # a DM top-level reply: no thread
        "Checking now.",
    )
    assert len(slack_api.calls_to("chat.postMessage")) == 2
