"""Merge and unmerge keep every conversation and message; crossed merges never both win
(SECURITY.md 4: 46, 47)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from channels.base import InboundMessage
from conversations.attachments import check_upload, do_store_attachment
from conversations.models import Attachment, Conversation, Message
from customers.merge import do_merge, do_unmerge
from customers.models import Customer, CustomerMerge
from customers.profile import (
    check_profile_changes,
    do_add_note,
    do_update_profile,
    notes,
    profile_fields,
)
from customers.service import do_resolve_sender
from switchboard.errors import Conflict, InvalidInput
from switchboard.tx import Database
from tests.conftest import Backend
from tests.customers.support import (
    count,
    email_from,
    email_inbox,
    intake,
    ownership,
    wait_until_blocked_on_a_lock,
    webchat_inbox,
)
from tests.security.support import tiny_png


@dataclasses.dataclass
class TwoCustomers:
    keeper: int  # the survivor
    other: int  # merged into the keeper
    email_inbox: int
    webchat_inbox: int


async def _chat(db: Database, inbox_id: int, visitor: str, texts: list[str]) -> int:
    """A web-chat visitor's messages; the customer they belong to."""
    customer_id = None
    for text in texts:
        message = InboundMessage(
            channel="webchat",
            inbox_id=inbox_id,
            sender_id=visitor,
            external_id=f"{visitor}:{text}",
            thread_key=visitor,
            text=text,
        )
        customer_id = (await intake(db, message)).customer_id
    assert customer_id is not None
    return customer_id


async def two_customers(db: Database) -> TwoCustomers:
    """A keeper with one chat; another customer with a chat, two mail threads and a file."""
    web = await webchat_inbox(db)
    mail = await email_inbox(db)
    keeper = await _chat(db, web.id, "v_keeper0000000000000", ["hi", "order 12?"])
    other = await _chat(db, web.id, "v_other00000000000000", ["hello", "anyone?", "ok"])
    for n in (1, 2):
        await intake(db, email_from(mail, "other@example.com", verified=False, n=n))
    # Mail from the same person lands on a different record: that is what agents merge.
    async with db.reading() as s:
        mail_owner = (
            await s.execute(Conversation.__table__.select().where(Conversation.inbox_id == mail))
        ).first()
    assert mail_owner is not None
    await db.run(
        lambda s: do_merge(
            s, survivor_id=other, merged_id=mail_owner.customer_id, actor_user_id=None
        )
    )

    async def upload(session: Any) -> None:
        checked = check_upload("photo.png", tiny_png(), 10_000)
        await do_store_attachment(
            session, inbox_id=web.id, upload=checked, data=tiny_png(), customer_id=other
        )

    await db.run(upload)
    return TwoCustomers(keeper, other, mail, web.id)


async def merge(db: Database, survivor: int, merged: int) -> CustomerMerge:
    return await db.run(
        lambda s: do_merge(s, survivor_id=survivor, merged_id=merged, actor_user_id=None)
    )


async def unmerge(db: Database, merge_id: int) -> CustomerMerge:
    return await db.run(lambda s: do_unmerge(s, merge_id=merge_id, actor_user_id=None))


async def customer(db: Database, customer_id: int) -> Customer:
    async with db.reading() as s:
        found = await s.get(Customer, customer_id)
    assert found is not None
    return found


async def test_merge_moves_everything_and_loses_nothing(db: Database) -> None:
    two = await two_customers(db)
    before = await ownership(db)
    totals = (await count(db, Conversation), await count(db, Message))

    record = await merge(db, two.keeper, two.other)

    after = await ownership(db)
    assert (await count(db, Conversation), await count(db, Message)) == totals
    for kind in ("identities", "conversations", "messages"):
        assert after[kind].keys() == before[kind].keys()
        assert set(after[kind].values()) == {two.keeper} | (
            set(before[kind].values()) - {two.keeper, two.other}
        )
    moved_conversations = sorted(c for c, o in before["conversations"].items() if o == two.other)
    assert record.moved["conversations"] == moved_conversations
    assert record.moved["identities"] == sorted(
        i for i, o in before["identities"].items() if o == two.other
    )
    assert len(record.moved["attachments"]) == 1
    async with db.reading() as s:
        (file,) = (await s.execute(Attachment.__table__.select())).all()
    assert file.uploader_customer_id == two.keeper
    assert (await customer(db, two.other)).merged_into_id == two.keeper


