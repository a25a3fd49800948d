"""The single chokepoint for what a caller may see and do. Every page, API route,
websocket forward, search, export and report goes through an `access_*` (or, for lists
and live events, the `visible_*` / `may_see_*` form of the same rule) defined or
re-exported here, so `grep access_ web/` finds every check.

Roles (`access_staff`, `access_reader`, `access_admin`):

- agents work tickets and conversations of the queues they belong to;
- supervisors see every queue, and read settings and reports;
- admins also change settings (queues, rules, SLA, inboxes, bot thresholds, CSAT,
  knowledge-base writes). A caller without the role gets 403 on a settings route
  whether or not the thing exists; a non-staff caller gets 401 (no credential) or 404.

Objects (an agent; supervisors and admins see everything):

- **ticket** (`tickets.access`, re-exported here): in one of the agent's queues,
  assigned to the agent, or in no queue (not routed anywhere, so everyone's).
- **conversation**: covered by no ticket at all (bot-only, not yet handed off: everyone's),
  or covered by a ticket the agent may see (`tickets.TicketConversation`; a conversation
  that outlived several tickets is visible through any of them, like that ticket's own
  page shows it). Assignment is a ticket's, so "assigned to them" comes with the ticket.
- **message, attachment, bot view, hand-back, typing**: those of a conversation the agent
  may see; an attachment not yet sent in one only to the staff member who uploaded it.
- **customer**: one of its conversations or tickets is visible to the agent, or it has
  neither (a bare record holds nothing queue-scoped, so it is everyone's, like an
  unrouted conversation). A profile lists only the conversations the caller may see.
- **customer merge**: its surviving record is visible (that is where the moved rows are).

Memberships are read from the database on every request and for every live event an
agent socket forwards, so removing an agent from a queue takes effect at once, REST and
websocket alike. For a live event the read is made once per process for all its sockets
(`conversation_audience`, `ticket_view_audience`: the same conditions, as a set of who
is admitted) and never kept for the next event. An outsider gets the same 404, body and
all, for a thing that exists as for one that does not.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from aiohttp import web
from sqlalchemy import (
    ColumnElement,
    Integer,
    bindparam,
    cast,
    exists,
    false,
    literal,
    literal_column,
    null,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import CompoundSelect

from conversations import attachments as attachment_store
from conversations.models import Attachment, Conversation
from customers.models import Customer, CustomerMerge
from routing.models import QueueMember
from switchboard.errors import Forbidden, NotFound
from switchboard.models import Role, User
from switchboard.tx import Database
from tickets.access import (
    MAX_ROW_ID,
    STAFF_ROLES,
    TicketAudience,
    access_ticket_by_id,
    may_see_ticket_view,
    ticket_id_from,
    ticket_view_audience,
    visible_tickets,
)
from tickets.models import Ticket, TicketConversation
from web.auth import require_user

__all__ = [
    "MAX_ROW_ID",
    "STAFF_ROLES",
    "ConversationAudience",
    "TicketAudience",
    "access_admin",
    "access_attachment_by_id",
    "access_conversation_by_id",
    "access_customer_by_id",
    "access_merge_by_id",
    "access_reader",
    "access_staff",
    "access_ticket_by_id",
    "conversation_audience",
    "may_see_conversation",
    "may_see_customer",
    "may_see_inbox",
    "may_see_ticket_view",
    "row_id_from",
    "ticket_id_from",
    "ticket_view_audience",
    "visible_conversations",
    "visible_customers",
    "visible_inbox_ids",
    "visible_tickets",
]

log = logging.getLogger(__name__)
READER_ROLES = frozenset({Role.SUPERVISOR, Role.ADMIN})

# One rule for every row id in a path or a body (a larger number names nothing, and
# PostgreSQL and SQLite refuse to even compare with it, which would surface as a 500).
row_id_from = ticket_id_from


# --- roles ---------------------------------------------------------------------------------


def access_staff(request: web.Request) -> User:
    """The caller, who must be staff: no credential is 401, anything else learns nothing."""
    user = require_user(request)
    if user.role not in STAFF_ROLES:
        raise NotFound("not found")
    return user


def access_reader(request: web.Request, what: str = "this") -> User:
    """A supervisor or an admin: reports, dashboards and reading settings."""
    user = access_staff(request)
    if user.role not in READER_ROLES:
        raise Forbidden(f"only supervisors and admins see {what}")
    return user


def access_admin(request: web.Request, what: str = "settings") -> User:
    """An admin: changing settings."""
    user = access_staff(request)
    if user.role != Role.ADMIN:
        raise Forbidden(f"only admins change {what}")
    return user


# --- inboxes -------------------------------------------------------------------------------


def visible_inbox_ids(user: User) -> Sequence[int] | None:
    """Inbox ids the user may see, or None for all of them. Inboxes are not scoped
    (queues are); a non-staff user sees none."""
    if user.role not in STAFF_ROLES:
        return []
    return None


def may_see_inbox(user: User, inbox_id: int) -> bool:
    visible = visible_inbox_ids(user)
    return visible is None or inbox_id in visible


# --- conversations -------------------------------------------------------------------------


def visible_conversations(user: User) -> ColumnElement[bool]:
    """The conversations `user` may see, as a WHERE clause on `Conversation`."""
    if user.role not in STAFF_ROLES:
        return false()
    if user.role != Role.AGENT:
        return true()
    covered = TicketConversation.conversation_id == Conversation.id
    return or_(
        ~exists().where(covered),
        exists()
        .where(covered, Ticket.id == TicketConversation.ticket_id)
        .where(visible_tickets(user)),
    )


async def may_see_conversation(db: Database, user: User, conversation_id: int) -> bool:
    """`visible_conversations` for one conversation named by a live event: the agent
    socket forwards it only to those who could GET the conversation. Reads the database
    only for an agent."""
    if user.role not in STAFF_ROLES:
        return False
    if user.role != Role.AGENT:
        return True
    try:
        async with db.reading() as session:
            found = await session.execute(
                select(literal(1))
                .select_from(Conversation)
                .where(Conversation.id == conversation_id, visible_conversations(user))
            )
            return found.first() is not None
    except Exception:
        # Could not check (the database is restarting): not forwarded. The inbox
        # re-reads what it shows from the API, which checks again.
        log.warning("conversation visibility check failed for user %s", user.id, exc_info=True)
        return False


@dataclasses.dataclass(frozen=True)
class ConversationAudience:
    """`visible_conversations` for one conversation, read once for all of a process's
    sockets (one live event, one read): what the rule asks of the conversation's covering
    tickets, and the members of their queues, so each socket decides in memory. Built per
    event (never kept across events), so a membership removed before the event applies."""

    exists: bool
    covered: bool  # some ticket covers it (any link, as `visible_conversations` counts)
    open_to_all: bool  # one of those tickets is in no queue
    assignees: frozenset[int]  # the covering tickets' assignees
    members: frozenset[int]  # the users in the covering tickets' queues

    def admits(self, user: User) -> bool:
        if user.role not in STAFF_ROLES:
            return False
        if user.role != Role.AGENT:
            return True
        if not self.exists:
            return False
        return (
            not self.covered
            or self.open_to_all
            or user.id in self.assignees
            or user.id in self.members
        )


_CONVERSATION = 0  # row kinds of `conversation_audience`'s one statement
_LINK = 1
_MEMBER = 2


def _audience_statement() -> CompoundSelect[int, int | None, int | None, int | None]:
    no_int = cast(null(), Integer)
    covering = TicketConversation.conversation_id == bindparam("conversation_id")
    return union_all(
        select(literal_column(str(_CONVERSATION)), Conversation.id, no_int, no_int).where(
            Conversation.id == bindparam("conversation_id")
        ),
        select(literal_column(str(_LINK)), Ticket.id, Ticket.queue_id, Ticket.assignee_user_id)
        .select_from(TicketConversation)
        .outerjoin(Ticket, Ticket.id == TicketConversation.ticket_id)
        .where(covering),
        select(literal_column(str(_MEMBER)), QueueMember.user_id, no_int, no_int).where(
            QueueMember.queue_id.in_(
                select(Ticket.queue_id)
                .join(TicketConversation, TicketConversation.ticket_id == Ticket.id)
                .where(covering)
            )
        ),
    )


# Built once: it runs for every live event of a conversation the cache has not seen
# (building it and its cache key per call cost ~250 µs of CPU, as much as running it).
_AUDIENCE = _audience_statement()


async def conversation_audience(db: Database, conversation_id: int) -> ConversationAudience | None:
    """Who may see a conversation named by a live event (`may_see_conversation` for every
    user at once), in one statement: whether it exists, each covering link's ticket
    (queue, assignee), and the members of those tickets' queues. None when the database
    could not be read (then no agent is admitted)."""
    try:
        async with db.reading() as session:
            rows = (await session.execute(_AUDIENCE, {"conversation_id": conversation_id})).all()
    except Exception:
        log.warning("conversation audience read failed for %s", conversation_id, exc_info=True)
        return None
    links = [(ticket, queue, assignee) for kind, ticket, queue, assignee in rows if kind == _LINK]
    return ConversationAudience(
        exists=any(kind == _CONVERSATION for kind, *_ in rows),
        covered=bool(links),
        open_to_all=any(ticket is not None and queue is None for ticket, queue, _ in links),
        assignees=frozenset(a for ticket, _, a in links if ticket is not None and a is not None),
        members=frozenset(u for kind, u, *_ in rows if kind == _MEMBER and u is not None),
    )


async def access_conversation_by_id(
    session: AsyncSession, user: User, conversation_id: object
) -> Conversation:
    """The conversation, if the user may see it. Outsiders get the same 404 as for a
    conversation that does not exist."""
    found_id = row_id_from(conversation_id)
    if found_id is None or user.role not in STAFF_ROLES:
        raise NotFound("conversation not found")
    conversation = (
        await session.execute(
            select(Conversation).where(Conversation.id == found_id, visible_conversations(user))
        )
    ).scalar_one_or_none()
    if conversation is None or not may_see_inbox(user, conversation.inbox_id):
        raise NotFound("conversation not found")
    return conversation


async def access_attachment_by_id(
    session: AsyncSession, user: User, raw_id: str
) -> tuple[Attachment, bytes]:
    """A file and its bytes, if the user may see the conversation it was sent in (or, not
    sent yet, uploaded it); otherwise the same 404 as for no file."""
    found = await attachment_store.load_attachment(session, raw_id[:64])
    if found is None or user.role not in STAFF_ROLES:
        raise NotFound("attachment not found")
    row = found[0]
    if row.conversation_id is None:
        visible = row.uploader_user_id == user.id
    else:
        visible = (
            await session.execute(
                select(literal(1))
                .select_from(Conversation)
                .where(Conversation.id == row.conversation_id, visible_conversations(user))
            )
        ).first() is not None
    if not visible or not may_see_inbox(user, row.inbox_id):
        raise NotFound("attachment not found")
    return found


# --- customers -----------------------------------------------------------------------------


def visible_customers(user: User) -> ColumnElement[bool]:
    """The customers `user` may see, as a WHERE clause on `Customer`."""
    if user.role not in STAFF_ROLES:
        return false()
    if user.role != Role.AGENT:
        return true()
    has_conversation = Conversation.customer_id == Customer.id
    has_ticket = Ticket.customer_id == Customer.id
    return or_(
        exists().where(has_conversation, visible_conversations(user)),
        exists().where(has_ticket, visible_tickets(user)),
        ~or_(exists().where(has_conversation), exists().where(has_ticket)),
    )


async def may_see_customer(session: AsyncSession, user: User, customer_id: int) -> bool:
    if user.role not in STAFF_ROLES:
        return False
    if user.role != Role.AGENT:
        return True
    found = await session.execute(
        select(literal(1))
        .select_from(Customer)
        .where(Customer.id == customer_id, visible_customers(user))
    )
    return found.first() is not None


async def access_customer_by_id(session: AsyncSession, user: User, raw_id: object) -> Customer:
    """The customer, if the user may see it; otherwise the same 404 as for no customer."""
    customer_id = row_id_from(raw_id)
    if customer_id is None or user.role not in STAFF_ROLES:
        raise NotFound("customer not found")
    customer = (
        await session.execute(
            select(Customer).where(Customer.id == customer_id, visible_customers(user))
        )
    ).scalar_one_or_none()
    if customer is None:
        raise NotFound("customer not found")
    return customer


async def access_merge_by_id(session: AsyncSession, user: User, raw_id: object) -> CustomerMerge:
    """The merge record, if the user may see its surviving customer; else a 404."""
    merge_id = row_id_from(raw_id)
    if merge_id is None or user.role not in STAFF_ROLES:
        raise NotFound("merge not found")
    record = await session.get(CustomerMerge, merge_id)
    if record is None or not await may_see_customer(session, user, record.survivor_id):
        raise NotFound("merge not found")
    return record
