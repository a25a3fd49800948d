"""Filed channel deliveries becoming messages: order restored, nothing lost or doubled,
failures retried, secrets never kept — with a small JSON channel standing in for the
real ones (their own tests cover their payloads)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar

import pytest
from sqlalchemy import func, select

from channels.base import (
    ChannelEvent,
    Delivery,
    DeliveryReceipt,
    Ignored,
    InboundFile,
    InboundMessage,
    InboxSetup,
    MessageEdited,
    OutboundMessage,
    RawInbound,
    WebhookRejected,
)
from conversations import inbound
from conversations.inbound import InboundPolicy, InboundProcessor, do_accept
from conversations.models import (
    Attachment,
    InboundEvent,
    InboundStatus,
    Message,
    MessageRevision,
)
from switchboard.adapters import StaticAdapters
from switchboard.inboxes import do_ensure_inbox
from switchboard.tx import Database
from tests.clock import Clock, clock_for
from tests.conftest import ClientFactory
from tests.security.support import tiny_png

KIND = "jsonchan"


class JsonChannel:
    """Deliveries are JSON objects: {"id", "order", "sender", "text", "type", "file"}."""

    kind: ClassVar[str] = KIND
    idempotent: ClassVar[bool] = False
    accepts_webhooks: ClassVar[bool] = True

    def __init__(self, setup: InboxSetup | None = None) -> None:
        self.fetch_failures = 0
        self.fetched: list[str] = []

    def verify(self, raw: RawInbound, now: datetime) -> None:
        if raw.headers.get("X-Secret") != "s3cret":
            raise WebhookRejected(403, "wrong secret")

    def _data(self, raw: RawInbound) -> dict[str, Any]:
        try:
            data = json.loads(raw.body)
        except ValueError:
            raise WebhookRejected(400, "not JSON") from None
        if not isinstance(data, dict):
            raise WebhookRejected(400, "not an object")
        return data

    def delivery(self, raw: RawInbound) -> Delivery:
        data = self._data(raw)
        return Delivery(dedupe_key=f"d:{data['id']}", order_key=data.get("order"))

    def parse(self, raw: RawInbound) -> Sequence[ChannelEvent]:
        data = self._data(raw)
        inbox_id = int(data.get("inbox", 0))
        kind = data.get("type", "message")
        if kind == "unknown":
            return [Ignored("unknown delivery type")]
        if kind == "edit":
            return [MessageEdited(inbox_id, f"m:{data['of']}", data["text"])]
        files = []
        if "file" in data:
            files.append(InboundFile(filename="photo.png", ref=data["file"]))
        return [
            InboundMessage(
                channel=KIND,
                inbox_id=inbox_id,
                sender_id=data.get("sender", "ann"),
                external_id=f"m:{data['id']}",
                thread_key=f"chat:{data.get('sender', 'ann')}",
                text=data.get("text", ""),
                files=files,
                wants_greeting=data.get("greet", False),
            )
        ]

    async def fetch(self, file: InboundFile) -> bytes:
        if self.fetch_failures:
            self.fetch_failures -= 1
            raise ConnectionResetError("file server hung up")
        self.fetched.append(file.ref or "")
        return PNG

    async def send(self, msg: OutboundMessage) -> DeliveryReceipt:
        return DeliveryReceipt(external_id=f"out:{msg.message_id}")

    async def aclose(self) -> None:
        return None


PNG = tiny_png()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return clock_for(inbound, monkeypatch)


@pytest.fixture
async def inbox_id(db: Database) -> int:
    inbox = await db.run(lambda s: do_ensure_inbox(s, key="json", kind=KIND, name="JSON chat"))
    return inbox.id


@pytest.fixture
def channel() -> JsonChannel:
    return JsonChannel()


def processor(db: Database, channel: JsonChannel, **policy: Any) -> InboundProcessor:
    return InboundProcessor(db, StaticAdapters({KIND: channel}), policy=InboundPolicy(**policy))


async def file(db: Database, channel: JsonChannel, inbox_id: int, **data: Any) -> bool:
    raw = RawInbound(
        headers={"X-Secret": "s3cret", "Content-Type": "application/json"},
        query={},
        body=json.dumps({"inbox": inbox_id, **data}).encode(),
    )
    return await db.run(
        lambda s: do_accept(
            s, inbox_id=inbox_id, channel=KIND, delivery=channel.delivery(raw), raw=raw
        )
    )


async def texts(db: Database) -> list[str]:
    async with db.reading() as s:
        return list((await s.execute(select(Message.text).order_by(Message.seq))).scalars())


async def event_states(db: Database) -> list[tuple[str, str, str | None]]:
    async with db.reading() as s:
        rows = await s.execute(
            select(InboundEvent.dedupe_key, InboundEvent.status, InboundEvent.last_error).order_by(
                InboundEvent.id
            )
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_updates_delivered_out_of_order_are_stored_in_the_order_written(
    db: Database, channel: JsonChannel, inbox_id: int, clock: Clock
) -> None:
    worker = processor(db, channel, reorder_hold=timedelta(seconds=5))
    await file(db, channel, inbox_id, id=1, order=100, text="first")
    assert await worker.run_once() == 1
    # 102 arrives before 101: it waits for the gap to fill rather than jump the queue.
    await file(db, channel, inbox_id, id=3, order=102, text="third")
    assert await worker.run_once() == 0
    await file(db, channel, inbox_id, id=2, order=101, text="second")
    assert await worker.run_once() == 2
    assert await texts(db) == ["first", "second", "third"]


async def test_a_gap_that_never_fills_holds_only_for_the_hold(
    db: Database, channel: JsonChannel, inbox_id: int, clock: Clock
) -> None:
    worker = processor(db, channel, reorder_hold=timedelta(seconds=5))
    await file(db, channel, inbox_id, id=1, order=100, text="first")
    await worker.run_once()
    await file(db, channel, inbox_id, id=3, order=103, text="after a lost update")
    assert await worker.run_once() == 0
    clock.advance(6)
    assert await worker.run_once() == 1
    assert await texts(db) == ["first", "after a lost update"]


async def test_a_redelivery_is_filed_once_and_stored_once(
    db: Database, channel: JsonChannel, inbox_id: int
) -> None:
    assert await file(db, channel, inbox_id, id=7, text="hello") is True
    assert await file(db, channel, inbox_id, id=7, text="hello") is False
    worker = processor(db, channel)
    await worker.run_once()
    assert await texts(db) == ["hello"]
    assert [s for _k, s, _e in await event_states(db)] == [InboundStatus.DONE]


async def test_a_failed_download_is_retried_and_nothing_is_lost(
    db: Database, channel: JsonChannel, inbox_id: int, clock: Clock
) -> None:
    channel.fetch_failures = 1
    await file(db, channel, inbox_id, id=1, text="see photo", file="file-1")
    worker = processor(db, channel, base_delay=1.0)
    await worker.run_once()
    assert await texts(db) == []
    [(_key, status, error)] = await event_states(db)
    assert status == InboundStatus.PENDING and error and "hung up" in error
    clock.advance(5)
    await worker.run_once()
    assert await texts(db) == ["see photo"]
    async with db.reading() as s:
        [attachment] = (await s.execute(select(Attachment))).scalars().all()
    assert attachment.content_type == "image/png" and attachment.message_id is not None


async def test_a_file_that_never_downloads_leaves_the_message_with_a_note(
    db: Database, channel: JsonChannel, inbox_id: int, clock: Clock
) -> None:
    channel.fetch_failures = 99
    await file(db, channel, inbox_id, id=1, text="here is the invoice", file="gone")
    worker = processor(db, channel, file_attempts=2, base_delay=1.0)
    await worker.run_once()
    assert await texts(db) == []
    clock.advance(10)
    await worker.run_once()
    assert await texts(db) == ["here is the invoice\n[photo.png: could not be downloaded]"]


async def test_a_delivery_that_can_never_be_stored_is_kept_failed_with_its_reason(
    db: Database, channel: JsonChannel, inbox_id: int
) -> None:
    await file(db, channel, inbox_id, id=1, text="x" * 20_000)
    await processor(db, channel).run_once()
    [(_key, status, error)] = await event_states(db)
    assert status == InboundStatus.FAILED
    assert error and "10000" in error.replace(",", "")
    async with db.reading() as s:
        payload = (await s.execute(select(InboundEvent.payload))).scalar_one()
    assert b"xxxx" in payload  # the original is still there for an admin


async def test_unknown_deliveries_store_nothing_and_edits_keep_the_old_text(
    db: Database, channel: JsonChannel, inbox_id: int
) -> None:
    worker = processor(db, channel)
    await file(db, channel, inbox_id, id=1, text="helo")
    await file(db, channel, inbox_id, id=2, type="unknown")
    await file(db, channel, inbox_id, id=3, type="edit", of=1, text="hello")
    await file(db, channel, inbox_id, id=4, type="edit", of=1, text="hello")  # same edit again
    await worker.run_once()
    assert await texts(db) == ["hello"]
    async with db.reading() as s:
        revisions = (await s.execute(select(MessageRevision.text))).scalars().all()
        edited = (await s.execute(select(Message.edited_at))).scalar_one()
    assert revisions == ["helo"] and edited is not None


async def test_channel_secrets_are_not_kept_with_the_delivery(db: Database, inbox_id: int) -> None:
    raw = RawInbound(
        headers={
            "X-Telegram-Bot-Api-Secret-Token": "very-secret",
            "Authorization": "Bearer xoxb-1",
            "Content-Type": "application/json",
        },
        query={},
        body=b"{}",
    )
    await db.run(
        lambda s: do_accept(s, inbox_id=inbox_id, channel=KIND, delivery=Delivery("d:1"), raw=raw)
    )
    async with db.reading() as s:
        headers = (await s.execute(select(InboundEvent.headers))).scalar_one()
    assert headers == {"content-type": "application/json"}


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_two_processors_store_each_delivery_once_in_each_chats_order(
    db: Database, channel: JsonChannel, inbox_id: int, settings: Any
) -> None:
    from switchboard.bus import InProcessBus
    from switchboard.db import create_engine, create_sessionmaker

    engine = create_engine(settings.database_url)
    other = Database(engine, create_sessionmaker(engine), InProcessBus())
    try:
        for n in range(1, 41):
            await file(db, channel, inbox_id, id=n, order=n, text=f"m{n}", sender=f"s{n % 3}")
        workers = [processor(db, channel, batch=7), processor(other, channel, batch=7)]

        async def drain(worker: InboundProcessor) -> None:
            for _ in range(50):
                await worker.run_once()
                await asyncio.sleep(0)

        await asyncio.gather(*(drain(w) for w in workers))
    finally:
        await engine.dispose()
    async with db.reading() as s:
        rows = (
            await s.execute(
                select(Message.conversation_id, Message.text).order_by(
                    Message.conversation_id, Message.seq
                )
            )
        ).all()
    assert sorted(t for _c, t in rows) == sorted(f"m{n}" for n in range(1, 41))
    # Chats are stored side by side; within each chat, in the order written.
    for conversation_id in {c for c, _t in rows}:
        numbers = [int(t[1:]) for c, t in rows if c == conversation_id]
        assert numbers == sorted(numbers)


async def test_the_webhook_edge_refuses_before_filing(
    make_client: ClientFactory, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from switchboard import app as app_module

    monkeypatch.setattr(app_module, "adapter_factories", lambda: {KIND: JsonChannel})
    client = await make_client(run_workers=False)
    await db.run(lambda s: do_ensure_inbox(s, key="main", kind=KIND, name="JSON"))
    url = f"/webhooks/{KIND}/main"
    ok = {"X-Secret": "s3cret", "Content-Type": "application/json"}

    unknown = await client.post(f"/webhooks/{KIND}/nope", data=b"{}", headers=ok)
    wrong = await client.post(url, data=b'{"id": 1}', headers={"X-Secret": "guess"})
    broken = await client.post(url, data=b'{"id": ', headers=ok)
    listed = await client.post(url, data=b"[1, 2]", headers=ok)
    zipped = await client.post(url, data=b"\x1f\x8b", headers={**ok, "Content-Encoding": "gzip"})
    huge = await client.post(url, data=b" " * (1024 * 1024 + 10), headers=ok)
    ignored = await client.post(url, data=b'{"id": 2, "type": "unknown"}', headers=ok)
    good = await client.post(url, data=b'{"id": 3, "text": "hi"}', headers=ok)
    again = await client.post(url, data=b'{"id": 3, "text": "hi"}', headers=ok)

    assert unknown.status == 404
    assert wrong.status == 403
    assert broken.status == 400 and listed.status == 400
    assert "Traceback" not in await broken.text()
    assert zipped.status == 415
    assert huge.status == 413
    assert ignored.status == 200 and good.status == 200 and again.status == 200
    async with db.reading() as s:
        filed = (await s.execute(select(func.count()).select_from(InboundEvent))).scalar_one()
    assert filed == 1
