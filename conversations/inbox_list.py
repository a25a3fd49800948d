"""The agent inbox's conversation list: views, filters, per-agent unread counts, saved
views, and cursors between pages.

A view is one of the built-in ones (mine, unassigned, my queues, all) narrowed by any of
status, priority, channel and tag. What a conversation "is" for those comes from its
active ticket (the one `ticket_conversations.open_conversation_id` names: new, open,
pending or on hold); a conversation with no active ticket matches "solved"/"closed" if
a ticket that covered it ended so. The caller passes its access rule (`visible`, a
WHERE clause on `Conversation`), so a view never shows what the caller may not see.

Pages are ordered by last activity, newest first, and keyed on (last_message_at, id), so
the cursor is stable while conversations are added; a conversation whose activity moves
it above the cursor is not shown twice (the live list puts it at the top instead).

Unread: customer messages with a seq above what the agent has read
(`conversation_reads`), counted per agent.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    delete,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.inbox_models import ConversationRead, InboxView
from conversations.models import ChannelKind, Conversation, Direction, Message
from conversations.service import conversation_view
from customers.models import Customer
from routing.models import QueueMember
from switchboard.db import utcnow
from switchboard.errors import Conflict, InvalidInput, NotFound
from tickets.models import (
    ACTIVE_STATUSES,
    Ticket,
    TicketConversation,
    TicketPriority,
    TicketStatus,
    TicketTag,
)

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
# Counts stop here ("999+"): a count costs at most this many rows, whatever the backlog.
COUNT_CAP = 1000
MAX_SAVED_VIEWS = 50
MAX_TAGS = 10
MAX_NAME = 100


class BuiltinView(enum.StrEnum):
    MINE = "mine"
    UNASSIGNED = "unassigned"
    MY_QUEUES = "my_queues"
    ALL = "all"


FILTER_KEYS = ("view", "status", "priority", "channel", "tag")


@dataclass(frozen=True)
class ListFilter:
    view: BuiltinView = BuiltinView.ALL
    statuses: tuple[str, ...] = ()
    priorities: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "view": self.view.value,
            "status": list(self.statuses),
            "priority": list(self.priorities),
            "channel": list(self.channels),
            "tag": list(self.tags),
        }


def _values(raw: object, name: str) -> list[str]:
    """A filter's values: a list of strings (JSON) or one comma-separated string (query)."""
    if raw is None:
        return []
    if isinstance(raw, str):
        items = [part.strip() for part in raw.split(",")]
    elif isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        items = [item.strip() for item in raw]
    else:
        raise InvalidInput(f"{name} must be a list of strings")
    items = [item for item in items if item]
    if len(items) > 20:
        raise InvalidInput(f"at most 20 values for {name}")
    return list(dict.fromkeys(items))


def _allowed(items: list[str], allowed: Sequence[str], name: str) -> tuple[str, ...]:
    for item in items:
        if item not in allowed:
            raise InvalidInput(f"unknown {name} {item[:40]!r} (one of: {', '.join(allowed)})")
    return tuple(items)


def check_filters(raw: Mapping[str, object], *, extra: Sequence[str] = ()) -> ListFilter:
    """Filters from a query string or a saved view's JSON; 400 for anything unknown."""
    unknown = sorted(set(raw) - set(FILTER_KEYS) - set(extra))
    if unknown:
        raise InvalidInput(f"unknown filter {unknown[0][:40]!r}", code="unknown_filter")
    view_raw = raw.get("view", BuiltinView.ALL.value)
    if not isinstance(view_raw, str) or view_raw not in {v.value for v in BuiltinView}:
        raise InvalidInput("view must be one of: " + ", ".join(v.value for v in BuiltinView))
    tags = _values(raw.get("tag"), "tag")
    if len(tags) > MAX_TAGS or any(len(tag) > 50 for tag in tags):
        raise InvalidInput(f"at most {MAX_TAGS} tags of at most 50 characters")
    return ListFilter(
        view=BuiltinView(view_raw),
        statuses=_allowed(_values(raw.get("status"), "status"), list(TicketStatus), "status"),
        priorities=_allowed(
            _values(raw.get("priority"), "priority"), list(TicketPriority), "priority"
        ),
        channels=_allowed(_values(raw.get("channel"), "channel"), list(ChannelKind), "channel"),
        tags=tuple(tag.lower() for tag in tags),
    )