async def test_unmerge_puts_back_exactly_what_moved_and_keeps_what_came_since(
    db: Database,
) -> None:
    two = await two_customers(db)
    before = await ownership(db)
    record = await merge(db, two.keeper, two.other)
    # Since the merge: the keeper wrote again, and a mail of the merged person
    # (its identity now the keeper's) opened a new thread.
    await _chat(db, two.webchat_inbox, "v_keeper0000000000000", ["and another thing"])
    since = await intake(db, email_from(two.email_inbox, "other@example.com", verified=False, n=9))
    assert since.customer_id == two.keeper
    totals = (await count(db, Conversation), await count(db, Message))

    undone = await unmerge(db, record.id)

    after = await ownership(db)
    assert (await count(db, Conversation), await count(db, Message)) == totals
    for kind in ("identities", "conversations", "messages"):
        for row, owner in before[kind].items():
            assert after[kind][row] == owner, (kind, row)
    assert after["conversations"][since.conversation_id] == two.keeper
    assert undone.undone_at is not None
    assert (await customer(db, two.other)).merged_into_id is None


async def test_refused_merges(db: Database) -> None:
    two = await two_customers(db)
    third = await _chat(db, two.webchat_inbox, "v_third0000000000000", ["hey"])

    with pytest.raises(InvalidInput):
        await merge(db, two.keeper, two.keeper)
    record = await merge(db, two.keeper, two.other)
    with pytest.raises(Conflict, match="already merged into"):
        await merge(db, third, two.other)
    # Into a record merged away: refused, naming the record to use instead.
    with pytest.raises(Conflict, match=f"merged into customer {two.keeper}"):
        await merge(db, two.other, third)
    await unmerge(db, record.id)
    with pytest.raises(Conflict, match="already undone"):
        await unmerge(db, record.id)
    # After the undo the same merge is allowed again.
    await merge(db, two.keeper, two.other)


async def test_a_chain_is_undone_from_its_end(db: Database) -> None:
    two = await two_customers(db)
    third = await _chat(db, two.webchat_inbox, "v_third0000000000000", ["hey"])
    before = await ownership(db)
    first = await merge(db, two.keeper, two.other)
    second = await merge(db, third, two.keeper)

    with pytest.raises(Conflict, match="undo that merge first"):
        await unmerge(db, first.id)
    await unmerge(db, second.id)
    await unmerge(db, first.id)
    assert await ownership(db) == before


async def test_a_verified_address_follows_its_record_through_merge_and_unmerge(
    db: Database,
) -> None:
    web = await webchat_inbox(db)
    holder = await intake(db, email_from(await email_inbox(db), "pat@example.com", verified=True))
    keeper = await _chat(db, web.id, "v_keeper0000000000000", ["hi"])

    async def visitor(user: str) -> int:
        resolved = await db.run(
            lambda s: do_resolve_sender(
                s,
                inbox_id=web.id,
                channel="webchat",
                external_id=f"user:{user}",
                display_name=None,
                verified_email="pat@example.com",
                verified=True,
            )
        )
        return resolved.customer_id

    assert holder.customer_id is not None
    record = await merge(db, keeper, holder.customer_id)
    assert await visitor("pat-during") == keeper
    await unmerge(db, record.id)
    assert await visitor("pat-after") == holder.customer_id


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
async def test_crossed_merges_at_once_never_both_succeed(db: Database, backend: Backend) -> None:
    two = await two_customers(db)
    totals = (await count(db, Conversation), await count(db, Message))

    outcomes = await asyncio.gather(
        merge(db, two.keeper, two.other), merge(db, two.other, two.keeper), return_exceptions=True
    )

    merged = [o for o in outcomes if isinstance(o, CustomerMerge)]
    refused = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(merged) == 1 and len(refused) == 1, outcomes
    winner = merged[0]
    survivor, loser = await customer(db, winner.survivor_id), await customer(db, winner.merged_id)
    assert survivor.merged_into_id is None and loser.merged_into_id == survivor.id
    assert (await count(db, Conversation), await count(db, Message)) == totals
    owners = await ownership(db)
    assert loser.id not in set(owners["conversations"].values())


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
async def test_a_crossed_merge_waiting_on_the_first_sees_it_and_is_refused(
    db: Database, backend: Backend
) -> None:
    two = await two_customers(db)
    async with db.sessionmaker() as first, first.begin():
        await do_merge(first, survivor_id=two.keeper, merged_id=two.other, actor_user_id=None)
        crossed = asyncio.create_task(merge(db, two.other, two.keeper))
        await wait_until_blocked_on_a_lock(db, backend)
    with pytest.raises(Conflict):
        await crossed
    assert (await customer(db, two.other)).merged_into_id == two.keeper
    assert (await customer(db, two.keeper)).merged_into_id is None
    assert await count(db, CustomerMerge) == 2  # the arranged one and the winner


