"""Group commit: messages arriving together share a transaction, and each still gets
exactly its own outcome — stored once, refused alone, or recognised as a duplicate."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

import asyncpg
import pytest
from sqlalchemy import delete, func, select

from channels.base import InboundAttachment, InboundMessage
from conversations import statements
from conversations.events import INBOX_TOPIC, MessageCreated
from conversations.intake import IntakeBatcher
from conversations.models import Message
from conversations.service import KnownThread, _inbound_row, do_intake
from switchboard.errors import InvalidInput
from switchboard.inboxes import do_ensure_inbox
from switchboard.tx import Database
from tests.conftest import Backend
from tests.storage.test_intake import count, inbound


@pytest.fixture
async def inbox(db: Database) -> int:
    found = await db.run(lambda s: do_ensure_inbox(s, key="batch", kind="webchat", name="Chat"))
    return found.id


class CountingDatabase(Database):
    """Counts transactions, to show that batches really share them."""

    transactions = 0

    async def run(self, work: Any) -> Any:
        self.transactions += 1
        return await super().run(work)


@pytest.fixture
async def batcher(db: Database) -> AsyncIterator[IntakeBatcher]:
    counting = CountingDatabase(db.engine, db.sessionmaker, db.bus)
    intake_batcher = IntakeBatcher(counting, committers=1)
    intake_batcher.start()
    yield intake_batcher
    await intake_batcher.close()


async def test_forty_senders_at_once_share_transactions_and_each_is_stored_once(
    batcher: IntakeBatcher, db: Database, inbox: int
) -> None:
    messages = [inbound(inbox, f"m{n}", f"hello {n}", sender=f"v_sender{n:03d}") for n in range(40)]
    results = await asyncio.gather(*(batcher.submit(m) for m in messages))

    assert sorted(r.seq for r in results) == [1] * 40  # forty first messages
    assert len({r.conversation_id for r in results}) == 40
    assert await count(db, Message) == 40
    assert isinstance(batcher.db, CountingDatabase)
    assert batcher.db.transactions < 40


async def test_a_refused_message_in_a_batch_refuses_only_itself(
    batcher: IntakeBatcher, db: Database, inbox: int
) -> None:
    good = [inbound(inbox, f"ok{n}", f"fine {n}", sender=f"v_good{n:03d}") for n in range(5)]
    bad_text = inbound(inbox, "bad-text", "\ud800", sender="v_bad_text")
    bad_file = inbound(inbox, "bad-file", "see file", sender="v_bad_file")
    bad_file = type(bad_file)(
        **{**bad_file.__dict__, "attachments": [InboundAttachment("att_nonexistent_0001")]}
    )

    outcomes = await asyncio.gather(
        *(batcher.submit(m) for m in [*good[:2], bad_text, good[2], bad_file, *good[3:]]),
        return_exceptions=True,
    )

    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert len(refused) == 2 and all(isinstance(o, InvalidInput) for o in refused)
    async with db.reading() as session:
        stored = set((await session.execute(select(Message.external_id))).scalars())
    assert stored == {f"ok{n}" for n in range(5)}


async def test_a_duplicate_inside_a_batch_is_recognised_and_nothing_is_doubled(
    batcher: IntakeBatcher, db: Database, inbox: int
) -> None:
    first = await batcher.submit(inbound(inbox, "retry-1", "are you there?", sender="v_alice"))
    others = [inbound(inbox, f"x{n}", "hi", sender=f"v_other{n:03d}") for n in range(6)]
    again = inbound(inbox, "retry-1", "are you there?", sender="v_alice")

    outcomes = await asyncio.gather(*(batcher.submit(m) for m in [*others[:3], again, *others[3:]]))

    repeated = outcomes[3]
    assert repeated.duplicate and repeated.message_id == first.message_id
    assert not any(o.duplicate for i, o in enumerate(outcomes) if i != 3)
    assert await count(db, Message) == 7
    async with db.reading() as session:
        seqs = (
            await session.execute(
                select(func.max(Message.seq)).where(
                    Message.conversation_id == first.conversation_id
                )
            )
        ).scalar_one()
    assert seqs == 1  # the duplicate took no sequence number


async def returning_senders(
    batcher: IntakeBatcher, inbox: int, count: int
) -> list[tuple[str, KnownThread]]:
    firsts = await asyncio.gather(
        *(
            batcher.submit(inbound(inbox, f"first-{n}", "hello", sender=f"v_back{n:03d}"))
            for n in range(count)
        )
    )
    assert all(r.customer_id is not None for r in firsts)
    return [
        (f"v_back{n:03d}", KnownThread(r.conversation_id, r.customer_id or 0))
        for n, r in enumerate(firsts)
    ]


async def test_returning_senders_in_one_batch_each_get_their_next_seq(
    batcher: IntakeBatcher, db: Database, inbox: int, backend: Backend
) -> None:
    senders = await returning_senders(batcher, inbox, 12)
    assert isinstance(batcher.db, CountingDatabase)
    before = batcher.db.transactions
    async with db.bus.subscribe([INBOX_TOPIC]) as sub:
        results = await asyncio.gather(
            *(
                batcher.submit(inbound(inbox, f"second-{n}", f"again {n}", sender=sender), known)
                for n, (sender, known) in enumerate(senders)
            )
        )
        events = [await asyncio.wait_for(sub.get(), 1) for _ in range(12)]
    # Every message's live event, with its own seq: the inbox shows each one.
    created = [e for e in events if isinstance(e, MessageCreated)]
    assert sorted(e.message["text"] for e in created) == sorted(f"again {n}" for n in range(12))
    assert {e.message["seq"] for e in created} == {2}
    assert [r.seq for r in results] == [2] * 12
    assert [r.conversation_id for r in results] == [k.conversation_id for _, k in senders]
    if backend.name == "postgres":
        # The driver path (`conversations.intake_pg`): no session transaction at all.
        assert batcher.db.transactions == before
    else:
        assert batcher.db.transactions - before < 12
    async with db.reading() as session:
        texts = {
            external_id: text
            for external_id, text in await session.execute(
                select(Message.external_id, Message.text)
            )
        }
    assert all(texts[f"second-{n}"] == f"again {n}" for n in range(12))


async def test_a_repeated_message_among_returning_senders_is_not_stored_twice(
    batcher: IntakeBatcher, db: Database, inbox: int
) -> None:
    senders = await returning_senders(batcher, inbox, 6)
    messages = [
        (inbound(inbox, f"first-{n}" if n == 2 else f"next-{n}", "again", sender=s), k)
        for n, (s, k) in enumerate(senders)
    ]
    results = await asyncio.gather(*(batcher.submit(m, k) for m, k in messages))
    assert [r.duplicate for r in results] == [n == 2 for n in range(6)]
    assert [r.seq for r in results] == [2, 2, 1, 2, 2, 2]
    assert await count(db, Message) == 11


def test_the_postgresql_batch_statement_writes_every_column_of_a_message() -> None:
    """A column added to `messages` must be added to the array statement too (or it would
    silently miss a Python-side default there while the per-row path applies it)."""
    arrays, scalars = set(statements.PG_ROW_ARRAYS), set(statements.PG_BATCH_SCALARS)
    assert not arrays & scalars
    written = arrays | scalars | set(statements.PG_FROM_STATEMENT)
    assert written == set(statements.messages.c.keys())
    row = _inbound_row(inbound(1, "x", "hi"), 1, 1, "hi", datetime.now(UTC))
    assert set(row) == written - {"id"}


async def test_a_batched_message_is_stored_like_a_message_stored_alone(
    batcher: IntakeBatcher, db: Database, inbox: int
) -> None:
    senders = await returning_senders(batcher, inbox, 4)
    sent_at = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)

    def message(n: int, sender: str, key: str) -> InboundMessage:
        return dataclasses.replace(
            inbound(inbox, f"{key}-{n}", "Mon colis 📦 <b>n'est pas</b> arrivé", sender=sender),
            sent_at=sent_at if n % 2 else None,
            subject="Re: order 1042" if n % 2 else None,
            html="<p>Mon colis</p>" if n % 2 else None,
            automatic=n == 3,
        )

    batched = await asyncio.gather(
        *(
            batcher.submit(message(n, sender, "batched"), known)
            for n, (sender, known) in enumerate(senders)
        )
    )
    alone = []
    for n, (sender, _known) in enumerate(senders):
        alone.append(await db.run(partial(do_intake, msg=message(n, sender, "alone"))))
    same_for_both = [
        c for c in statements.messages.c if c.key not in {"id", "seq", "external_id", "created_at"}
    ]
    async with db.reading() as session:
        stored = {
            row.id: row
            for row in await session.execute(
                select(statements.messages.c.id, *same_for_both).where(
                    statements.messages.c.id.in_([r.message_id for r in batched + alone])
                )
            )
        }
    for b, a in zip(batched, alone, strict=True):
        assert b.seq == 2 and a.seq == 3
        assert tuple(stored[b.message_id])[1:] == tuple(stored[a.message_id])[1:]
    assert stored[batched[1].message_id].sent_at == sent_at
    assert stored[batched[3].message_id].automatic is True
    # The event carries what was stored.
    assert batched[1].message is not None
    assert batched[1].message["subject"] == "Re: order 1042"


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_connection_lost_under_a_batch_loses_no_message(
    db: Database, inbox: int, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL's driver path: its own connection and the pool's are killed (a database
    restart, a failover) before a batch. No broken connection is used again, every
    message of the batch is stored once through the careful path, and the next batch
    goes the driver path again."""
    batcher = IntakeBatcher(db, committers=1)
    batcher.start()
    try:
        senders = await returning_senders(batcher, inbox, 5)
        # A first batch on the driver path, so that it holds a connection of its own.
        warm = await asyncio.gather(
            *(
                batcher.submit(inbound(inbox, f"warm-{n}", f"warm {n}", sender=s), k)
                for n, (s, k) in enumerate(senders)
            )
        )
        assert [r.seq for r in warm] == [2] * 5
        killer = await asyncpg.connect(_dsn(db))
        try:
            killed = await killer.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await killer.close()
        assert killed >= 1
        with caplog.at_level(logging.WARNING, logger="conversations.intake"):
            results = await asyncio.gather(
                *(
                    batcher.submit(inbound(inbox, f"after-kill-{n}", f"still {n}", sender=s), k)
                    for n, (s, k) in enumerate(senders)
                )
            )
        # Stored once each: on a fresh connection when the driver path saw its own one
        # close in time, else one by one on the careful path.
        assert [r.seq for r in results] == [3] * 5
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="conversations.intake"):
            again = await asyncio.gather(
                *(
                    batcher.submit(inbound(inbox, f"later-{n}", f"later {n}", sender=s), k)
                    for n, (s, k) in enumerate(senders)
                )
            )
        assert [r.seq for r in again] == [4] * 5
        # No dead connection was kept, by the driver path or the pool, for this batch to meet.
        assert not any("storing one by one" in r.getMessage() for r in caplog.records)
    finally:
        await batcher.close()
    assert await count(db, Message) == 20


