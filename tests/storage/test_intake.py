"""Intake on real databases: dedupe, one customer per sender, gap-free seqs under
concurrency, text stored exactly, and events published only after commit."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import InboundMessage
from conversations.events import INBOX_TOPIC, MessageCreated
from conversations.models import Conversation, Message
from conversations.service import IntakeResult, do_intake
from customers.models import Customer, Identity
from switchboard.bus import InProcessBus, Subscription
from switchboard.errors import InvalidInput
from switchboard.events import Event
from switchboard.inboxes import do_ensure_inbox
from switchboard.tx import Database


@pytest.fixture
async def inbox_id(db: Database) -> int:
    inbox = await db.run(
        lambda s: do_ensure_inbox(s, key="support", kind="webchat", name="Support chat")
    )
    return inbox.id


def inbound(inbox_id: int, external_id: str, text: str, sender: str = "v_alice") -> InboundMessage:
    return InboundMessage(
        channel="webchat",
        inbox_id=inbox_id,
        sender_id=sender,
        external_id=external_id,
        thread_key=sender,
        text=text,
        sender_name="Alice",
    )


async def intake(db: Database, msg: InboundMessage) -> IntakeResult:
    return await db.run(lambda s: do_intake(s, msg))


async def count(db: Database, model: type[Any]) -> int:
    async with db.reading() as s:
        return (await s.execute(select(func.count()).select_from(model))).scalar_one()


async def stored_texts(db: Database) -> list[str]:
    async with db.reading() as s:
        return list((await s.execute(select(Message.text).order_by(Message.id))).scalars())


async def test_first_message_opens_customer_identity_and_conversation(
    db: Database, inbox_id: int
) -> None:
    result = await intake(db, inbound(inbox_id, "m1", "Where is my order?"))

    assert result.seq == 1 and result.duplicate is False
    async with db.reading() as s:
        identity = (await s.execute(select(Identity))).scalar_one()
        customer = (await s.execute(select(Customer))).scalar_one()
        conversation = (await s.execute(select(Conversation))).scalar_one()
        message = (await s.execute(select(Message))).scalar_one()
    assert identity.external_id == "v_alice" and identity.customer_id == customer.id
    assert customer.id == result.customer_id and customer.name == "Alice"
    assert conversation.id == result.conversation_id and conversation.customer_id == customer.id
    assert conversation.last_seq == 1 and conversation.unread_count == 1
    assert message.text == "Where is my order?" and message.seq == 1


async def test_second_message_from_same_sender_continues_the_conversation(
    db: Database, inbox_id: int
) -> None:
    first = await intake(db, inbound(inbox_id, "m1", "Hello"))
    second = await intake(db, inbound(inbox_id, "m2", "Anyone there?"))

    assert second.conversation_id == first.conversation_id
    assert second.customer_id == first.customer_id
    assert (second.seq, second.duplicate) == (2, False)
    assert await count(db, Customer) == 1
    assert await count(db, Conversation) == 1


async def test_same_external_id_twice_is_stored_once(db: Database, inbox_id: int) -> None:
    first = await intake(db, inbound(inbox_id, "tg-42", "Hello"))
    again = await intake(db, inbound(inbox_id, "tg-42", "Hello"))

    assert again.duplicate is True
    assert (again.message_id, again.seq) == (first.message_id, first.seq)
    assert await stored_texts(db) == ["Hello"]
    async with db.reading() as s:
        conversation = (await s.execute(select(Conversation))).scalar_one()
    assert conversation.last_seq == 1 and conversation.unread_count == 1


async def test_concurrent_messages_from_a_new_sender_share_one_customer_and_gapless_seqs(
    db: Database, inbox_id: int
) -> None:
    results = await asyncio.gather(
        *(intake(db, inbound(inbox_id, f"burst-{n}", f"message {n}")) for n in range(20))
    )

    assert sorted(r.seq for r in results) == list(range(1, 21))
    assert len({r.conversation_id for r in results}) == 1
    assert len({r.customer_id for r in results}) == 1
    assert await count(db, Customer) == 1
    assert await count(db, Identity) == 1
    assert await count(db, Conversation) == 1
    async with db.reading() as s:
        rows = (await s.execute(select(Message.seq, Message.external_id))).all()
        last_seq = (await s.execute(select(Conversation.last_seq))).scalar_one()
    assert sorted(seq for seq, _ in rows) == list(range(1, 21))
    assert {external for _, external in rows} == {f"burst-{n}" for n in range(20)}
    assert last_seq == 20


async def test_concurrent_retries_of_one_message_store_it_once(db: Database, inbox_id: int) -> None:
    results = await asyncio.gather(
        *(intake(db, inbound(inbox_id, "same-id", "Is this sent?")) for _ in range(10))
    )

    assert len({(r.message_id, r.seq) for r in results}) == 1
    assert sum(not r.duplicate for r in results) == 1
    assert await stored_texts(db) == ["Is this sent?"]
    assert await count(db, Customer) == 1
    async with db.reading() as s:
        conversation = (await s.execute(select(Conversation))).scalar_one()
    assert conversation.last_seq == 1 and conversation.unread_count == 1


async def test_nul_bytes_are_dropped_and_the_rest_is_kept(db: Database, inbox_id: int) -> None:
    await intake(db, inbound(inbox_id, "m1", "order\x00 #12\x0034"))

    assert await stored_texts(db) == ["order #1234"]


async def test_lone_surrogate_is_refused_and_nothing_is_stored(db: Database, inbox_id: int) -> None:
    with pytest.raises(InvalidInput):
        await intake(db, inbound(inbox_id, "m1", "broken \ud83d text"))

    assert await count(db, Message) == 0
    assert await count(db, Customer) == 0
    assert await count(db, Conversation) == 0


@pytest.mark.parametrize(
    "text",
    [
        "family: \U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"
        " flag: \U0001f3f3\ufe0f\u200d\U0001f308",
        "\u05e9\u05dc\u05d5\u05dd \u202eevil.exe\u202c \u0645\u0631\u062d\u0628\u0627",
        "cafe\u0301 \u0e01\u0e33 Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319",
        "tab\tnewline\ncr\r\n \U0001d54f\U0001d560 skin: \U0001f44b\U0001f3fd",
    ],
    ids=["zwj-emoji", "rtl", "combining", "whitespace-astral"],
)
async def test_unusual_unicode_is_stored_byte_exact(db: Database, inbox_id: int, text: str) -> None:
    await intake(db, inbound(inbox_id, "m1", text))

    (stored,) = await stored_texts(db)
    assert stored.encode("utf-8") == text.encode("utf-8")


class CommitCheckingBus:
    """An in-process bus that, at each publish, reads the database from a fresh session:
    what a subscriber on another process would see when the event reaches it."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.inner = InProcessBus()
        self.visible_at_publish: list[bool] = []

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def publish(self, event: Event) -> None:
        if isinstance(event, MessageCreated):
            async with self.db.reading() as s:
                found = await s.get(Message, event.message["id"])
            self.visible_at_publish.append(found is not None)
        await self.inner.publish(event)

    async def publish_many(self, events: Sequence[Event]) -> None:
        for event in events:
            await self.publish(event)

    def subscribe(self, topics: Iterable[str]) -> AbstractAsyncContextManager[Subscription]:
        return self.inner.subscribe(topics)


