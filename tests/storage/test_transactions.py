"""`Database.run` and `Database.reading` on real databases: lost races are re-run without
repeating their events, and readers never queue behind a writer."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.events import INBOX_TOPIC, Typing
from customers.models import Customer
from switchboard.db import create_engine, create_sessionmaker
from switchboard.errors import Conflict
from switchboard.tx import Database, emit


def typing(name: str) -> Typing:
    return Typing(
        actor="agent:1", conversation_id=1, inbox_id=1, side="agent", name=name, typing=True
    )


async def customer_names(db: Database) -> list[str | None]:
    async with db.reading() as s:
        return list((await s.execute(select(Customer.name).order_by(Customer.id))).scalars())


async def test_a_lost_race_is_run_again_and_only_the_winning_attempt_is_published(
    db: Database,
) -> None:
    attempts = 0

    async def work(s: AsyncSession) -> int:
        nonlocal attempts
        attempts += 1
        s.add(Customer(name=f"attempt {attempts}"))
        await s.flush()
        emit(s, typing(f"attempt {attempts}"))
        if attempts == 1:
            # What a unique constraint reports when another writer got there first.
            raise IntegrityError("INSERT …", {}, Exception("duplicate key value"))
        return attempts

    async with db.bus.subscribe([INBOX_TOPIC]) as sub:
        assert await db.run(work) == 2
        event = await asyncio.wait_for(sub.get(), timeout=2)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(sub.get(), timeout=0.1)

    assert event == typing("attempt 2")
    assert await customer_names(db) == ["attempt 2"]


async def test_a_domain_error_is_not_retried_and_leaves_nothing(db: Database) -> None:
    attempts = 0

    async def work(s: AsyncSession) -> None:
        nonlocal attempts
        attempts += 1
        s.add(Customer(name="half done"))
        await s.flush()
        raise Conflict("someone else changed it")

    with pytest.raises(Conflict):
        await db.run(work)

    assert attempts == 1
    assert await customer_names(db) == []


async def test_a_reader_does_not_wait_for_an_open_write_transaction(db: Database) -> None:
    await db.run(lambda s: _add(s, "committed"))
    writing = asyncio.Event()
    release = asyncio.Event()

    async def slow_writer(s: AsyncSession) -> None:
        await _add(s, "uncommitted")
        writing.set()
        await release.wait()

    writer = asyncio.create_task(db.run(slow_writer))
    try:
        await asyncio.wait_for(writing.wait(), timeout=5)
        # SQLite's busy timeout is 10 s: a reader queued behind the writer would time out here.
        async with asyncio.timeout(2):
            async with db.reading() as s:
                count = (await s.execute(select(func.count()).select_from(Customer))).scalar_one()
        assert count == 1, "the reader saw uncommitted data"
    finally:
        release.set()
        await writer
    assert await customer_names(db) == ["committed", "uncommitted"]


async def _add(s: AsyncSession, name: str) -> None:
    s.add(Customer(name=name))
    await s.flush()


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_read_session_on_postgresql_holds_no_transaction_between_queries(
    db: Database,
) -> None:
    """A read session that is slow between its queries (a socket writing a long history,
    a streamed report) must not sit "idle in transaction": that holds back vacuum for
    every table and costs a BEGIN and a ROLLBACK round trip besides. Each query runs on
    its own; the next still sees what committed in between."""
    await db.run(lambda s: _add(s, "before"))
    async with db.reading() as s:
        first = (await s.execute(select(func.count()).select_from(Customer))).scalar_one()
        backend_pid = (await s.execute(select(func.pg_backend_pid()))).scalar_one()
        async with db.reading() as watcher:
            state = (
                await watcher.execute(
                    text("SELECT state FROM pg_stat_activity WHERE pid = :pid"),
                    {"pid": backend_pid},
                )
            ).scalar_one()
        await db.run(lambda w: _add(w, "meanwhile"))
        second = (await s.execute(select(func.count()).select_from(Customer))).scalar_one()
    assert state == "idle"
    assert (first, second) == (1, 2)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_write_after_a_read_on_the_same_connection_still_rolls_back(
    db: Database,
) -> None:
    """Reads run autocommitted on PostgreSQL; the connection must go back to the pool
    transactional, or the next writer to take it would commit half a failed write."""
    engine = create_engine(db.engine.url.render_as_string(hide_password=False), pool_size=1)
    one = Database(engine, create_sessionmaker(engine), db.bus)
    try:
        async with one.reading() as s:
            await s.execute(select(func.count()).select_from(Customer))

        async def half_then_fail(s: AsyncSession) -> None:
            await _add(s, "half")
            raise Conflict("refused after the first write")

        with pytest.raises(Conflict):
            await one.run(half_then_fail)
        assert await customer_names(one) == []
    finally:
        await engine.dispose()