async def _set_profile(db: Database, customer_id: int, **changes: Any) -> None:
    await db.run(lambda s: do_update_profile(s, customer_id, check_profile_changes(changes)))


async def _note(db: Database, customer_id: int, body: str) -> int:
    note = await db.run(lambda s: do_add_note(s, customer_id, body, author_user_id=None))
    return note.id


async def profile_of(db: Database, customer_id: int) -> dict[str, Any]:
    """Everything of a customer's profile an agent sees, notes by id."""
    async with db.reading() as s:
        found = await s.get(Customer, customer_id)
        assert found is not None
        return {
            **await profile_fields(s, found),
            "notes": sorted(n.id for n in await notes(s, customer_id)),
        }


async def test_merge_carries_tags_notes_and_attributes_and_unmerge_restores_them(
    db: Database,
) -> None:
    two = await two_customers(db)
    await _set_profile(
        db, two.keeper, lifecycle_stage="customer", tags=["billing"], attributes={"plan": "basic"}
    )
    await _set_profile(
        db,
        two.other,
        tier="VIP",
        lifecycle_stage="lead",
        tags=["Billing", "key-account"],
        attributes={"plan": "pro", "seats": 12, "beta": True},
    )
    keeper_note = await _note(db, two.keeper, "prefers email")
    other_notes = [await _note(db, two.other, t) for t in ("called twice", "asked for refund")]
    keeper_before, other_before = await profile_of(db, two.keeper), await profile_of(db, two.other)

    record = await merge(db, two.keeper, two.other)

    merged_view = await profile_of(db, two.keeper)
    assert merged_view == {
        # The survivor keeps what it had; it gains only what it lacked.
        "tier": "vip",
        "lifecycle_stage": "customer",
        "tags": ["billing", "key-account"],
        "attributes": {"beta": True, "plan": "basic", "seats": 12},
        "notes": sorted([keeper_note, *other_notes]),
    }
    assert (await profile_of(db, two.other))["notes"] == []
    assert record.moved["notes"] == sorted(other_notes)
    assert record.moved["tags"] == ["key-account"]
    assert record.moved["attributes"] == ["beta", "seats"]
    assert record.moved["profile"] == ["tier"]
    # A record merged away is not edited: its survivor is.
    with pytest.raises(Conflict):
        await _set_profile(db, two.other, tier="gold")
    with pytest.raises(Conflict):
        await _note(db, two.other, "too late")
    # Since the merge, an agent wrote a note on the survivor: it stays there.
    since = await _note(db, two.keeper, "merged the two records")

    await unmerge(db, record.id)

    assert await profile_of(db, two.other) == other_before
    assert await profile_of(db, two.keeper) == {
        **keeper_before,
        "notes": sorted([keeper_note, since]),
    }


async def test_unmerge_leaves_a_carried_value_the_survivor_changed_since(db: Database) -> None:
    two = await two_customers(db)
    await _set_profile(db, two.other, tier="vip", tags=["key-account"], attributes={"seats": 12})
    record = await merge(db, two.keeper, two.other)
    await _set_profile(db, two.keeper, tier="gold", attributes={"seats": 40})

    await unmerge(db, record.id)

    keeper = await profile_of(db, two.keeper)
    assert (keeper["tier"], keeper["attributes"], keeper["tags"]) == ("gold", {"seats": 40}, [])
    other = await profile_of(db, two.other)
    assert (other["tier"], other["attributes"], other["tags"]) == (
        "vip",
        {"seats": 12},
        ["key-account"],
    )
