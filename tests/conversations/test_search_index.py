"""The message search index follows the messages table: what is stored is found, young
messages are indexed but hold the watermark back (a slow transaction may still commit a
lower id), and a backlog indexes the newest messages first. SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select, true

import conversations.search as search
from conversations.inbox_models import MessageTerm, SearchIndexState
from switchboard.tx import Database
from tests.tickets.support import customer_writes, make_inbox


async def _watermark(db: Database) -> int:
    async with db.reading() as session:
        found = await session.execute(
            select(SearchIndexState.last_id).where(SearchIndexState.name == search.STATE_NAME)
        )
        return int(found.scalar_one_or_none() or 0)


async def _indexed(db: Database) -> set[int]:
    async with db.reading() as session:
        rows = await session.execute(select(func.distinct(MessageTerm.message_id)))
        return set(rows.scalars())


async def _find(db: Database, q: str) -> list[str]:
    async with db.reading() as session:
        page = await search.search_messages(session, search.check_query(q), visible=true())
        return [item["snippet"] for item in page.items]


@pytest.fixture(autouse=True)
def _fresh_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search, "_recent", {})


async def test_young_messages_are_found_but_hold_the_watermark(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = await make_inbox(db)
    await customer_writes(db, "a", "Where is my parcel", inbox_id=inbox)
    await customer_writes(db, "b", "包裹什麼時候到", inbox_id=inbox)
    assert await db.run(search.catch_up) == 2
    assert await _find(db, "parcel") == ["Where is my parcel"]
    assert await _find(db, "包裹") == ["包裹什麼時候到"]
    assert await _watermark(db) == 0  # both younger than SETTLE_SECONDS
    # Indexed once per process, not again on every pass while they settle.
    assert await db.run(search.catch_up) == 0

    monkeypatch.setattr(search, "SETTLE_SECONDS", 0)
    await db.run(search.catch_up)
    assert await _watermark(db) == 2


async def test_a_backlog_indexes_the_newest_messages_first(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search, "SETTLE_SECONDS", 0)
    inbox = await make_inbox(db)
    for n in range(6):
        await customer_writes(db, f"v{n}", f"message number{n}", inbox_id=inbox)

    async def pass_of_two(session: Any) -> int:
        return await search.catch_up(session, limit=2)

    await db.run(pass_of_two)
    assert await _indexed(db) == {1, 2, 5, 6}
    assert await _watermark(db) == 2
    assert await _find(db, "number5") == ["message number5"]
    await db.run(pass_of_two)
    await db.run(pass_of_two)
    assert await _indexed(db) == {1, 2, 3, 4, 5, 6}
    assert await _watermark(db) == 6


async def test_an_edited_message_is_found_by_its_new_words_only(db: Database) -> None:
    """A customer edits a message (Telegram, Slack, email): search kept finding it by the
    old words and not by the new ones, since the index had passed it."""
    from channels.base import MessageEdited
    from conversations.inbound import do_record_edit

    inbox = await make_inbox(db)
    await customer_writes(db, "editor", "My parcel is late", inbox_id=inbox)
    await db.run(search.catch_up)
    assert await _find(db, "parcel") == ["My parcel is late"]
    assert await db.run(
        lambda s: do_record_edit(
            s, MessageEdited(inbox, "editor:0:My parcel ", "My 包裹 invoice is wrong")
        )
    )
    await db.run(search.catch_up)
    assert await _find(db, "parcel") == []
    assert await _find(db, "invoice") == ["My 包裹 invoice is wrong"]
    assert await _find(db, "包裹") == ["My 包裹 invoice is wrong"]
