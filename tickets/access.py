"""Who may see which ticket: the one place to change when queues narrow it.

Today every agent, supervisor and admin sees every ticket (queues arrive with routing);
anyone else sees none. `access_ticket_by_id` is the chokepoint for one ticket and
`visible_tickets` the same rule as a filter for lists, so the two can never disagree.
An outsider gets the same 404 for a ticket that exists as for one that does not.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, true
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.errors import NotFound
from switchboard.models import Role, User
from tickets.models import Ticket

STAFF_ROLES = frozenset({Role.AGENT, Role.SUPERVISOR, Role.ADMIN})
MAX_ROW_ID = 2**31 - 1


def ticket_id_from(raw: object) -> int | None:
    """A ticket id from a path or a body, or None if it cannot name a row."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if 0 < raw <= MAX_ROW_ID else None
    # isascii: str.isdigit() also accepts "²" and "١".
    if not isinstance(raw, str) or not (raw.isascii() and raw.isdigit()) or len(raw) > 10:
        return None
    value = int(raw)
    return value if 0 < value <= MAX_ROW_ID else None


def visible_tickets(user: User) -> ColumnElement[bool]:
    """The tickets `user` may see, as a WHERE clause."""
    if user.role not in STAFF_ROLES:
        return false()
    # Queue scoping goes here: agents see their queues' tickets, supervisors and admins
    # all (issue 5, point 6).
    return true()


def may_see_ticket(user: User, ticket: Ticket) -> bool:
    """`visible_tickets` for one loaded ticket."""
    return user.role in STAFF_ROLES


async def access_ticket_by_id(session: AsyncSession, user: User, raw_id: object) -> Ticket:
    """The ticket, if the user may see it; otherwise the same 404 as for no ticket."""
    ticket_id = ticket_id_from(raw_id)
    if ticket_id is None or user.role not in STAFF_ROLES:
        raise NotFound("ticket not found")
    ticket = await session.get(Ticket, ticket_id)
    if ticket is None or not may_see_ticket(user, ticket):
        raise NotFound("ticket not found")
    return ticket
