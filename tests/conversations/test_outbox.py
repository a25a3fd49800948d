"""The outbox delivering replies through an outside channel: retries, backoff, dead
letters, ordering, crashes between send and commit, and two workers on one database."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from channels.base import DeliveryFailed, InboundMessage
from conversations import outbox
from conversations.events import MessageUpdated, conversation_topic
from conversations.models import AuthorKind, Message, OutboxEntry
from conversations.outbox import OutboxPolicy, OutboxWorker, backoff_delay
from conversations.service import do_intake, do_reply
from switchboard import accounts
from switchboard.adapters import StaticAdapters
from switchboard.bus import InProcessBus, Subscription
from switchboard.db import create_engine, create_sessionmaker
from switchboard.inboxes import do_ensure_inbox
from switchboard.models import User
from switchboard.settings import Settings
from switchboard.tx import Database
from tests.clock import Clock, clock_for
from tests.conftest import AppClient, ClientFactory, create_user
from tests.fakes.recording_adapter import (
    FAKE_KIND,
    IdempotentRecordingAdapter,
    RecordingAdapter,
    SendAttempt,
)

UNCONFIRMED_HINT = "may or may not have reached the customer"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return clock_for(outbox, monkeypatch)


@pytest.fixture
async def other_db(settings: Settings) -> AsyncIterator[Database]:
    """A second process's handle on the same database: its own engine and pool."""
    engine = create_engine(settings.database_url)
    yield Database(engine, create_sessionmaker(engine), InProcessBus())
    await engine.dispose()


@pytest.fixture
async def inbox_id(db: Database) -> int:
    inbox = await db.run(lambda s: do_ensure_inbox(s, key="ops", kind=FAKE_KIND, name="Fake chat"))
    return inbox.id


async def open_conversation(db: Database, inbox_id: int, sender: str = "chat-777") -> int:
    msg = InboundMessage(
        channel=FAKE_KIND,
        inbox_id=inbox_id,
        sender_id=sender,
        external_id=f"{sender}:hello",
        thread_key=sender,
        text="Hello, I need help",
    )
    return (await db.run(lambda s: do_intake(s, msg))).conversation_id


@pytest.fixture
async def conversation_id(db: Database, inbox_id: int) -> int:
    return await open_conversation(db, inbox_id)


async def reply(db: Database, conversation_id: int, text: str, private: bool = False) -> Message:
    return await db.run(
        lambda s: do_reply(
            s,
            conversation_id=conversation_id,
            text=text,
            author_kind=AuthorKind.AGENT,
            private=private,
        )
    )


async def outbox_row(db: Database, message_id: int) -> OutboxEntry:
    async with db.reading() as s:
        return (
            await s.execute(select(OutboxEntry).where(OutboxEntry.message_id == message_id))
        ).scalar_one()


async def message_row(db: Database, message_id: int) -> Message:
    async with db.reading() as s:
        found = await s.get(Message, message_id)
    assert found is not None
    return found


def worker(db: Database, adapter: RecordingAdapter, **policy: Any) -> OutboxWorker:
    return OutboxWorker(db, StaticAdapters({FAKE_KIND: adapter}), OutboxPolicy(**policy))


async def agent_sees(
    make_client: ClientFactory, db: Database, conversation_id: int
) -> dict[int, dict[str, Any]]:
    """The conversation's messages as an agent's inbox loads them, by seq."""
    user_id = await create_user(db, "dana@example.com")

    async def start(s: Any) -> accounts.NewSession:
        user = await s.get(User, user_id)
        return await accounts.do_start_session(s, user)

    login = await db.run(start)
    # No workers in this instance: it has no adapter for the fake channel.
    client: AppClient = await make_client(run_workers=False)
    client.session.cookie_jar.update_cookies({"sb_session": login.token})
    response = await client.get(f"/api/v1/conversations/{conversation_id}/messages")
    assert response.status == 200, await response.text()
    return {m["seq"]: m for m in (await response.json())["messages"]}


class WorkerCrashed(Exception):
    """Stands for the process dying after the channel accepted the send."""


def crash_once_after_send(monkeypatch: pytest.MonkeyPatch) -> None:
    real = outbox.do_record_sent
    crashed = False

    async def record_sent(*args: Any) -> None:
        nonlocal crashed
        if not crashed:
            crashed = True
            raise WorkerCrashed
        await real(*args)

    monkeypatch.setattr(outbox, "do_record_sent", record_sent)


# --- the happy path ------------------------------------------------------------------------