# --- the WHERE clauses ---------------------------------------------------------------------


def _active_ticket(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    """The conversation has an active ticket meeting `conditions`."""
    return (
        exists()
        .where(
            TicketConversation.open_conversation_id == Conversation.id,
            Ticket.id == TicketConversation.ticket_id,
        )
        .where(*conditions)
    )


def _status_clause(statuses: Sequence[str]) -> ColumnElement[bool]:
    active = [s for s in statuses if s in ACTIVE_STATUSES]
    ended = [s for s in statuses if s not in ACTIVE_STATUSES]
    parts: list[ColumnElement[bool]] = []
    if active:
        parts.append(_active_ticket(Ticket.status.in_(active)))
    if ended:
        parts.append(
            and_(
                ~_active_ticket(),
                exists().where(
                    TicketConversation.conversation_id == Conversation.id,
                    Ticket.id == TicketConversation.ticket_id,
                    Ticket.status.in_(ended),
                ),
            )
        )
    return or_(*parts)


def filter_clause(filters: ListFilter, user_id: int) -> ColumnElement[bool]:
    """`filters` as one WHERE clause on `Conversation` (the caller adds its access rule)."""
    parts: list[ColumnElement[bool]] = [Conversation.last_message_at.is_not(None)]
    if filters.view is BuiltinView.MINE:
        parts.append(_active_ticket(Ticket.assignee_user_id == user_id))
    elif filters.view is BuiltinView.UNASSIGNED:
        parts.append(Conversation.status == "open")
        parts.append(~_active_ticket(Ticket.assignee_user_id.is_not(None)))
    elif filters.view is BuiltinView.MY_QUEUES:
        mine = select(QueueMember.queue_id).where(QueueMember.user_id == user_id)
        parts.append(_active_ticket(Ticket.queue_id.in_(mine)))
    if filters.statuses:
        parts.append(_status_clause(filters.statuses))
    if filters.priorities:
        parts.append(_active_ticket(Ticket.priority.in_(filters.priorities)))
    if filters.channels:
        parts.append(Conversation.channel.in_(filters.channels))
    if filters.tags:
        tagged = exists().where(TicketTag.ticket_id == Ticket.id, TicketTag.tag.in_(filters.tags))
        parts.append(_active_ticket(tagged))
    return and_(*parts)


def _read_seq(user_id: int) -> Any:
    """The seq `user_id` has read the (outer) conversation up to, or 0."""
    read = (
        select(ConversationRead.last_read_seq)
        .where(
            ConversationRead.user_id == user_id,
            ConversationRead.conversation_id == Conversation.id,
        )
        .correlate(Conversation)
        .scalar_subquery()
    )
    return func.coalesce(read, 0)


def unread_clause(user_id: int) -> ColumnElement[bool]:
    """The conversation has customer messages `user_id` has not read. The messages are
    looked at only when something came after the agent's read position, and always per
    conversation (the read position names the outer row, so PostgreSQL cannot turn this
    into a hash of every message)."""
    read = _read_seq(user_id)
    return and_(
        Conversation.last_seq > read,
        exists().where(
            Message.conversation_id == Conversation.id,
            Message.seq > read,
            Message.direction == Direction.INBOUND,
        ),
    )


# --- cursors -------------------------------------------------------------------------------


def encode_cursor(at: datetime, conversation_id: int) -> str:
    raw = json.dumps({"t": at.isoformat(), "id": conversation_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    bad = InvalidInput("cursor is not valid (pass next_cursor as it was given)", code="bad_cursor")
    if len(cursor) > 200 or not cursor.isascii():
        raise bad
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(data, dict) or set(data) != {"t", "id"}:
            raise bad
        last_id, at = data["id"], datetime.fromisoformat(data["t"])
    except (ValueError, TypeError, binascii.Error):
        raise bad from None
    if isinstance(last_id, bool) or not isinstance(last_id, int) or not 0 < last_id < 2**31:
        raise bad
    if at.tzinfo is None:
        raise bad
    return at, last_id


# --- the list ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConversationPage:
    conversations: list[dict[str, Any]]
    next_cursor: str | None


@dataclass
class _Extras:
    customers: dict[int, tuple[str | None, str | None]] = field(default_factory=dict)
    tickets: dict[int, dict[str, Any]] = field(default_factory=dict)
    unread: dict[int, int] = field(default_factory=dict)


async def _extras(session: AsyncSession, rows: Sequence[Conversation], user_id: int) -> _Extras:
    """Customer names, active tickets and the agent's unread counts of a page: three
    queries for the whole page."""
    extras = _Extras()
    if not rows:
        return extras
    ids = [c.id for c in rows]
    customer_ids = list({c.customer_id for c in rows})
    for cid, name, email in await session.execute(
        select(Customer.id, Customer.name, Customer.email).where(Customer.id.in_(customer_ids))
    ):
        extras.customers[cid] = (name, email)
    for conv_id, tid, status, priority, assignee, queue in await session.execute(
        select(
            TicketConversation.open_conversation_id,
            Ticket.id,
            Ticket.status,
            Ticket.priority,
            Ticket.assignee_user_id,
            Ticket.queue_id,
        )
        .join(Ticket, Ticket.id == TicketConversation.ticket_id)
        .where(TicketConversation.open_conversation_id.in_(ids))
    ):
        if conv_id is None:
            continue
        extras.tickets[conv_id] = {
            "id": tid,
            "status": status,
            "priority": priority,
            "assignee_id": assignee,
            "queue_id": queue,
        }
    read = (
        select(ConversationRead.conversation_id, ConversationRead.last_read_seq)
        .where(ConversationRead.user_id == user_id, ConversationRead.conversation_id.in_(ids))
        .subquery()
    )
    for conv_id, count in await session.execute(
        select(Message.conversation_id, func.count())
        .select_from(Message)
        .outerjoin(read, read.c.conversation_id == Message.conversation_id)
        .where(
            Message.conversation_id.in_(ids),
            Message.direction == Direction.INBOUND,
            Message.seq > func.coalesce(read.c.last_read_seq, 0),
        )
        .group_by(Message.conversation_id)
    ):
        extras.unread[conv_id] = int(count)
    return extras


def list_item(conversation: Conversation, extras: _Extras) -> dict[str, Any]:
    item = conversation_view(conversation)
    name, email = extras.customers.get(conversation.customer_id, (None, None))
    item["customer_name"] = name or email
    item["ticket"] = extras.tickets.get(conversation.id)
    item["unread_count"] = extras.unread.get(conversation.id, 0)
    return item


async def list_page(
    session: AsyncSession,
    *,
    user_id: int,
    visible: ColumnElement[bool],
    filters: ListFilter,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
) -> ConversationPage:
    """One page of the view, newest activity first."""
    query = (
        select(Conversation)
        .where(visible, filter_clause(filters, user_id))
        .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
        .limit(limit + 1)
    )
    if cursor:
        at, last_id = decode_cursor(cursor)
        query = query.where(
            or_(
                Conversation.last_message_at < at,
                and_(Conversation.last_message_at == at, Conversation.id < last_id),
            )
        )
    rows = list((await session.execute(query)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    extras = await _extras(session, rows, user_id)
    next_cursor = None
    if more and rows and rows[-1].last_message_at is not None:
        next_cursor = encode_cursor(rows[-1].last_message_at, rows[-1].id)
    return ConversationPage([list_item(c, extras) for c in rows], next_cursor)


async def list_items(
    session: AsyncSession, *, user_id: int, visible: ColumnElement[bool], ids: Sequence[int]
) -> list[dict[str, Any]]:
    """The list items of these conversations (those the caller may see)."""
    if not ids:
        return []
    rows = list(
        (
            await session.execute(
                select(Conversation).where(Conversation.id.in_(list(ids)), visible)
            )
        ).scalars()
    )
    extras = await _extras(session, rows, user_id)
    return [list_item(c, extras) for c in rows]


async def view_counts(
    session: AsyncSession,
    *,
    user_id: int,
    visible: ColumnElement[bool],
    views: Mapping[str, ListFilter],
) -> dict[str, dict[str, int]]:
    """Per view: how many conversations it holds and how many of them have customer
    messages this agent has not read. One statement per view, reading at most
    `COUNT_CAP` conversations: past the cap both figures are lower bounds (the page
    shows "999+"), and each view costs the same whatever the backlog."""
    unread = unread_clause(user_id)
    counts: dict[str, dict[str, int]] = {}
    for key, filters in views.items():
        capped = (
            select(case((unread, 1), else_=0).label("unread"))
            .select_from(Conversation)
            .where(visible, filter_clause(filters, user_id))
            .limit(COUNT_CAP)
            .subquery()
        )
        total, unread_total = (
            await session.execute(select(func.count(), func.coalesce(func.sum(capped.c.unread), 0)))
        ).one()
        counts[key] = {"total": int(total), "unread": int(unread_total)}
    return counts


# --- reads ---------------------------------------------------------------------------------


async def do_mark_read_by(session: AsyncSession, user_id: int, conversation_id: int) -> int:
    """Everything in the conversation so far is read by `user_id`; returns the seq."""
    seq = (
        await session.execute(
            select(Conversation.last_seq).where(Conversation.id == conversation_id)
        )
    ).scalar_one_or_none()
    if seq is None:
        raise NotFound("conversation not found")
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(ConversationRead).values(
        user_id=user_id, conversation_id=conversation_id, last_read_seq=seq, read_at=utcnow()
    )
    # Never backwards: a late request from an older page state keeps the newer position.
    newer = case(
        (
            statement.excluded.last_read_seq > ConversationRead.last_read_seq,
            statement.excluded.last_read_seq,
        ),
        else_=ConversationRead.last_read_seq,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["user_id", "conversation_id"],
            set_={"last_read_seq": newer, "read_at": statement.excluded.read_at},
        )
    )
    return int(seq)


# --- saved views ---------------------------------------------------------------------------


def saved_view(view: InboxView) -> dict[str, Any]:
    return {
        "id": view.id,
        "name": view.name,
        "filters": check_filters(view.filters).as_json(),
        "created_at": view.created_at.isoformat(),
        "updated_at": view.updated_at.isoformat(),
    }


def check_view_name(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput("name is required", code="name_required")
    name = " ".join(raw.split())
    if len(name) > MAX_NAME:
        raise InvalidInput(f"name is at most {MAX_NAME} characters")
    return name


async def list_saved_views(session: AsyncSession, user_id: int) -> list[InboxView]:
    return list(
        (
            await session.execute(
                select(InboxView).where(InboxView.user_id == user_id).order_by(InboxView.id)
            )
        ).scalars()
    )


async def access_saved_view(session: AsyncSession, user_id: int, view_id: int) -> InboxView:
    """The caller's own saved view; anyone else's is the same 404 as none."""
    found = (
        await session.execute(
            select(InboxView).where(InboxView.id == view_id, InboxView.user_id == user_id)
        )
    ).scalar_one_or_none()
    if found is None:
        raise NotFound("view not found")
    return found


async def _flush_named(session: AsyncSession, name: str) -> None:
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict(f"you already have a view named {name[:40]!r}", code="name_taken") from None


async def do_create_view(
    session: AsyncSession, user_id: int, name: str, filters: ListFilter
) -> InboxView:
    count = (
        await session.execute(
            select(func.count()).select_from(InboxView).where(InboxView.user_id == user_id)
        )
    ).scalar_one()
    if count >= MAX_SAVED_VIEWS:
        raise InvalidInput(f"at most {MAX_SAVED_VIEWS} saved views", code="too_many_views")
    now = utcnow()
    view = InboxView(
        user_id=user_id, name=name, filters=filters.as_json(), created_at=now, updated_at=now
    )
    session.add(view)
    await _flush_named(session, name)
    return view


async def do_update_view(
    session: AsyncSession, view: InboxView, *, name: str | None, filters: ListFilter | None
) -> InboxView:
    if name is not None:
        view.name = name
    if filters is not None:
        view.filters = filters.as_json()
    view.updated_at = utcnow()
    await _flush_named(session, view.name)
    return view


async def do_delete_view(session: AsyncSession, view: InboxView) -> None:
    await session.execute(delete(InboxView).where(InboxView.id == view.id))


BUILTIN_FILTERS: dict[str, ListFilter] = {v.value: ListFilter(view=v) for v in BuiltinView}
