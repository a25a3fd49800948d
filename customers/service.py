"""Customer operations: resolve the sender of a message to one customer record."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from customers.models import Customer, Identity
from switchboard.upsert import insert_ignoring_conflict


@dataclass(frozen=True)
class ResolvedSender:
    customer_id: int
    identity_id: int
    created: bool


async def do_resolve_sender(
    session: AsyncSession,
    *,
    inbox_id: int,
    channel: str,
    external_id: str,
    display_name: str | None,
    verified_email: str | None = None,
) -> ResolvedSender:
    """Find the customer behind (inbox, sender id), creating customer and identity if new.

    `verified_email`: the channel vouches for this address (see InboundMessage)."""
    found = (
        await session.execute(
            select(Identity.id, Identity.customer_id).where(
                Identity.inbox_id == inbox_id, Identity.external_id == external_id
            )
        )
    ).one_or_none()
    if found is not None:
        return ResolvedSender(customer_id=found.customer_id, identity_id=found.id, created=False)
    customer = Customer(name=display_name)
    session.add(customer)
    await session.flush()
    identity_id = await insert_ignoring_conflict(
        session,
        Identity.__table__,  # type: ignore[arg-type]
        {
            "customer_id": customer.id,
            "inbox_id": inbox_id,
            "channel": channel,
            "external_id": external_id,
            "display_name": display_name,
            "reachable": True,
            "created_at": customer.created_at,
        },
        ("inbox_id", "external_id"),
    )
    if identity_id is None:
        # Another transaction created this identity first: use theirs, drop our customer.
        await session.delete(customer)
        row = (
            await session.execute(
                select(Identity.id, Identity.customer_id).where(
                    Identity.inbox_id == inbox_id, Identity.external_id == external_id
                )
            )
        ).one()
        return ResolvedSender(customer_id=row.customer_id, identity_id=row.id, created=False)
    return ResolvedSender(customer_id=customer.id, identity_id=identity_id, created=True)


async def get_customer(session: AsyncSession, customer_id: int) -> Customer | None:
    return await session.get(Customer, customer_id)
