"""A customer's profile as staff keep it: tier, lifecycle stage, tags, custom attributes
and staff notes.

`check_*` validate what a caller sent (any JSON value) and raise `InvalidInput` naming
the field, so a bad change stores nothing; `do_update_profile` applies a checked change
under the customer's row lock (the lock merges take, so a profile edit and a merge never
interleave). Tags are normalised as ticket tags are (lowercase; letters, digits and
- _ . : /), so a routing rule's `customer_tags` and a bot rule's `tag` compare equal.
Notes are for staff only: nothing here is ever sent to the customer.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from customers.models import Customer, CustomerNote, CustomerTag
from switchboard.db import utcnow
from switchboard.errors import Conflict, InvalidInput, NotFound

LIFECYCLE_STAGES = ("lead", "prospect", "customer", "churned")
MAX_TIER = 50
MAX_TAG = 50
MAX_TAGS = 50
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_KEY = 64
MAX_ATTRIBUTE_TEXT = 500
# The whole object as compact JSON: keeps one customer's row small whatever is sent.
MAX_ATTRIBUTES_BYTES = 8192
MAX_NOTE = 10_000
MAX_NOTES_SHOWN = 200
# JSON numbers beyond this lose precision in JavaScript (and in some JSON columns).
MAX_SAFE_INTEGER = 2**53 - 1

# The same rule as ticket tags (tickets.checks): safe in a URL query and in any page.
_TAG = re.compile(r"^[\w\-.:/]+$")
# Tiers are admin-defined words: "vip", "gold", "tier-2".
_TIER = re.compile(r"^[\w\-.]+$")
_ATTRIBUTE_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
# C0/C1 controls (tab and newlines allowed in notes) and lone surrogates.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_LINE_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

_FIELDS = ("tier", "lifecycle_stage", "tags", "attributes")


def _bad(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", code=f"invalid_{field}")


def check_tier(raw: object) -> str | None:
    """A tier is a short word (lowercased) or null for none."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise _bad("tier", "must be a string or null")
    tier = raw.strip().lower()
    if not tier:
        return None
    if len(tier) > MAX_TIER or not _TIER.match(tier):
        raise _bad("tier", f"1 to {MAX_TIER} letters, digits or - _ . (got {raw[:60]!r})")
    return tier


def check_lifecycle_stage(raw: object) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or raw not in LIFECYCLE_STAGES:
        raise _bad("lifecycle_stage", f"must be one of {', '.join(LIFECYCLE_STAGES)} or null")
    return raw


def check_tag(raw: object) -> str:
    if not isinstance(raw, str):
        raise _bad("tags", "each tag must be a string")
    tag = raw.strip().lower()
    if not tag or len(tag) > MAX_TAG or not _TAG.match(tag):
        raise _bad(
            "tags", f"a tag is 1 to {MAX_TAG} letters, digits or - _ . : / (got {raw[:60]!r})"
        )
    return tag


def check_tags(raw: object) -> tuple[str, ...]:
    """Distinct tags, lowercased, sorted."""
    if not isinstance(raw, list):
        raise _bad("tags", "must be a list of strings")
    if len(raw) > MAX_TAGS:
        raise _bad("tags", f"at most {MAX_TAGS} tags")
    return tuple(sorted({check_tag(item) for item in raw}))


def _check_value(key: str, value: object) -> str | int | float | bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise _bad("attributes", f"{key}: whole numbers are at most {MAX_SAFE_INTEGER}")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _bad("attributes", f"{key}: numbers must be finite")
        return value
    if isinstance(value, str):
        if len(value) > MAX_ATTRIBUTE_TEXT:
            raise _bad("attributes", f"{key}: text is at most {MAX_ATTRIBUTE_TEXT} characters")
        if _LINE_CONTROL.search(value):
            raise _bad("attributes", f"{key}: text must not contain control characters")
        return value
    raise _bad("attributes", f"{key}: a value is a string, number or true/false")


def check_attributes(raw: object) -> dict[str, str | int | float | bool]:
    """Custom attributes: an object of at most MAX_ATTRIBUTES string keys to scalars,
    at most MAX_ATTRIBUTES_BYTES as JSON. It replaces the whole set."""
    if not isinstance(raw, dict):
        raise _bad("attributes", "must be an object of names to values")
    if len(raw) > MAX_ATTRIBUTES:
        raise _bad("attributes", f"at most {MAX_ATTRIBUTES} attributes")
    out: dict[str, str | int | float | bool] = {}
    for key, value in raw.items():
        if (
            not isinstance(key, str)
            or len(key) > MAX_ATTRIBUTE_KEY
            or not _ATTRIBUTE_KEY.match(key)
        ):
            raise _bad(
                "attributes",
                f"a name is 1 to {MAX_ATTRIBUTE_KEY} letters, digits or _ . - (got {key[:60]!r})",
            )
        out[key] = _check_value(key, value)
    if len(json.dumps(out, ensure_ascii=False, separators=(",", ":")).encode()) > (
        MAX_ATTRIBUTES_BYTES
    ):
        raise _bad("attributes", f"at most {MAX_ATTRIBUTES_BYTES} bytes in all")
    return dict(sorted(out.items()))


