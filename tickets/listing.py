"""The ticket list: filters, a stable order, and opaque cursors between pages.

Pages are keyed on the ticket id (newest or oldest first), so tickets created while an
agent pages through never shift later pages: nothing is shown twice or skipped. The
cursor is the last id shown and the order, base64url-encoded JSON; it is opaque to
clients and checked strictly, and the filters are applied again on every page.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from customers.models import Customer
from switchboard.errors import InvalidInput
from tickets.models import Ticket, TicketConversation, TicketPriority, TicketStatus, TicketTag


class Order(enum.StrEnum):
    NEWEST = "newest"
    OLDEST = "oldest"


class Unassigned(enum.Enum):
    """The assignee filter value for tickets nobody holds."""

    VALUE = "none"


UNASSIGNED = Unassigned.VALUE


@dataclass(frozen=True)
class TicketFilter:
    statuses: tuple[TicketStatus, ...] = ()
    priorities: tuple[TicketPriority, ...] = ()
    assignee: int | Unassigned | None = None  # None: any
    tag: str | None = None
    customer_id: int | None = None
    conversation_id: int | None = None


@dataclass(frozen=True)
class Page:
    tickets: Sequence[Ticket]
    next_cursor: str | None


def encode_cursor(order: Order, last_id: int) -> str:
    raw = json.dumps({"o": order.value, "id": last_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, order: Order) -> int:
    """The last id of the previous page; `InvalidInput` for anything we did not issue
    for this order."""
    bad = InvalidInput("cursor is not valid (pass next_cursor as it was given)", code="bad_cursor")
    if len(cursor) > 200 or not cursor.isascii():
        raise bad
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        raise bad from None
    if not isinstance(data, dict) or set(data) != {"o", "id"}:
        raise bad
    last_id = data["id"]
    if isinstance(last_id, bool) or not isinstance(last_id, int) or not 0 < last_id < 2**31:
        raise bad
    if data["o"] != order.value:
        raise InvalidInput("cursor belongs to another order", code="bad_cursor")
    return last_id


def _conditions(filters: TicketFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if filters.statuses:
        where.append(Ticket.status.in_([s.value for s in filters.statuses]))
    if filters.priorities:
        where.append(Ticket.priority.in_([p.value for p in filters.priorities]))
    if filters.assignee is UNASSIGNED:
        where.append(Ticket.assignee_user_id.is_(None))
    elif isinstance(filters.assignee, int):
        where.append(Ticket.assignee_user_id == filters.assignee)
    if filters.customer_id is not None:
        # The customer's tickets, and those of every record merged into it: a customer
        # merge moves conversations, and their tickets stay with the record they were
        # opened for (`merged_into_id` chains, followed here).
        merged = (
            select(Customer.id)
            .where(Customer.id == filters.customer_id)
            .cte("merged_customers", recursive=True)
        )
        merged = merged.union_all(select(Customer.id).where(Customer.merged_into_id == merged.c.id))
        where.append(Ticket.customer_id.in_(select(merged.c.id)))
    if filters.tag is not None:
        where.append(exists().where(TicketTag.ticket_id == Ticket.id, TicketTag.tag == filters.tag))
    if filters.conversation_id is not None:
        where.append(
            exists().where(
                TicketConversation.ticket_id == Ticket.id,
                TicketConversation.conversation_id == filters.conversation_id,
            )
        )
    return where


async def list_tickets(
    session: AsyncSession,
    *,
    visible: ColumnElement[bool],
    filters: TicketFilter,
    order: Order = Order.NEWEST,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """One page of the tickets matching `filters` among those `visible`."""
    query = select(Ticket).where(visible, *_conditions(filters))
    if cursor is not None:
        last_id = decode_cursor(cursor, order)
        query = query.where(Ticket.id < last_id if order == Order.NEWEST else Ticket.id > last_id)
    query = query.order_by(Ticket.id.desc() if order == Order.NEWEST else Ticket.id.asc())
    rows = list((await session.execute(query.limit(limit + 1))).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor(order, rows[-1].id) if more else None)
