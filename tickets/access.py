"""Who may see which ticket: the one place to change when queues narrow it.

Supervisors and admins see every ticket. An agent sees the tickets of the queues they
belong to, the tickets assigned to them, and tickets in no queue (not routed anywhere,
so everyone's); anyone else sees none. Memberships are read on every request, so
removing an agent from a queue takes effect at once. `access_ticket_by_id` is the
chokepoint for one ticket and `visible_tickets` the same rule as a filter for lists, so
the two can never disagree.
An outsider gets the same 404 for a ticket that exists as for one that does not.
`web.access` re-exports these beside the conversation and customer rules built on them;
the web layer imports them from there.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, false, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from routing.models import QueueMember
from switchboard.errors import NotFound
from switchboard.models import Role, User
from switchboard.tx import Database
from tickets.models import Ticket

log = logging.getLogger(__name__)

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
    if user.role != Role.AGENT:
        return true()
    return or_(
        Ticket.queue_id.is_(None),
        Ticket.assignee_user_id == user.id,
        Ticket.queue_id.in_(select(QueueMember.queue_id).where(QueueMember.user_id == user.id)),
    )


async def may_see_ticket_view(db: Database, user: User, view: Mapping[str, Any]) -> bool:
    """`visible_tickets` for a ticket as an event carries it (its view, with `queue_id`
    and `assignee_id`): the live inbox forwards a ticket event only to those who could
    GET the ticket. Reads the database only for an agent and a queued ticket that is
    not theirs. Keep in step with `visible_tickets`."""
    if user.role not in STAFF_ROLES:
        return False
    if user.role != Role.AGENT:
        return True
    queue_id = view.get("queue_id")
    if queue_id is None or view.get("assignee_id") == user.id:
        return True
    try:
        async with db.reading() as session:
            found = await session.execute(
                select(QueueMember.queue_id)
                .where(QueueMember.user_id == user.id, QueueMember.queue_id == queue_id)
                .limit(1)
            )
            return found.first() is not None
    except Exception:
        # Could not check (the database is restarting): not forwarded. The inbox
        # re-reads what it shows from the API, which checks again.
        log.warning("ticket visibility check failed for user %s", user.id, exc_info=True)
        return False


@dataclasses.dataclass(frozen=True)
class TicketAudience:
    """`visible_tickets` for one ticket, read once for all of a process's sockets: the
    ticket's queue, its assignee and that queue's members, so each socket decides in
    memory. Built per event (never kept across events), so a membership removed before
    the event applies to it."""

    queue_id: int | None
    assignee_id: int | None
    members: frozenset[int]  # the users in `queue_id` (none read when it is None)

    def admits(self, user: User) -> bool:
        if user.role not in STAFF_ROLES:
            return False
        if user.role != Role.AGENT:
            return True
        return self.queue_id is None or self.assignee_id == user.id or user.id in self.members


async def ticket_view_audience(db: Database, view: Mapping[str, Any]) -> TicketAudience | None:
    """Who may see a ticket as an event carries it (`may_see_ticket_view` for every user
    at once): one read of the queue's members, none for a ticket in no queue. None when
    the database could not be read (then no agent is admitted)."""
    queue_id = view.get("queue_id")
    assignee_id = view.get("assignee_id")
    assignee = assignee_id if isinstance(assignee_id, int) else None
    if queue_id is None:
        return TicketAudience(None, assignee, frozenset())
    try:
        async with db.reading() as session:
            members = (
                await session.execute(
                    select(QueueMember.user_id).where(QueueMember.queue_id == queue_id)
                )
            ).scalars()
            return TicketAudience(queue_id, assignee, frozenset(members))
    except Exception:
        log.warning("ticket audience read failed for queue %s", queue_id, exc_info=True)
        return None


async def access_ticket_by_id(session: AsyncSession, user: User, raw_id: object) -> Ticket:
    """The ticket, if the user may see it; otherwise the same 404 as for no ticket."""
    ticket_id = ticket_id_from(raw_id)
    if ticket_id is None or user.role not in STAFF_ROLES:
        raise NotFound("ticket not found")
    ticket = (
        await session.execute(select(Ticket).where(Ticket.id == ticket_id, visible_tickets(user)))
    ).scalar_one_or_none()
    if ticket is None:
        raise NotFound("ticket not found")
    return ticket