def _dsn(db: Database) -> str:
    """The test database's address for a plain asyncpg connection, outside the pool."""
    return db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


async def _backends(db: Database) -> int:
    """Connections to the test database other than the one asking."""
    asking = await asyncpg.connect(_dsn(db))
    try:
        found: int = await asking.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return found
    finally:
        await asking.close()


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_closed_batcher_leaves_no_connection_open(db: Database, inbox: int) -> None:
    """The driver path's connections are its own, not the pool's: closing the batcher
    closes them, so a stopped process (or a test) leaves nothing open on the database."""
    batcher = IntakeBatcher(db, committers=2)
    batcher.start()
    try:
        senders = await returning_senders(batcher, inbox, 6)
        for round_ in range(3):
            await asyncio.gather(
                *(
                    batcher.submit(inbound(inbox, f"r{round_}-{n}", "again", sender=s), k)
                    for n, (s, k) in enumerate(senders)
                )
            )
    finally:
        await batcher.close()
    await db.engine.dispose()  # the pool's own connections
    assert await _backends(db) == 0


async def test_a_conversation_deleted_under_a_batch_loses_no_message(
    batcher: IntakeBatcher, db: Database, inbox: int
) -> None:
    """One sender's conversation is deleted (the customer erased) while their next message
    waits in a batch: the others are stored and shown once each, and that message opens a
    new conversation instead of being lost. On PostgreSQL the batch's statement runs
    autocommitted, so the others stand while this one is redone."""
    from conversations.models import Conversation

    senders = await returning_senders(batcher, inbox, 4)
    gone = senders[2][1].conversation_id
    await db.run(lambda s: s.execute(delete(Conversation).where(Conversation.id == gone)))
    async with db.bus.subscribe([INBOX_TOPIC]) as sub:
        results = await asyncio.gather(
            *(
                batcher.submit(inbound(inbox, f"after-{n}", f"after {n}", sender=s), k)
                for n, (s, k) in enumerate(senders)
            )
        )
        events = [await asyncio.wait_for(sub.get(), 1) for _ in range(4)]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(sub.get(), 0.2)  # each shown once
    assert [r.seq for r in results] == [2, 2, 1, 2]
    assert results[2].conversation_id != gone
    shown = sorted(e.message["text"] for e in events if isinstance(e, MessageCreated))
    assert shown == [f"after {n}" for n in range(4)]