async def test_reply_is_sent_once_to_the_customer_and_marked_sent(
    db: Database, conversation_id: int
) -> None:
    adapter = RecordingAdapter()
    message = await reply(db, conversation_id, "Your order ships today.")

    async with db.bus.subscribe([conversation_topic(conversation_id)]) as updates:
        assert await worker(db, adapter).run_once() == 1
        update = await asyncio.wait_for(updates.get(), timeout=2)
    assert await worker(db, adapter).run_once() == 0

    (sent,) = adapter.sends
    assert sent.accepted
    assert sent.message.text == "Your order ships today."
    assert sent.message.recipient_id == "chat-777" and sent.message.thread_key == "chat-777"
    assert sent.message.idempotency_key == f"switchboard-{message.id}"
    row = await outbox_row(db, message.id)
    assert (row.status, row.attempts, row.external_id) == ("sent", 1, "fakechan-1")
    stored = await message_row(db, message.id)
    assert stored.delivery_status == "sent" and stored.sent_at is not None
    assert isinstance(update, MessageUpdated)
    assert update.message["delivery_status"] == "sent" and update.message["id"] == message.id


async def test_internal_note_never_reaches_the_channel(db: Database, conversation_id: int) -> None:
    adapter = RecordingAdapter()
    note = await reply(db, conversation_id, "Customer is on the VIP list", private=True)

    assert await worker(db, adapter).run_once() == 0
    assert adapter.sends == []
    assert (await message_row(db, note.id)).delivery_status == "not_sent"


# --- retries -------------------------------------------------------------------------------


async def test_channel_retry_after_is_respected(
    db: Database, conversation_id: int, clock: Clock
) -> None:
    adapter = RecordingAdapter()
    adapter.script(DeliveryFailed("429 Too Many Requests", retry_after=30))
    message = await reply(db, conversation_id, "One moment please")
    before = clock.now()

    await worker(db, adapter).run_once()

    row = await outbox_row(db, message.id)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "429 Too Many Requests")
    assert row.next_attempt_at >= before + timedelta(seconds=30)
    assert (await message_row(db, message.id)).delivery_status == "pending"

    clock.advance(29)
    assert await worker(db, adapter).run_once() == 0, "retried before the channel allowed"
    clock.advance(3)
    assert await worker(db, adapter).run_once() == 1
    assert [a.accepted for a in adapter.sends] == [False, True]
    assert (await message_row(db, message.id)).delivery_status == "sent"


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    policy = OutboxPolicy(base_delay=1.0, max_delay=600.0)
    for attempts in range(1, 16):
        ceiling = min(600.0, 2.0 ** (attempts - 1))
        delays = [backoff_delay(attempts, policy, None) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), attempts
        if attempts >= 3:
            assert len(set(delays)) > 1, "no jitter: workers would retry in lockstep"
    assert max(backoff_delay(50, policy, None) for _ in range(100)) <= 600.0


def test_backoff_never_retries_sooner_than_the_channel_asked() -> None:
    policy = OutboxPolicy(base_delay=1.0, max_delay=600.0)
    for attempts in (1, 2, 5):
        delays = [backoff_delay(attempts, policy, 30.0) for _ in range(200)]
        assert all(30.0 <= d <= 31.0 for d in delays)
    # When our own backoff is longer than the channel's delay, ours wins.
    assert all(256.0 <= backoff_delay(10, policy, 5.0) <= 512.0 for _ in range(200))


async def test_dead_letter_after_max_attempts_is_visible_in_the_inbox(
    db: Database, conversation_id: int, clock: Clock, make_client: ClientFactory
) -> None:
    adapter = RecordingAdapter()
    blocked = "403 Forbidden: bot was blocked by the user"
    adapter.script(*(DeliveryFailed(blocked) for _ in range(3)))
    message = await reply(db, conversation_id, "Are you still there?")
    outbox_worker = worker(db, adapter, max_attempts=3)

    for _ in range(3):
        assert await outbox_worker.run_once() == 1
        clock.advance(700)
    assert await outbox_worker.run_once() == 0

    assert len(adapter.sends) == 3 and adapter.delivered == []
    row = await outbox_row(db, message.id)
    assert (row.status, row.attempts) == ("dead", 3)
    seen = (await agent_sees(make_client, db, conversation_id))[message.seq]
    assert seen["delivery_status"] == "failed"
    assert "bot was blocked by the user" in seen["delivery_error"]
    assert "3 attempts" in seen["delivery_error"]


# --- ordering ------------------------------------------------------------------------------


