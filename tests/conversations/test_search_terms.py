"""Customers and tickets are found through their term tables, written by the services
that write them: Chinese names in either script, email parts, phone digits however
they are spaced, merged and unmerged customers, ticket subjects and notes, and the
migration's backfill of rows written before the index existed. SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, select, true, update

import conversations.search as search
from conversations.search_terms import CustomerTerm, TicketTerm, backfill, phone_digits
from customers.merge import do_merge, do_unmerge
from customers.models import Customer
from customers.service import do_resolve_sender
from switchboard.tx import Database
from tests.conftest import create_user
from tests.tickets.support import make_inbox
from tickets.checks import TicketChanges
from tickets.service import do_add_note, do_create_ticket, do_update_ticket


async def _sender(
    db: Database,
    inbox: int,
    external_id: str,
    name: str | None,
    *,
    channel: str = "webchat",
    email: str | None = None,
) -> int:
    async def resolve(session: Any) -> int:
        found = await do_resolve_sender(
            session,
            inbox_id=inbox,
            channel=channel,
            external_id=external_id,
            display_name=name,
            verified_email=email,
        )
        return found.customer_id

    return await db.run(resolve)


async def _customers(db: Database, q: str, **kwargs: Any) -> list[int]:
    async with db.reading() as session:
        page = await search.search_customers(
            session, search.check_query(q), visible=true(), **kwargs
        )
        return [item["id"] for item in page.items]


async def _tickets(db: Database, q: str) -> list[int]:
    async with db.reading() as session:
        page = await search.search_tickets(session, search.check_query(q), visible=true())
        return [item["id"] for item in page.items]


def test_phone_digits_are_only_taken_from_phone_like_text() -> None:
    assert phone_digits("+86 138-0000 (1111)") == "8613800001111"
    assert phone_digits("１３８ ０００") == "138000"  # full-width digits fold
    assert phone_digits("tg-424242") is None
    assert phone_digits("a1b2c3d4@example.com") is None
    assert phone_digits("123") is None


async def test_customers_by_chinese_name_email_parts_and_phone_digits(db: Database) -> None:
    inbox = await make_inbox(db)
    chen = await _sender(db, inbox, "v-chen", "陳小明", email="xiao.ming@mail.example.cn")
    wa = await _sender(db, inbox, "+86 138 0000 1111", "Wang", channel="whatsapp")
    other = await _sender(db, inbox, "v-other", "小红", email="hong@example.com")

    # Chinese names in either script, by a bigram or one character.
    assert await _customers(db, "陈小明") == [chen]
    assert await _customers(db, "小明") == [chen]
    assert await _customers(db, "陳") == [chen]
    assert await _customers(db, "小") == [other, chen]
    # Emails by their local part, its beginning, the domain, the whole address.
    assert await _customers(db, "xiao.ming") == [chen]
    assert await _customers(db, "xiao") == [chen]
    assert await _customers(db, "mail.example.cn") == [chen]
    assert await _customers(db, "xiao.ming@mail.example.cn") == [chen]
    assert await _customers(db, "example") == [other, chen]
    assert await _customers(db, "@example.com") == [other]
    # Phone digits with and without + and spaces, the whole number or a part.
    for q in ("+86 138 0000 1111", "+8613800001111", "13800001111", "0000 1111", "1111"):
        assert await _customers(db, q) == [wa], q
    assert await _customers(db, "138 1111") == [wa]  # both words are in it
    assert await _customers(db, "1381111") == []  # these digits are not
    assert await _customers(db, "hong 1111") == []  # every term must match
    assert await _customers(db, "iaoming") == []  # words match by their beginnings


async def test_a_merged_customer_is_found_as_its_survivor_until_unmerged(db: Database) -> None:
    inbox = await make_inbox(db)
    survivor = await _sender(db, inbox, "v-1", "Li Lei")
    merged = await _sender(db, inbox, "+44 20 7946 0018", "Lei Telegram", channel="sms")
    assert await _customers(db, "7946") == [merged]

    record = await db.run(
        lambda s: do_merge(s, survivor_id=survivor, merged_id=merged, actor_user_id=None)
    )
    # The merged record's identity now belongs to the survivor: found as the survivor,
    # and the merged-away record is not listed.
    assert await _customers(db, "7946") == [survivor]
    assert await _customers(db, "lei") == [survivor]

    await db.run(lambda s: do_unmerge(s, merge_id=record.id, actor_user_id=None))
    assert await _customers(db, "7946") == [merged]
    assert await _customers(db, "lei") == [merged, survivor]


async def test_tickets_by_subject_and_notes_as_they_change(db: Database) -> None:
    agent = await create_user(db, "ana@example.com", "agent", "Ana")
    inbox = await make_inbox(db)
    customer = await _sender(db, inbox, "v-1", "Ana's customer")
    ticket = await db.run(
        lambda s: do_create_ticket(s, customer_id=customer, actor="agent:1", subject="退貨申請")
    )
    assert await _tickets(db, "退货") == [ticket.id]
    await db.run(
        lambda s: do_add_note(s, ticket.id, body="Refund via PayPal", author_user_id=agent)
    )
    assert await _tickets(db, "paypal refund") == [ticket.id]
    await db.run(
        lambda s: do_update_ticket(s, ticket.id, TicketChanges(subject="Parcel lost"), actor="x")
    )
    assert await _tickets(db, "parcel") == [ticket.id]
    assert await _tickets(db, "退货") == []  # the old subject is gone
    assert await _tickets(db, "paypal") == [ticket.id]  # the note stays


async def test_backfill_indexes_rows_written_before_the_index(db: Database) -> None:
    await create_user(db, "ana@example.com", "agent", "Ana")
    inbox = await make_inbox(db)
    chen = await _sender(db, inbox, "v-chen", "陳小明")
    ticket = await db.run(
        lambda s: do_create_ticket(s, customer_id=chen, actor="agent:1", subject="Invoice 2024")
    )

    async def forget(session: Any) -> None:
        await session.execute(delete(CustomerTerm))
        await session.execute(delete(TicketTerm))
        await session.execute(update(Customer).values(phone="+1 (555) 010-9999"))

    await db.run(forget)
    assert await _customers(db, "小明") == [] and await _tickets(db, "invoice") == []

    async def run_backfill(session: Any) -> tuple[int, int]:
        done: tuple[int, int] = await session.run_sync(
            lambda sync: backfill(sync.connection(), batch=1)
        )
        return done

    assert await db.run(run_backfill) == (1, 1)
    assert await _customers(db, "小明") == [chen]
    assert await _customers(db, "5550109999") == [chen]
    assert await _tickets(db, "invoice 2024") == [ticket.id]
    before = await _terms(db)
    assert await db.run(run_backfill) == (1, 1)  # again: nothing doubled or lost
    assert await _terms(db) == before


async def _terms(db: Database) -> list[tuple[str, int]]:
    async with db.reading() as session:
        rows = await session.execute(
            select(CustomerTerm.term, CustomerTerm.customer_id).order_by(CustomerTerm.term)
        )
        return [(term, owner) for term, owner in rows]


async def test_customer_pages_follow_the_cursor_and_common_scans_stop(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = await make_inbox(db)
    ids = [await _sender(db, inbox, f"v-{n}", f"Parcel Fan {n}") for n in range(5)]
    async with db.reading() as session:
        query = search.check_query("parcel fan")
        first = await search.search_customers(session, query, visible=true(), limit=2)
        assert [i["id"] for i in first.items] == ids[:-3:-1]
        rest = await search.search_customers(
            session, query, visible=true(), cursor=first.next_cursor, limit=10
        )
        assert [i["id"] for i in rest.items] == ids[2::-1] and rest.next_cursor is None
        # With no term rare, at most MAX_SCANNED customers are examined a page.
        monkeypatch.setattr(search, "SELECTIVE", 0)
        monkeypatch.setattr(search, "MAX_SCANNED", 2)
        short = await search.search_customers(session, search.check_query("fan 0"), visible=true())
        assert short.items == [] and short.truncated and short.next_cursor is not None
        found: list[int] = []
        cursor: str | None = short.next_cursor
        pages = 1
        while cursor is not None and pages < 10:
            page = await search.search_customers(
                session, search.check_query("fan 0"), visible=true(), cursor=cursor
            )
            found += [i["id"] for i in page.items]
            cursor, pages = page.next_cursor, pages + 1
        assert found == [ids[0]]
