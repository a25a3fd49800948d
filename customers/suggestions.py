"""Merge suggestions: other records that may be the same person. Never merged by us.

A suggestion is another live (not merged away) customer sharing, with this one:
- an email address that is not verified on both sides (the customer's address, its
  verified address, or the address of one of its email identities); two verified
  copies of one address cannot exist, they are one record already (customers.service);
- the same phone number (its digits, customers.keys.phone_key);
- the same name, ignoring case and spacing, when the name is not trivial
  (customers.keys.name_key).
Each suggestion says which of these matched. An agent merges (customers.merge).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from customers.models import Customer, Identity
from customers.service import EMAIL_CHANNEL

SAME_EMAIL, SAME_PHONE, SAME_NAME = "same_email", "same_phone", "same_name"
_ORDER = (SAME_EMAIL, SAME_PHONE, SAME_NAME)
MAX_SUGGESTIONS = 20


@dataclass(frozen=True)
class Suggestion:
    customer: Customer
    reasons: tuple[str, ...]


async def _addresses(session: AsyncSession, customer: Customer) -> set[str]:
    identities = await session.execute(
        select(Identity.external_id).where(
            Identity.customer_id == customer.id, Identity.channel == EMAIL_CHANNEL
        )
    )
    found = {a.lower() for a in identities.scalars()}
    found |= {a.lower() for a in (customer.email, customer.verified_email) if a}
    return found


async def merge_suggestions(
    session: AsyncSession, customer: Customer, *, limit: int = MAX_SUGGESTIONS
) -> list[Suggestion]:
    """Records that may be the same person as `customer`, best matches first."""
    if customer.merged_into_id is not None:
        return []  # suggestions belong to the record it was merged into
    reasons: dict[int, set[str]] = {}

    def add(ids: object, reason: str) -> None:
        for customer_id in ids:  # type: ignore[attr-defined]
            if customer_id != customer.id:
                reasons.setdefault(customer_id, set()).add(reason)

    live = Customer.merged_into_id.is_(None)
    addresses = sorted(await _addresses(session, customer))
    if addresses:
        by_record = select(Customer.id).where(
            live, or_(Customer.email.in_(addresses), Customer.verified_email.in_(addresses))
        )
        add((await session.execute(by_record.limit(limit + 1))).scalars(), SAME_EMAIL)
        by_identity = (
            select(Identity.customer_id)
            .join(Customer, Customer.id == Identity.customer_id)
            .where(live, Identity.channel == EMAIL_CHANNEL, Identity.external_id.in_(addresses))
        )
        add((await session.execute(by_identity.limit(limit + 1))).scalars(), SAME_EMAIL)
    if customer.phone_key:
        same_phone = select(Customer.id).where(live, Customer.phone_key == customer.phone_key)
        add((await session.execute(same_phone.limit(limit + 1))).scalars(), SAME_PHONE)
    if customer.name_key:
        same_name = select(Customer.id).where(live, Customer.name_key == customer.name_key)
        add((await session.execute(same_name.limit(limit + 1))).scalars(), SAME_NAME)
    if not reasons:
        return []
    best = sorted(reasons, key=lambda cid: (-len(reasons[cid]), cid))[:limit]
    rows = await session.execute(select(Customer).where(Customer.id.in_(best)))
    by_id = {c.id: c for c in rows.scalars()}
    return [
        Suggestion(by_id[cid], tuple(r for r in _ORDER if r in reasons[cid]))
        for cid in best
        if cid in by_id
    ]