async def test_replies_arrive_in_order_even_with_two_workers_and_a_retry(
    db: Database, other_db: Database, conversation_id: int
) -> None:
    log: list[SendAttempt] = []
    first_adapter = RecordingAdapter(name="a", log=log, delay=0.02)
    second_adapter = RecordingAdapter(name="b", log=log, delay=0.02)
    # Whichever worker tries the first reply first is turned away once.
    first_adapter.script(DeliveryFailed("busy", retry_after=0))
    second_adapter.script(DeliveryFailed("busy", retry_after=0))
    texts = ["first", "second", "third"]
    for text in texts:
        await reply(db, conversation_id, text)
    workers = [
        worker(db, first_adapter, base_delay=0.0),
        worker(other_db, second_adapter, base_delay=0.0),
    ]

    for _ in range(20):
        handled = await asyncio.gather(*(w.run_once() for w in workers))
        if sum(handled) == 0 and len([a for a in log if a.accepted]) == len(texts):
            break

    assert log[0].message.text == "first" and not log[0].accepted
    assert [a.message.text for a in log if a.accepted] == texts


# --- crashes between send and commit -------------------------------------------------------


async def test_crash_after_send_is_never_repeated_on_a_channel_without_idempotency(
    db: Database,
    conversation_id: int,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    make_client: ClientFactory,
) -> None:
    adapter = RecordingAdapter()
    message = await reply(db, conversation_id, "Your refund was issued")
    crash_once_after_send(monkeypatch)

    with pytest.raises(WorkerCrashed):
        await worker(db, adapter).run_once()
    assert len(adapter.delivered) == 1
    assert (await outbox_row(db, message.id)).status == "sending"

    # A restarted worker leaves the row alone while the lease holds...
    restarted = worker(db, adapter)
    assert await restarted.run_once() == 0
    assert (await outbox_row(db, message.id)).status == "sending"
    # ...and once it expires, asks a person instead of sending twice.
    clock.advance(61)
    await restarted.run_once()
    clock.advance(3600)
    await restarted.run_once()

    assert len(adapter.sends) == 1
    row = await outbox_row(db, message.id)
    assert row.status == "unconfirmed"
    seen = (await agent_sees(make_client, db, conversation_id))[message.seq]
    assert seen["delivery_status"] == "unconfirmed"
    assert UNCONFIRMED_HINT in seen["delivery_error"]


