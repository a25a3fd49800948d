"""Replies in the outbox delivered to Telegram (the fake): flood control and server
errors retried and delivered once, a block recorded, an unknown outcome left to an
agent (SECURITY.md 4: 44). The worker is driven pass by pass; nothing sleeps."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from channels.base import InboundMessage
from channels.telegram.adapter import TelegramAdapter
from conversations.models import AuthorKind, Message, OutboxEntry
from conversations.outbox import OutboxPolicy, OutboxWorker
from conversations.service import do_intake, do_reply
from customers.models import Identity
from switchboard.adapters import StaticAdapters
from switchboard.db import utcnow
from switchboard.inboxes import do_ensure_inbox
from switchboard.tx import Database
from tests.clock import FakeTime
from tests.fakes.telegram_api import (
    FakeTelegramApi,
    blocked,
    disconnect,
    rate_limited,
    server_error,
)

CHAT = 1111111


@pytest.fixture
async def conversation_id(db: Database) -> int:
    inbox = await db.run(lambda s: do_ensure_inbox(s, key="default", kind="telegram", name="TG"))
    hello = InboundMessage(
        channel="telegram",
        inbox_id=inbox.id,
        sender_id=str(CHAT),
        external_id=f"{CHAT}:1365",
        thread_key=f"chat:{CHAT}",
        text="Where is my parcel?",
        sender_name="Ann Lee",
    )
    return (await db.run(lambda s: do_intake(s, hello))).conversation_id


def worker(db: Database, adapter: TelegramAdapter) -> OutboxWorker:
    return OutboxWorker(db, StaticAdapters({"telegram": adapter}), OutboxPolicy(base_delay=0.01))


async def agent_reply(db: Database, conversation_id: int, text: str) -> int:
    message = await db.run(
        lambda s: do_reply(
            s, conversation_id=conversation_id, text=text, author_kind=AuthorKind.AGENT
        )
    )
    return message.id


async def outbox_row(db: Database, message_id: int) -> OutboxEntry:
    async with db.reading() as session:
        return (
            await session.execute(select(OutboxEntry).where(OutboxEntry.message_id == message_id))
        ).scalar_one()


async def make_due(db: Database, message_id: int) -> None:
    """Let the retry time pass without waiting for it."""

    async def move(session: object) -> None:
        from sqlalchemy.ext.asyncio import AsyncSession

        assert isinstance(session, AsyncSession)
        await session.execute(
            update(OutboxEntry)
            .where(OutboxEntry.message_id == message_id)
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )

    await db.run(move)


async def test_flood_control_delays_the_reply_by_retry_after_then_delivers_it_once(
    db: Database,
    conversation_id: int,
    paced: TelegramAdapter,
    telegram_api: FakeTelegramApi,
    fake_time: FakeTime,
) -> None:
    message_id = await agent_reply(db, conversation_id, "It ships today.")
    telegram_api.script("sendMessage", rate_limited(30))
    before = utcnow()
    assert await worker(db, paced).run_once() == 1

    row = await outbox_row(db, message_id)
    assert row.status == "pending" and "retry after 30" in (row.last_error or "")
    assert row.next_attempt_at >= before + timedelta(seconds=30)
    assert await worker(db, paced).run_once() == 0  # not due yet

    await make_due(db, message_id)
    fake_time.now += 30  # the adapter, too, holds that chat until Telegram's time is up
    assert await worker(db, paced).run_once() == 1
    row = await outbox_row(db, message_id)
    assert (row.status, row.attempts) == ("sent", 2)
    attempts = telegram_api.calls("sendMessage")
    assert [(r.chat_id, r.fields["text"]) for r in attempts] == [(CHAT, "It ships today.")] * 2
    assert row.external_id == f"{CHAT}:5001"  # the fake numbers only messages it accepted


@pytest.mark.parametrize("status", [500, 502])
async def test_a_server_error_is_retried_and_delivered(
    db: Database,
    conversation_id: int,
    paced: TelegramAdapter,
    telegram_api: FakeTelegramApi,
    status: int,
) -> None:
    message_id = await agent_reply(db, conversation_id, "It ships today.")
    telegram_api.script("sendMessage", server_error(status), server_error(status))
    for _ in range(2):
        assert await worker(db, paced).run_once() == 1
        assert (await outbox_row(db, message_id)).status == "pending"
        await make_due(db, message_id)
    assert await worker(db, paced).run_once() == 1
    row = await outbox_row(db, message_id)
    assert (row.status, row.attempts) == ("sent", 3)


async def test_a_blocked_bot_dead_letters_the_reply_and_marks_the_customer_unreachable(
    db: Database, conversation_id: int, paced: TelegramAdapter, telegram_api: FakeTelegramApi
) -> None:
    message_id = await agent_reply(db, conversation_id, "It ships today.")
    telegram_api.script("sendMessage", blocked())
    assert await worker(db, paced).run_once() == 1
    assert (await outbox_row(db, message_id)).status == "dead"
    async with db.reading() as session:
        reachable = (
            await session.execute(
                select(Identity.reachable).where(Identity.external_id == str(CHAT))
            )
        ).scalar_one()
        status = (
            await session.execute(select(Message.delivery_status).where(Message.id == message_id))
        ).scalar_one()
    assert reachable is False and status == "failed"


async def test_an_answer_lost_after_sending_is_left_unconfirmed_not_repeated(
    db: Database, conversation_id: int, paced: TelegramAdapter, telegram_api: FakeTelegramApi
) -> None:
    message_id = await agent_reply(db, conversation_id, "It ships today.")
    telegram_api.script("sendMessage", disconnect())
    assert await worker(db, paced).run_once() == 1
    assert (await outbox_row(db, message_id)).status == "unconfirmed"
    assert await worker(db, paced).run_once() == 0
    assert len(telegram_api.calls("sendMessage")) == 1
