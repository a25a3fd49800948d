"""Customer operations: resolve the sender of a message to one customer record.

One customer, many identities. Only verified joins verified; everything else is at most
a merge suggestion (customers.suggestions) for an agent to act on (customers.merge).

A verified address is one the channel vouches for (`verified_email`: the signed email
of an identified web-chat visitor, an email sender our own MTA authenticated). Each
verified address has one holder, the record whose `customers.verified_email` it is
(unique), followed through `merged_into_id` if that record was merged away.

  the sender is                        and the address             result
  new, with a verified address         has a live holder           joins the holder, verified
  new, with a verified address         has no holder               new record holding it
  new, mail without verification       (From: is not identity)     new record, email set,
                                                                   unverified; suggested
  new, anything else                   -                           new record
  known, now with a verified address   held by its own record,     identity marked verified
                                       or by nobody (and its       (its record claims the
                                       record holds none)          address)
  known, now with a verified address   held by another record      unchanged; suggested

A known identity is never moved to another record without an agent. Two first messages
at once with one verified address meet at the unique constraint (INSERT … ON CONFLICT
DO NOTHING waits for the other's commit) and the second joins the first's record.

An email identity carries its address (`sender_id` is the lowercased address) but is
verified only when the message says the channel verified that same address (SECURITY §2).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.search_terms import index_customer
from customers.keys import name_key, normalise_email
from customers.models import Customer, Identity
from switchboard.db import utcnow
from switchboard.upsert import insert_ignoring_conflict

log = logging.getLogger(__name__)

EMAIL_CHANNEL = "email"
# A merge chain longer than this is a bug (merges refuse merged survivors), not data.
MAX_MERGE_HOPS = 32


@dataclass(frozen=True)
class ResolvedSender:
    customer_id: int
    identity_id: int
    created: bool


def _vouched_address(channel: str, external_id: str, verified_email: str | None) -> str | None:
    address = normalise_email(verified_email) if verified_email is not None else None
    if verified_email is not None and address is None:
        log.warning("ignoring a verified email that is not an address")
    if address is not None and channel == EMAIL_CHANNEL and address != external_id.lower():
        # An email channel can only vouch for the address the mail came from.
        log.warning("ignoring a verified email that is not the sender's address")
        return None
    return address


async def do_resolve_sender(
    session: AsyncSession,
    *,
    inbox_id: int,
    channel: str,
    external_id: str,
    display_name: str | None,
    verified_email: str | None = None,
    verified: bool = False,
) -> ResolvedSender:
    """Find the customer behind (inbox, sender id), creating customer and identity if new.

    `verified_email`: the channel vouches for this address (see InboundMessage); a new
    identity joins the customer holding it. `verified`: the channel vouches for the
    identity itself (a signed web-chat visitor), even without an address."""
    address = _vouched_address(channel, external_id, verified_email)
    found = await _find_identity(session, inbox_id, external_id)
    if found is not None:
        if address is not None and not (found.verified and found.verified_email == address):
            await _adopt_address(session, found, address)
        return ResolvedSender(customer_id=found.customer_id, identity_id=found.id, created=False)
    if address is not None:
        return await _new_verified_identity(
            session, inbox_id, channel, external_id, display_name, address
        )
    carried = normalise_email(external_id) if channel == EMAIL_CHANNEL else None
    customer = Customer(name=display_name, email=carried)
    session.add(customer)
    await session.flush()
    identity_id = await _insert_identity(
        session, customer.id, inbox_id, channel, external_id, display_name, verified
    )
    if identity_id is None:
        # Another transaction created this identity first: use theirs, drop our customer.
        await session.delete(customer)
        return await _existing(session, inbox_id, external_id)
    await index_customer(session, customer.id)
    return ResolvedSender(customer_id=customer.id, identity_id=identity_id, created=True)


async def is_resolved(
    session: AsyncSession,
    *,
    inbox_id: int,
    channel: str,
    external_id: str,
    verified_email: str | None = None,
) -> bool:
    """True if `do_resolve_sender` would change nothing: read-only, so an edge that sees
    the same sender often (a visitor's every page load) can skip the write transaction."""
    address = _vouched_address(channel, external_id, verified_email)
    found = (
        await session.execute(
            select(Identity.verified, Customer.verified_email)
            .join(Customer, Customer.id == Identity.customer_id)
            .where(Identity.inbox_id == inbox_id, Identity.external_id == external_id)
        )
    ).one_or_none()
    if found is None:
        return False
    return address is None or (found.verified and found.verified_email == address)


async def _find_identity(session: AsyncSession, inbox_id: int, external_id: str) -> Any:
    # FOR SHARE of the identity (PostgreSQL; SQLite serialises writers anyway): a merge
    # moving this identity waits for us, or we wait for it and read where it moved, so a
    # conversation opened now never lands on a record just merged away.
    return (
        await session.execute(
            select(
                Identity.id,
                Identity.customer_id,
                Identity.verified,
                Customer.verified_email,
            )
            .join(Customer, Customer.id == Identity.customer_id)
            .where(Identity.inbox_id == inbox_id, Identity.external_id == external_id)
            .with_for_update(read=True, of=Identity)
        )
    ).one_or_none()


async def _existing(session: AsyncSession, inbox_id: int, external_id: str) -> ResolvedSender:
    row = await _find_identity(session, inbox_id, external_id)
    return ResolvedSender(customer_id=row.customer_id, identity_id=row.id, created=False)


async def _insert_identity(
    session: AsyncSession,
    customer_id: int,
    inbox_id: int,
    channel: str,
    external_id: str,
    display_name: str | None,
    verified: bool,
) -> int | None:
    return await insert_ignoring_conflict(
        session,
        Identity.__table__,  # type: ignore[arg-type]
        {
            "customer_id": customer_id,
            "inbox_id": inbox_id,
            "channel": channel,
            "external_id": external_id,
            "display_name": display_name,
            "reachable": True,
            "verified": verified,
            "created_at": utcnow(),
        },
        ("inbox_id", "external_id"),
    )


async def _new_verified_identity(
    session: AsyncSession,
    inbox_id: int,
    channel: str,
    external_id: str,
    display_name: str | None,
    address: str,
) -> ResolvedSender:
    created = False
    holder = await holder_of_address(session, address)
    if holder is None:
        # ON CONFLICT DO NOTHING on the unique address: a concurrent first message with the
        # same address makes us wait for its commit, then find its record below.
        holder = await insert_ignoring_conflict(
            session,
            Customer.__table__,  # type: ignore[arg-type]
            {
                "name": display_name,
                "name_key": name_key(display_name),
                "email": address,
                "verified_email": address,
                "created_at": utcnow(),
            },
            ("verified_email",),
        )
        created = holder is not None
        if holder is None:
            holder = await holder_of_address(session, address)
            assert holder is not None, "the conflicting record is committed"
    identity_id = await _insert_identity(
        session, holder, inbox_id, channel, external_id, display_name, True
    )
    if identity_id is None:
        if created:
            await session.execute(delete(Customer).where(Customer.id == holder))
        return await _existing(session, inbox_id, external_id)
    await index_customer(session, holder)
    return ResolvedSender(customer_id=holder, identity_id=identity_id, created=created)


async def _adopt_address(session: AsyncSession, found: Any, address: str) -> None:
    """A known identity now arrives vouched for. It becomes verified only where that
    keeps one holder per address: its customer already holds the address, or holds none
    and nobody else does. Otherwise it stays as it was (a suggestion shows the overlap);
    a known identity is never moved to another record without an agent."""
    holder = await holder_of_address(session, address)
    if holder is None and found.verified_email is None:
        # A concurrent claim of the same address fails the unique constraint and the
        # transaction is retried (switchboard.tx), finding the holder then.
        await session.execute(
            update(Customer)
            .where(Customer.id == found.customer_id, Customer.verified_email.is_(None))
            .values(verified_email=address, email=func.coalesce(Customer.email, address))
        )
        await index_customer(session, found.customer_id)
        holder = found.customer_id
    if holder == found.customer_id and not found.verified:
        await session.execute(update(Identity).where(Identity.id == found.id).values(verified=True))


async def holder_of_address(session: AsyncSession, address: str) -> int | None:
    """The live customer holding this verified address: the record that claimed it, or
    the record it was merged into. The row is locked FOR SHARE (PostgreSQL) and re-read,
    so a merge in flight finishes first and we follow it."""
    customer_id = (
        await session.execute(select(Customer.id).where(Customer.verified_email == address))
    ).scalar_one_or_none()
    if customer_id is None:
        return None
    return await final_customer_id(session, customer_id, lock=True)


async def final_customer_id(session: AsyncSession, customer_id: int, *, lock: bool = False) -> int:
    """Follow `merged_into_id` to the record that is not merged away."""
    for _ in range(MAX_MERGE_HOPS):
        query = select(Customer.merged_into_id).where(Customer.id == customer_id)
        if lock:
            query = query.with_for_update(read=True)
        merged_into = (await session.execute(query)).scalar_one()
        if merged_into is None:
            return customer_id
        customer_id = merged_into
    raise RuntimeError(f"merge chain from customer {customer_id} is too long")


async def get_customer(session: AsyncSession, customer_id: int) -> Customer | None:
    return await session.get(Customer, customer_id)