async def test_crash_after_send_is_repeated_with_the_same_key_on_an_idempotent_channel(
    db: Database, conversation_id: int, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = IdempotentRecordingAdapter()
    message = await reply(db, conversation_id, "Your refund was issued")
    crash_once_after_send(monkeypatch)

    with pytest.raises(WorkerCrashed):
        await worker(db, adapter).run_once()
    assert (await outbox_row(db, message.id)).status == "sending"

    restarted = worker(db, adapter)
    assert await restarted.run_once() == 0
    clock.advance(61)
    assert await restarted.run_once() == 1

    keys = [m.idempotency_key for m in adapter.delivered]
    assert keys == [f"switchboard-{message.id}"] * 2
    assert len(adapter.shown_to_customer) == 1
    row = await outbox_row(db, message.id)
    assert (row.status, row.attempts) == ("sent", 2)
    stored = await message_row(db, message.id)
    assert stored.delivery_status == "sent" and stored.delivery_error is None


async def test_unknown_send_outcome_is_not_repeated_without_idempotency(
    db: Database, conversation_id: int, clock: Clock
) -> None:
    adapter = RecordingAdapter()
    adapter.script(ConnectionResetError("connection reset by peer"))
    message = await reply(db, conversation_id, "We have updated your address")

    await worker(db, adapter).run_once()
    clock.advance(3600)
    await worker(db, adapter).run_once()

    assert len(adapter.sends) == 1
    stored = await message_row(db, message.id)
    assert stored.delivery_status == "unconfirmed"
    assert "check before sending again" in (stored.delivery_error or "")


async def test_unknown_send_outcome_is_retried_on_an_idempotent_channel(
    db: Database, conversation_id: int, clock: Clock
) -> None:
    adapter = IdempotentRecordingAdapter()
    adapter.script(ConnectionResetError("connection reset by peer"))
    message = await reply(db, conversation_id, "We have updated your address")

    await worker(db, adapter).run_once()
    clock.advance(5)
    await worker(db, adapter).run_once()

    assert [a.accepted for a in adapter.sends] == [False, True]
    assert {a.message.idempotency_key for a in adapter.sends} == {f"switchboard-{message.id}"}
    assert (await message_row(db, message.id)).delivery_status == "sent"


async def test_a_send_that_hangs_is_cut_off_and_not_repeated_without_idempotency(
    db: Database, conversation_id: int
) -> None:
    adapter = RecordingAdapter(delay=5.0)
    message = await reply(db, conversation_id, "Your parcel is on its way")

    await worker(db, adapter, lease=timedelta(seconds=0.5)).run_once()

    stored = await message_row(db, message.id)
    assert stored.delivery_status == "unconfirmed"
    assert "TimeoutError" in (stored.delivery_error or "")


async def test_a_message_that_crashes_every_worker_is_dead_lettered_in_the_end(
    db: Database, conversation_id: int, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = IdempotentRecordingAdapter()
    message = await reply(db, conversation_id, "Your refund was issued")

    async def always_crash(*args: Any) -> None:
        raise WorkerCrashed

    monkeypatch.setattr(outbox, "do_record_sent", always_crash)
    for _ in range(3):
        with pytest.raises(WorkerCrashed):
            await worker(db, adapter, max_attempts=3).run_once()
        clock.advance(61)
    await worker(db, adapter, max_attempts=3).run_once()

    assert len(adapter.sends) == 3
    row = await outbox_row(db, message.id)
    assert row.status == "dead"
    stored = await message_row(db, message.id)
    assert stored.delivery_status == "failed"
    assert "interrupted on every attempt" in (stored.delivery_error or "")


# --- two workers, one database ---------------------------------------------------------------


async def test_two_workers_deliver_fifty_replies_exactly_once(
    db: Database, other_db: Database, inbox_id: int
) -> None:
    conversations = [await open_conversation(db, inbox_id, f"chat-{n}") for n in range(25)]
    replies: list[Message] = []
    for conversation in conversations:
        for part in ("a", "b"):
            replies.append(await reply(db, conversation, f"reply {conversation}{part}"))
    log: list[SendAttempt] = []
    workers = [
        worker(db, RecordingAdapter(name="a", log=log, delay=0.005), batch=5),
        worker(other_db, RecordingAdapter(name="b", log=log, delay=0.005), batch=5),
    ]

    for _ in range(100):
        handled = await asyncio.gather(*(w.run_once() for w in workers))
        if sum(handled) == 0:
            break

    sent_ids = Counter(a.message.message_id for a in log)
    assert sent_ids == Counter({m.id: 1 for m in replies})
    assert {a.by for a in log} == {"a", "b"}, "only one worker did any work"
    for m in replies:
        row = await outbox_row(db, m.id)
        assert (row.status, row.attempts) == ("sent", 1)
    # Within each conversation the "a" reply reached the customer before the "b" one.
    order = [a.message.text for a in log]
    for conversation in conversations:
        assert order.index(f"reply {conversation}a") < order.index(f"reply {conversation}b")


# --- an idle worker stays idle ---------------------------------------------------------------


class CountingWorker(OutboxWorker):
    passes = 0

    async def run_once(self) -> int:
        self.passes += 1
        return await super().run_once()


async def test_reply_stuck_behind_an_unfinished_send_does_not_make_the_worker_spin(
    db: Database, conversation_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = RecordingAdapter()
    await reply(db, conversation_id, "first")
    second = await reply(db, conversation_id, "second")
    crash_once_after_send(monkeypatch)
    with pytest.raises(WorkerCrashed):
        await worker(db, adapter).run_once()
    # "first" is now "sending" under a lease; "second" is overdue but must wait for it.
    idle = CountingWorker(db, {FAKE_KIND: adapter}, OutboxPolicy(poll_interval=0.2))

    task = asyncio.create_task(idle.run_forever())
    await asyncio.sleep(0.6)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    # Polling every 0.2 s is about four passes; a busy loop makes hundreds, each taking
    # the database's write lock on SQLite.
    assert idle.passes <= 6
    assert [m.text for m in adapter.delivered] == ["first"]
    assert (await outbox_row(db, second.id)).status == "pending"


async def test_a_running_worker_sends_replies_in_order_without_an_empty_claim_after_each(
    db: Database, conversation_id: int
) -> None:
    """After a pass that took every due row, the next pass was an empty claim (a write
    transaction) per reply. Now the worker asks when work is next due instead, which
    still finds a reply that was queued behind the one just sent."""
    adapter = RecordingAdapter()
    running = CountingWorker(
        db, StaticAdapters({FAKE_KIND: adapter}), OutboxPolicy(poll_interval=30)
    )
    task = asyncio.create_task(running.run_forever())
    try:
        async with db.bus.subscribe([conversation_topic(conversation_id)]) as updates:
            # One at a time, as an agent replies: each waits until the last one is sent.
            for text in ("one", "two", "three"):
                await reply(db, conversation_id, text)  # its OutboxWake wakes the worker
                await _sent(updates)
            # Two at once: the second is not due until the first is sent.
            await reply(db, conversation_id, "four")
            await reply(db, conversation_id, "five")
            await _sent(updates)
            await _sent(updates)
    finally:
        running.stop()
        await task
    assert [m.text for m in adapter.delivered] == ["one", "two", "three", "four", "five"]
    # One pass per reply (a wake-up landing mid-pass may add one): it was two per reply.
    assert running.passes <= 6


async def _sent(updates: Subscription) -> None:
    async with asyncio.timeout(5):
        while True:
            event = await updates.get()
            if isinstance(event, MessageUpdated) and event.message["delivery_status"] == "sent":
                return
