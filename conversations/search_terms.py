"""The search index of customers and tickets: one row per (term, customer) and per
(term, ticket), the terms made as the message index makes them (`conversations.search`:
NFKC, case-folded, traditional → simplified Chinese; words, and Chinese bigrams plus
single characters). Searching them is a primary-key range scan per term, on SQLite and
PostgreSQL alike, where a substring scan read every customer (~150 ms at 100,000).

A customer is indexed under its name, email, phone and each identity's external id and
display name; a phone-like field (digits, spaces and + - ( ) .) also under every suffix
of its digits of `MIN_DIGITS` or more, so "138 0000 1111", "+8613800001111" and
"00001111" all find "+86 138 0000 1111". A ticket is indexed under its subject and notes.

The rows are written in the transaction that writes what they index: a customer created
or given an identity (`customers.service`), merged or unmerged (`customers.merge`); a
ticket opened or its subject changed, and a note added (`tickets.service`). Writers
elsewhere (tests, imports, the benchmark's bulk load) call `index_customer` /
`index_ticket`, or `backfill` over everything (migration 0017 does).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, ForeignKey, Index, String, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from customers.models import Customer, Identity
from knowledge_base.search import index_terms, normalise
from switchboard.db import Base
from tickets.models import Ticket, TicketNote

MAX_TERM = 64
MIN_DIGITS = 4
_PHONE_LIKE = re.compile(r"[\d\s+\-().]+")


class CustomerTerm(Base):
    """A customer's search terms (see the module docstring)."""

    __tablename__ = "customer_terms"
    # Reindexing a customer deletes its rows by this index.
    __table_args__ = (Index("ix_customer_terms_customer_id", "customer_id"),)

    term: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )


class TicketTerm(Base):
    """A ticket's search terms: its subject's and its notes'."""

    __tablename__ = "ticket_terms"
    __table_args__ = (Index("ix_ticket_terms_ticket_id", "ticket_id"),)

    term: Mapped[str] = mapped_column(String(64), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )


# --- terms ---------------------------------------------------------------------------------


def phone_digits(text: str) -> str | None:
    """The digits of a phone-like text of `MIN_DIGITS` or more digits, else None."""
    flat = normalise(text).strip()
    if not flat or _PHONE_LIKE.fullmatch(flat) is None:
        return None
    digits = "".join(c for c in flat if c.isascii() and c.isdigit())
    return digits[-MAX_TERM:] if len(digits) >= MIN_DIGITS else None


def field_terms(texts: Iterable[str | None], *, phones: Iterable[str | None] = ()) -> list[str]:
    """The distinct terms of some fields; `phones` also under their digit suffixes."""
    terms: list[str] = []
    for text in texts:
        if text:
            terms.extend(term[:MAX_TERM] for term in index_terms(text) if term)
    for text in phones:
        digits = phone_digits(text) if text else None
        if digits is not None:
            terms.extend(digits[i:] for i in range(len(digits) - MIN_DIGITS + 1))
    return list(dict.fromkeys(terms))


def customer_terms(
    name: str | None,
    email: str | None,
    phone: str | None,
    identities: Sequence[tuple[str | None, str | None]] = (),
) -> list[str]:
    """A customer's terms; `identities` are (external id, display name) pairs."""
    texts = [name, email, phone]
    for external_id, display_name in identities:
        texts += [external_id, display_name]
    return field_terms(texts, phones=[phone, *(external_id for external_id, _ in identities)])


# --- writing -------------------------------------------------------------------------------


def _insert(session: AsyncSession) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


async def index_customer(session: AsyncSession, customer_id: int) -> None:
    """Write a customer's terms anew from its row and identities (in this transaction)."""
    row = (
        await session.execute(
            select(Customer.name, Customer.email, Customer.phone).where(Customer.id == customer_id)
        )
    ).one_or_none()
    await session.execute(delete(CustomerTerm).where(CustomerTerm.customer_id == customer_id))
    if row is None:
        return
    identities = (
        await session.execute(
            select(Identity.external_id, Identity.display_name).where(
                Identity.customer_id == customer_id
            )
        )
    ).all()
    terms = customer_terms(row.name, row.email, row.phone, [(i[0], i[1]) for i in identities])
    if terms:
        await session.execute(
            _insert(session)(CustomerTerm).on_conflict_do_nothing(),
            [{"term": term, "customer_id": customer_id} for term in terms],
        )


async def index_ticket(session: AsyncSession, ticket_id: int) -> None:
    """Write a ticket's terms anew from its subject and notes (in this transaction)."""
    subject = (
        await session.execute(select(Ticket.subject).where(Ticket.id == ticket_id))
    ).one_or_none()
    await session.execute(delete(TicketTerm).where(TicketTerm.ticket_id == ticket_id))
    if subject is None:
        return
    notes = (
        await session.execute(select(TicketNote.body).where(TicketNote.ticket_id == ticket_id))
    ).scalars()
    await add_ticket_text(session, ticket_id, subject[0], *notes)


async def add_ticket_text(session: AsyncSession, ticket_id: int, *texts: str | None) -> None:
    """Add terms to a ticket (a new note's), keeping those it has."""
    terms = field_terms(texts)
    if terms:
        await session.execute(
            _insert(session)(TicketTerm).on_conflict_do_nothing(),
            [{"term": term, "ticket_id": ticket_id} for term in terms],
        )


def backfill(connection: Connection, batch: int = 2000) -> tuple[int, int]:
    """Index every customer and ticket in bulk, adding what the index lacks (migration
    0017, a bulk load): (customers, tickets) read. Synchronous (`run_sync` from async)."""
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    customers, tickets = Customer.__table__.c, Ticket.__table__.c
    done = [0, 0]
    last = 0
    while rows := connection.execute(
        select(customers.id, customers.name, customers.email, customers.phone)
        .where(customers.id > last)
        .order_by(customers.id)
        .limit(batch)
    ).all():
        last = rows[-1].id
        identities: dict[int, list[tuple[str | None, str | None]]] = {}
        for owner, external_id, display_name in connection.execute(
            select(Identity.customer_id, Identity.external_id, Identity.display_name).where(
                Identity.customer_id.in_([row.id for row in rows])
            )
        ):
            identities.setdefault(owner, []).append((external_id, display_name))
        values = [
            {"term": term, "customer_id": row.id}
            for row in rows
            for term in customer_terms(row.name, row.email, row.phone, identities.get(row.id, []))
        ]
        if values:
            connection.execute(insert(CustomerTerm).on_conflict_do_nothing(), values)
        done[0] += len(rows)
    last = 0
    while ticket_rows := connection.execute(
        select(tickets.id, tickets.subject)
        .where(tickets.id > last)
        .order_by(tickets.id)
        .limit(batch)
    ).all():
        last = ticket_rows[-1].id
        notes: dict[int, list[str]] = {}
        for owner, body in connection.execute(
            select(TicketNote.ticket_id, TicketNote.body).where(
                TicketNote.ticket_id.in_([row.id for row in ticket_rows])
            )
        ):
            notes.setdefault(owner, []).append(body)
        values = [
            {"term": term, "ticket_id": row.id}
            for row in ticket_rows
            for term in field_terms([row.subject, *notes.get(row.id, [])])
        ]
        if values:
            connection.execute(insert(TicketTerm).on_conflict_do_nothing(), values)
        done[1] += len(ticket_rows)
    return done[0], done[1]