def check_note_body(raw: object) -> str:
    if not isinstance(raw, str):
        raise InvalidInput("body must be a string", code="invalid_body")
    body = raw.strip()
    if not body or len(body) > MAX_NOTE:
        raise InvalidInput(f"body is 1 to {MAX_NOTE} characters", code="invalid_body")
    if _CONTROL.search(body):
        raise InvalidInput("body must not contain control characters", code="invalid_body")
    return body


_UNSET: Any = object()


@dataclass(frozen=True)
class ProfileChanges:
    """A checked change: only the fields given are changed."""

    tier: Any = _UNSET
    lifecycle_stage: Any = _UNSET
    tags: Any = _UNSET
    attributes: Any = _UNSET


def check_profile_changes(raw: Mapping[str, Any]) -> ProfileChanges:
    """A request body's changes; unknown fields (ids, names, owners) are refused."""
    unknown = sorted(set(raw) - set(_FIELDS))
    if unknown:
        raise InvalidInput(
            f"{unknown[0][:40]}: cannot be changed here (fields: {', '.join(_FIELDS)})",
            code="unknown_field",
        )
    if not raw:
        raise InvalidInput(f"nothing to change (fields: {', '.join(_FIELDS)})", code="no_changes")
    given: dict[str, Any] = {}
    if "tier" in raw:
        given["tier"] = check_tier(raw["tier"])
    if "lifecycle_stage" in raw:
        given["lifecycle_stage"] = check_lifecycle_stage(raw["lifecycle_stage"])
    if "tags" in raw:
        given["tags"] = check_tags(raw["tags"])
    if "attributes" in raw:
        given["attributes"] = check_attributes(raw["attributes"])
    return ProfileChanges(**given)


async def lock_customer(session: AsyncSession, customer_id: int) -> Customer:
    """The customer, read afresh under its row lock (PostgreSQL; SQLite serialises
    writers); the same lock `customers.merge` takes."""
    customer = (
        await session.execute(
            select(Customer)
            .where(Customer.id == customer_id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if customer is None:
        raise NotFound("customer not found")
    return customer


async def customer_tags(session: AsyncSession, customer_id: int) -> list[str]:
    return list(
        (
            await session.execute(
                select(CustomerTag.tag)
                .where(CustomerTag.customer_id == customer_id)
                .order_by(CustomerTag.tag)
            )
        ).scalars()
    )


async def _replace_tags(session: AsyncSession, customer_id: int, tags: Sequence[str]) -> None:
    have = set(await customer_tags(session, customer_id))
    gone = sorted(have - set(tags))
    if gone:
        await session.execute(
            delete(CustomerTag).where(
                CustomerTag.customer_id == customer_id, CustomerTag.tag.in_(gone)
            )
        )
    for tag in sorted(set(tags) - have):
        session.add(CustomerTag(customer_id=customer_id, tag=tag))
    await session.flush()


async def do_update_profile(
    session: AsyncSession, customer_id: int, changes: ProfileChanges
) -> Customer:
    """Apply a checked change. A record merged away is refused (409 naming where it
    went): its survivor is the one to edit."""
    customer = await lock_customer(session, customer_id)
    if customer.merged_into_id is not None:
        raise Conflict(
            f"customer {customer.id} was merged into customer {customer.merged_into_id};"
            " change that record",
            code="merged_record",
        )
    if changes.tier is not _UNSET:
        customer.tier = changes.tier
    if changes.lifecycle_stage is not _UNSET:
        customer.lifecycle_stage = changes.lifecycle_stage
    if changes.attributes is not _UNSET:
        customer.attributes = dict(changes.attributes)
    if changes.tags is not _UNSET:
        await _replace_tags(session, customer.id, changes.tags)
    await session.flush()
    return customer


async def profile_fields(session: AsyncSession, customer: Customer) -> dict[str, Any]:
    """The profile part of a customer's view."""
    return {
        "tier": customer.tier,
        "lifecycle_stage": customer.lifecycle_stage,
        "tags": await customer_tags(session, customer.id),
        "attributes": dict(customer.attributes or {}),
    }


def note_view(note: CustomerNote) -> dict[str, Any]:
    return {
        "id": note.id,
        "customer_id": note.customer_id,
        "author_id": note.author_user_id,
        "body": note.body,
        "created_at": note.created_at.isoformat(),
    }


async def do_add_note(
    session: AsyncSession, customer_id: int, body: str, *, author_user_id: int | None
) -> CustomerNote:
    """Add a staff note (`body` checked by `check_note_body`). Under the customer's row
    lock, so a merge running now moves it too or sees it; a record merged away is
    refused (its notes went to the survivor)."""
    customer = await lock_customer(session, customer_id)
    if customer.merged_into_id is not None:
        raise Conflict(
            f"customer {customer.id} was merged into customer {customer.merged_into_id};"
            " add the note there",
            code="merged_record",
        )
    note = CustomerNote(
        customer_id=customer_id, author_user_id=author_user_id, body=body, created_at=utcnow()
    )
    session.add(note)
    await session.flush()
    return note


async def notes(
    session: AsyncSession, customer_id: int, *, limit: int = MAX_NOTES_SHOWN
) -> list[CustomerNote]:
    """The customer's notes, newest first."""
    return list(
        (
            await session.execute(
                select(CustomerNote)
                .where(CustomerNote.customer_id == customer_id)
                .order_by(CustomerNote.id.desc())
                .limit(limit)
            )
        ).scalars()
    )