async def test_event_is_published_after_commit(db: Database, inbox_id: int) -> None:
    bus = CommitCheckingBus(db)
    publishing = Database(db.engine, db.sessionmaker, bus)
    async with bus.subscribe([INBOX_TOPIC]) as sub:
        result = await intake(publishing, inbound(inbox_id, "m1", "Hello"))
        event = await asyncio.wait_for(sub.get(), timeout=2)

    assert isinstance(event, MessageCreated)
    assert event.message["id"] == result.message_id and event.message["text"] == "Hello"
    assert bus.visible_at_publish == [True]


async def test_no_event_when_the_transaction_fails_after_intake(
    db: Database, inbox_id: int
) -> None:
    class Boom(Exception):
        pass

    async def intake_then_fail(s: AsyncSession) -> None:
        await do_intake(s, inbound(inbox_id, "m1", "Hello"))
        raise Boom

    async with db.bus.subscribe([INBOX_TOPIC]) as sub:
        with pytest.raises(Boom):
            await db.run(intake_then_fail)
        # Prove the subscription works, so the silence above means something.
        await intake(db, inbound(inbox_id, "m2", "Second try"))
        event = await asyncio.wait_for(sub.get(), timeout=2)

    # Events arrive in publish order: had the failed intake published, it would be first.
    assert isinstance(event, MessageCreated) and event.message["text"] == "Second try"
    assert await stored_texts(db) == ["Second try"]
