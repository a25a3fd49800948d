"""Merging two customer records into one, and undoing it exactly.

`do_merge(survivor, merged)` moves the merged record's identities, conversations,
uploaded files and staff notes to the survivor, records exactly which rows moved, and
points the merged record at the survivor (`merged_into_id`). Nothing is deleted: every
conversation and message stays, only its owner changes. The profile is carried over
without being taken from the merged record: the survivor gains the tags it lacked, the
attributes it lacked (its own values win; within its size cap), and the tier and
lifecycle stage if it had none; the record names each one it added. `do_unmerge` moves
exactly those rows back and takes back exactly what was added (an added tag or attribute
the survivor has since changed or dropped is left as it is now); the merged record's own
profile was never touched, so it is as it was. What the survivor gained since (a new
conversation, even one from a moved identity) stays.

Refused, with a clear error: merging a record into itself; merging a record that is
already merged; merging into a record that was itself merged away (the error names the
record it went to; we refuse rather than redirect, so an agent never merges into a
record they did not look at). A survivor that later gets merged elsewhere forms a chain,
which lookups follow; its own merges can be undone only after that later one is.

Concurrency: both customer rows are locked in ascending id order (SELECT … FOR NO KEY
UPDATE on PostgreSQL; SQLite serialises writers) and every check is made again under
the locks, so crossed merges (A into B and B into A at once) never both succeed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.models import Attachment, Conversation
from conversations.search_terms import index_customer
from customers.models import Customer, CustomerMerge, CustomerNote, CustomerTag, Identity
from customers.profile import MAX_ATTRIBUTES, MAX_ATTRIBUTES_BYTES, MAX_TAGS, customer_tags
from customers.service import final_customer_id
from switchboard.db import utcnow
from switchboard.errors import Conflict, InvalidInput, NotFound

# What moves, and how each table names its owner.
_MOVABLE: tuple[tuple[str, Any, Any], ...] = (
    ("identities", Identity.__table__, Identity.__table__.c.customer_id),
    ("conversations", Conversation.__table__, Conversation.__table__.c.customer_id),
    ("attachments", Attachment.__table__, Attachment.__table__.c.uploader_customer_id),
    ("notes", CustomerNote.__table__, CustomerNote.__table__.c.customer_id),
)
# Profile fields the survivor takes from the merged record when it has none.
_FILLED = ("tier", "lifecycle_stage")
# Bound parameters per statement stay well under SQLite's and asyncpg's limits.
_CHUNK = 500


async def _lock_customers(session: AsyncSession, ids: Sequence[int]) -> dict[int, Customer]:
    """Lock the rows one at a time in ascending id order (so two merges sharing a record
    cannot deadlock), reading each afresh under its lock."""
    locked: dict[int, Customer] = {}
    for customer_id in sorted(set(ids)):
        customer = (
            await session.execute(
                select(Customer)
                .where(Customer.id == customer_id)
                # NO KEY UPDATE: excludes other merges, not a new conversation's foreign key.
                .with_for_update(key_share=True)
                .execution_options(populate_existing=True)
            )
        ).scalar_one_or_none()
        if customer is None:
            raise NotFound("customer not found")
        locked[customer_id] = customer
    return locked


async def _move(
    session: AsyncSession, table: Any, owner: Any, *, to: int, where_owner: int, ids: Any = None
) -> list[Any]:
    """Re-own rows; return the ids of the rows that moved."""
    if ids is None:
        statement = update(table).where(owner == where_owner).values({owner.key: to})
        result = await session.execute(statement.returning(table.c.id))
        return sorted(result.scalars())
    moved: list[Any] = []
    ids = list(ids)
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        statement = (
            update(table).where(owner == where_owner, table.c.id.in_(chunk)).values({owner.key: to})
        )
        moved += (await session.execute(statement.returning(table.c.id))).scalars()
    return sorted(moved)


def _json_size(value: dict[str, Any]) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


async def _carry_profile(
    session: AsyncSession, survivor: Customer, merged: Customer
) -> dict[str, list[Any]]:
    """Give the survivor what the merged record's profile has and it lacks; return what
    was added, by kind, for the undo."""
    have = await customer_tags(session, survivor.id)
    room = max(0, MAX_TAGS - len(have))
    tags = [t for t in await customer_tags(session, merged.id) if t not in have][:room]
    for tag in tags:
        session.add(CustomerTag(customer_id=survivor.id, tag=tag))
    attributes = dict(survivor.attributes or {})
    added_keys: list[str] = []
    for key, value in sorted((merged.attributes or {}).items()):
        if key in attributes or len(attributes) >= MAX_ATTRIBUTES:
            continue
        attributes[key] = value
        if _json_size(attributes) > MAX_ATTRIBUTES_BYTES:
            del attributes[key]
            continue
        added_keys.append(key)
    if added_keys:
        survivor.attributes = dict(sorted(attributes.items()))
    filled = [f for f in _FILLED if getattr(survivor, f) is None and getattr(merged, f) is not None]
    for name in filled:
        setattr(survivor, name, getattr(merged, name))
    await session.flush()
    return {"tags": tags, "attributes": added_keys, "profile": filled}


async def _take_back_profile(
    session: AsyncSession, survivor: Customer, merged: Customer, moved: dict[str, Any]
) -> None:
    """Undo `_carry_profile`: exactly what it added, where the survivor still holds the
    value it got (the merged record's own profile cannot change while merged, so its
    values are the ones that were added)."""
    tags = list(moved.get("tags", []))
    if tags:
        await session.execute(
            delete(CustomerTag).where(
                CustomerTag.customer_id == survivor.id, CustomerTag.tag.in_(tags)
            )
        )
    have, given = dict(survivor.attributes or {}), dict(merged.attributes or {})
    added = [k for k in moved.get("attributes", []) if k in have and have[k] == given.get(k)]
    if added:
        survivor.attributes = {k: v for k, v in have.items() if k not in added}
    for name in moved.get("profile", []):
        if getattr(survivor, name) == getattr(merged, name):
            setattr(survivor, name, None)
    await session.flush()


async def do_merge(
    session: AsyncSession, *, survivor_id: int, merged_id: int, actor_user_id: int | None
) -> CustomerMerge:
    """Merge `merged_id` into `survivor_id`; the record of what moved is returned."""
    if survivor_id == merged_id:
        raise InvalidInput("a customer cannot be merged into itself", code="merge_self")
    locked = await _lock_customers(session, (survivor_id, merged_id))
    survivor, merged = locked[survivor_id], locked[merged_id]
    if survivor.merged_into_id is not None:
        final = await final_customer_id(session, survivor.id)
        raise Conflict(
            f"customer {survivor.id} was merged into customer {final}; merge into that record",
            code="merged_record",
        )
    if merged.merged_into_id is not None:
        raise Conflict(
            f"customer {merged.id} is already merged into customer {merged.merged_into_id}",
            code="already_merged",
        )
    moved = {
        name: await _move(session, table, owner, to=survivor.id, where_owner=merged.id)
        for name, table, owner in _MOVABLE
    }
    moved.update(await _carry_profile(session, survivor, merged))
    merged.merged_into_id = survivor.id
    for customer_id in (survivor.id, merged.id):
        await index_customer(session, customer_id)
    record = CustomerMerge(
        survivor_id=survivor.id,
        merged_id=merged.id,
        moved=moved,
        actor_user_id=actor_user_id,
        created_at=utcnow(),
    )
    session.add(record)
    await session.flush()
    return record


async def do_unmerge(
    session: AsyncSession, *, merge_id: int, actor_user_id: int | None
) -> CustomerMerge:
    """Undo one merge: the rows it moved go back, the merged record is live again."""
    found = await session.get(CustomerMerge, merge_id)
    if found is None:
        raise NotFound("merge not found")
    locked = await _lock_customers(session, (found.survivor_id, found.merged_id))
    # Read again under the customers' locks: a concurrent undo of the same merge has
    # finished by now, and we must see it.
    record = (
        await session.execute(
            select(CustomerMerge)
            .where(CustomerMerge.id == merge_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    if record.undone_at is not None:
        raise Conflict("this merge was already undone", code="already_undone")
    survivor, merged = locked[record.survivor_id], locked[record.merged_id]
    if merged.merged_into_id != survivor.id:
        raise Conflict(f"customer {merged.id} is not merged into {survivor.id}", code="not_merged")
    if survivor.merged_into_id is not None:
        raise Conflict(
            f"customer {survivor.id} was since merged into customer {survivor.merged_into_id};"
            " undo that merge first",
            code="merged_since",
        )
    for name, table, owner in _MOVABLE:
        await _move(
            session,
            table,
            owner,
            to=merged.id,
            where_owner=survivor.id,
            ids=record.moved.get(name, []),
        )
    await _take_back_profile(session, survivor, merged, record.moved)
    merged.merged_into_id = None
    for customer_id in (survivor.id, merged.id):
        await index_customer(session, customer_id)
    record.undone_at = utcnow()
    record.undone_by_user_id = actor_user_id
    await session.flush()
    return record


def merge_view(record: CustomerMerge) -> dict[str, Any]:
    return {
        "id": record.id,
        "survivor_id": record.survivor_id,
        "merged_id": record.merged_id,
        "moved": {name: len(ids) for name, ids in record.moved.items()},
        "actor_user_id": record.actor_user_id,
        "created_at": record.created_at.isoformat(),
        "undone_at": record.undone_at.isoformat() if record.undone_at else None,
    }
