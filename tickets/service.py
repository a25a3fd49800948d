"""Ticket operations: open (idempotently, for a conversation), create, update, notes.

`do_*` functions write within the caller's transaction, record every change in the
ticket's timeline with its actor, and emit events published after commit
(`switchboard.tx`). Actors are strings in the events' form: "agent:<user id>",
"customer:<customer id>", "bot", "system".
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    Integer,
    any_,
    bindparam,
    delete,
    literal,
    literal_column,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.models import AuthorKind, Conversation, Direction, Message
from conversations.search_terms import add_ticket_text, index_ticket
from customers.models import Customer
from routing.models import AgentProfile
from switchboard.db import utcnow
from switchboard.errors import Conflict, Forbidden, InvalidInput, NotFound
from switchboard.models import Role, User
from switchboard.tx import emit
from tickets import sla
from tickets.checks import (
    MAX_SUBJECT,
    UNSET,
    TicketChanges,
    check_note_body,
    check_reason,
    subject_from,
)
from tickets.csat_models import CsatSurvey
from tickets.csat_views import ticket_survey_view
from tickets.events import TicketCreated, TicketEvent, TicketNoteAdded, TicketUpdated
from tickets.lifecycle import Cause, allowed_next, check_transition
from tickets.models import (
    ACTIVE_STATUSES,
    Ticket,
    TicketActivity,
    TicketConversation,
    TicketNote,
    TicketPriority,
    TicketStatus,
    TicketTag,
)
from tickets.sla_models import SlaClock, SlaMetric

_STAFF = {Role.AGENT, Role.SUPERVISOR, Role.ADMIN}
MAX_SOURCE = 32


def actor_user_id(actor: str) -> int | None:
    """The user behind an "agent:<id>" actor, else None."""
    kind, _, raw = actor.partition(":")
    if kind == "agent" and raw.isascii() and raw.isdigit() and len(raw) <= 10:
        return int(raw)
    return None


def record(
    session: AsyncSession,
    ticket_id: int,
    kind: str,
    actor: str,
    data: dict[str, Any],
    *,
    at: datetime | None = None,
) -> None:
    """Add one timeline entry."""
    session.add(
        TicketActivity(
            ticket_id=ticket_id,
            kind=kind,
            actor=actor[:64],
            actor_user_id=actor_user_id(actor),
            data=data,
            created_at=at or utcnow(),
        )
    )


# --- reading ---------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@functools.cache
def _allowed_statuses(status: str) -> tuple[str, ...]:
    # Per status, once: a page of 50 views asked the lifecycle 50 times.
    return tuple(s.value for s in allowed_next(TicketStatus(status)))


def ticket_view(
    ticket: Ticket,
    tags: Sequence[str],
    conversation_ids: Sequence[int],
    clocks: Sequence[dict[str, Any]] = (),
    csat: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The public shape of a ticket, as the API and the inbox see it."""
    return {
        "id": ticket.id,
        "customer_id": ticket.customer_id,
        "subject": ticket.subject,
        "status": ticket.status,
        "priority": ticket.priority,
        "source": ticket.source,
        "reason": ticket.reason,
        "assignee_id": ticket.assignee_user_id,
        "queue_id": ticket.queue_id,
        "tags": list(tags),
        "conversation_ids": list(conversation_ids),
        "merged_into_id": ticket.merged_into_id,
        "allowed_statuses": list(_allowed_statuses(ticket.status)),
        "created_at": ticket.created_at.isoformat(),
        "updated_at": ticket.updated_at.isoformat(),
        "solved_at": _iso(ticket.solved_at),
        "closed_at": _iso(ticket.closed_at),
        "first_response_due_at": _iso(ticket.first_response_due_at),
        "resolution_due_at": _iso(ticket.resolution_due_at),
        "sla_policy_id": ticket.sla_policy_id,
        # The latest clock per metric with its time to breach (`tickets.sla.clock_view`).
        "sla": list(clocks),
        # The CSAT survey (request and rating), if one was sent (`tickets.csat`).
        "csat": csat,
    }


# The views' related rows come back in one statement: a UNION ALL of four selects padded
# to one column layout (`_view_rows`), so a page of tickets costs two round trips (the
# page and this) instead of five, and no ORM objects are built for the related rows.
_TAG, _CONVERSATION, _CLOCK, _SURVEY = 0, 1, 2, 3
_VIEW_COLUMNS = ("s1", "s2", "s3", "i1", "i2", "i3", "i4", "i5", "t1", "t2", "t3", "t4", "t5", "t6")


def _padded(kind: int, ticket_id: Any, row_id: Any, **given: Any) -> Any:
    columns = [literal(kind).label("kind"), ticket_id.label("ticket_id"), row_id.label("row_id")]
    columns += [given.get(name, null()).label(name) for name in _VIEW_COLUMNS]
    return select(*columns)


def _view_rows(ids: Any) -> Any:
    clock, survey = SlaClock, CsatSurvey
    # The clocks' select comes first: a union's column types (and so the result
    # processing, such as UTC datetimes on SQLite) are those of its first select.
    return union_all(
        _padded(
            _CLOCK,
            clock.ticket_id,
            clock.id,
            s1=clock.metric,
            s2=clock.status,
            i1=clock.policy_id,
            i2=clock.target_minutes,
            i3=clock.paused_seconds,
            t1=clock.started_at,
            t2=clock.due_at,
            t3=clock.paused_at,
            t4=clock.warned_at,
            t5=clock.breached_at,
            t6=clock.stopped_at,
        ).where(ids(clock.ticket_id)),
        _padded(
            _SURVEY,
            survey.ticket_id,
            survey.id,
            s1=survey.locale,
            s2=survey.skipped,
            s3=survey.answered_via,
            i1=survey.conversation_id,
            i2=survey.inbox_id,
            i3=survey.customer_id,
            i4=survey.agent_user_id,
            i5=survey.rating,
            t1=survey.requested_at,
            t2=survey.expires_at,
            t3=survey.rated_at,
            t4=survey.commented_at,
        ).where(ids(survey.ticket_id)),
        _padded(_TAG, TicketTag.ticket_id, literal_column("0"), s1=TicketTag.tag).where(
            ids(TicketTag.ticket_id)
        ),
        _padded(
            _CONVERSATION,
            TicketConversation.ticket_id,
            TicketConversation.id,
            i1=TicketConversation.conversation_id,
        ).where(ids(TicketConversation.ticket_id)),
    ).order_by(
        # Tags in the database's collation, as before; conversations in link order.
        literal_column("kind"),
        literal_column("ticket_id"),
        literal_column("s1"),
        literal_column("row_id"),
    )


# Built once: constructing the statement costs more than running it. PostgreSQL gets one
# array parameter, so the statement's text is the same for every page (asyncpg reuses
# its prepared statement); SQLite an expanding IN list.
_IDS_ARRAY = bindparam("ids", type_=ARRAY(Integer))
_VIEW_ROWS_PG = _view_rows(lambda column: column == any_(_IDS_ARRAY))
_VIEW_ROWS = _view_rows(lambda column: column.in_(bindparam("ids", expanding=True)))


# Positions in a `_view_rows` row: kind, ticket_id, row_id, then `_VIEW_COLUMNS`.
_AT = {name: 3 + i for i, name in enumerate(_VIEW_COLUMNS)}


def _clock_of(row: Any) -> Any:
    at = _AT
    return SimpleNamespace(
        id=row[2],
        ticket_id=row[1],
        metric=row[at["s1"]],
        status=row[at["s2"]],
        policy_id=row[at["i1"]],
        target_minutes=row[at["i2"]],
        paused_seconds=row[at["i3"]],
        started_at=row[at["t1"]],
        due_at=row[at["t2"]],
        paused_at=row[at["t3"]],
        warned_at=row[at["t4"]],
        breached_at=row[at["t5"]],
        stopped_at=row[at["t6"]],
    )


def _survey_of(row: Any) -> Any:
    at = _AT
    return SimpleNamespace(
        id=row[2],
        ticket_id=row[1],
        locale=row[at["s1"]],
        skipped=row[at["s2"]],
        answered_via=row[at["s3"]],
        conversation_id=row[at["i1"]],
        inbox_id=row[at["i2"]],
        customer_id=row[at["i3"]],
        agent_user_id=row[at["i4"]],
        rating=row[at["i5"]],
        requested_at=row[at["t1"]],
        expires_at=row[at["t2"]],
        rated_at=row[at["t3"]],
        commented_at=row[at["t4"]],
        comment=None,  # never read: the ticket view leaves the comment out
    )


async def ticket_views(session: AsyncSession, tickets: Sequence[Ticket]) -> list[dict[str, Any]]:
    """Views of many tickets with one more query in all (tags, conversations, SLA clocks
    and CSAT survey together)."""
    ids = [t.id for t in tickets]
    tags: dict[int, list[str]] = {i: [] for i in ids}
    conversations: dict[int, list[int]] = {i: [] for i in ids}
    # Per ticket, the latest clock of each metric (the highest id).
    clocks: dict[int, dict[str, Any]] = {i: {} for i in ids}
    surveys: dict[int, dict[str, Any]] = {}
    if ids:
        postgres = session.get_bind().dialect.name == "postgresql"
        statement = _VIEW_ROWS_PG if postgres else _VIEW_ROWS
        # Rows by position, not by name: a page has a few hundred of them.
        for row in await session.execute(statement, {"ids": ids}):
            kind, ticket_id, row_id, s1 = row[0], row[1], row[2], row[3]
            if kind == _TAG:
                tags[ticket_id].append(s1)
            elif kind == _CONVERSATION:
                conversations[ticket_id].append(row[_AT["i1"]])
            elif kind == _CLOCK:
                latest = clocks[ticket_id].get(s1)
                if latest is None or latest[2] < row_id:
                    clocks[ticket_id][s1] = row
            else:
                surveys[ticket_id] = ticket_survey_view(_survey_of(row))
    now = utcnow()
    order = {m.value: i for i, m in enumerate(SlaMetric)}
    return [
        ticket_view(
            t,
            tags[t.id],
            conversations[t.id],
            [
                sla.clock_view(_clock_of(c), now)
                for c in sorted(clocks[t.id].values(), key=lambda c: order[c[3]])
            ],
            surveys.get(t.id),
        )
        for t in tickets
    ]


async def full_view(session: AsyncSession, ticket: Ticket) -> dict[str, Any]:
    return (await ticket_views(session, [ticket]))[0]


async def ticket_inbox_id(session: AsyncSession, ticket_id: int) -> int | None:
    """The inbox of the ticket's first conversation (None if it covers none)."""
    return (
        await session.execute(
            select(Conversation.inbox_id)
            .join(TicketConversation, TicketConversation.conversation_id == Conversation.id)
            .where(TicketConversation.ticket_id == ticket_id)
            .order_by(TicketConversation.id)
            .limit(1)
        )
    ).scalar_one_or_none()


async def open_ticket_for(session: AsyncSession, conversation_id: int) -> Ticket | None:
    """The conversation's active ticket (new, open, pending or on hold), if any."""
    return (
        await session.execute(
            select(Ticket)
            .join(TicketConversation, TicketConversation.ticket_id == Ticket.id)
            .where(TicketConversation.open_conversation_id == conversation_id)
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


async def lock_ticket(session: AsyncSession, ticket_id: int) -> Ticket:
    """The ticket, read afresh under a row lock (PostgreSQL; SQLite serialises writers)."""
    ticket = (
        await session.execute(
            select(Ticket)
            .where(Ticket.id == ticket_id)
            # NO KEY UPDATE: excludes other writers of this ticket, not a new row's foreign key.
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if ticket is None:
        raise NotFound("ticket not found")
    return ticket


async def _emit(session: AsyncSession, event_type: type[TicketEvent], **fields: Any) -> None:
    ticket: Ticket = fields.pop("for_ticket")
    emit(
        session,
        event_type(
            ticket_id=ticket.id,
            inbox_id=await ticket_inbox_id(session, ticket.id),
            ticket=await full_view(session, ticket),
            **fields,
        ),
    )


# --- opening ---------------------------------------------------------------------------


async def _subject_of(session: AsyncSession, conversation: Conversation) -> str | None:
    """The conversation's subject (email), else the customer's latest message."""
    if conversation.subject:
        return subject_from(conversation.subject, MAX_SUBJECT)
    text = (
        await session.execute(
            select(Message.text)
            .where(
                Message.conversation_id == conversation.id,
                Message.direction == Direction.INBOUND,
                Message.author_kind == AuthorKind.CUSTOMER,
            )
            .order_by(Message.seq.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    return subject_from(text) if text else None


async def _insert_ticket(
    session: AsyncSession,
    *,
    customer_id: int,
    subject: str | None,
    source: str,
    reason: str | None,
    actor: str,
    priority: TicketPriority = TicketPriority.NORMAL,
    tags: Sequence[str] = (),
    conversation_id: int | None = None,
) -> Ticket:
    now = utcnow()
    ticket = Ticket(
        customer_id=customer_id,
        subject=subject,
        status=TicketStatus.NEW,
        priority=priority,
        source=source,
        reason=reason,
        created_at=now,
        updated_at=now,
    )
    session.add(ticket)
    await session.flush()
    await add_ticket_text(session, ticket.id, subject)
    if conversation_id is not None:
        session.add(
            TicketConversation(
                ticket_id=ticket.id,
                conversation_id=conversation_id,
                open_conversation_id=conversation_id,
                linked_at=now,
            )
        )
    for tag in tags:
        session.add(TicketTag(ticket_id=ticket.id, tag=tag))
    record(
        session,
        ticket.id,
        "created",
        actor,
        {
            "source": source,
            "reason": reason,
            "conversation_id": conversation_id,
            "status": ticket.status,
            "priority": ticket.priority,
            "tags": list(tags),
        },
        at=now,
    )
    # Routing rules (queue, priority, tags, SLA policy, assignee) in this same
    # transaction: a ticket is never committed unrouted (routing.rulebook).
    from routing.rulebook import apply_rules  # routing imports tickets, so not at the top

    routed = await apply_rules(session, ticket, conversation_id)
    if routed:
        record(session, ticket.id, "routed", "system", routed, at=now)
    await sla.do_attach_policy(session, ticket, now)
    # Flushed now: the unique open_conversation_id settles a race here, inside the
    # caller's transaction, which `Database.run` then runs again.
    await session.flush()
    await _emit(session, TicketCreated, for_ticket=ticket, actor=actor)
    return ticket


def _check_source(source: str) -> str:
    if not isinstance(source, str) or not 0 < len(source) <= MAX_SOURCE:
        raise InvalidInput(f"source must be 1 to {MAX_SOURCE} characters", code="invalid_source")
    return source


async def do_open_for_conversation(
    session: AsyncSession,
    *,
    conversation_id: int,
    source: str,
    reason: str | None,
    actor: str,
    subject: str | None = None,
    priority: TicketPriority = TicketPriority.NORMAL,
    tags: Sequence[str] = (),
) -> Ticket:
    """The conversation's open ticket, or a new one (status new) if it has none.

    Idempotent and safe to call from several transactions at once: the conversation's
    row is locked before the second look, and the unique `open_conversation_id` makes a
    second active ticket impossible whatever the caller holds. Runs in the caller's
    transaction (a bot hand-off opens its ticket in the hand-off's own transaction).
    `subject` (checked; default: the conversation's), `priority` and `tags` (checked)
    apply only to a ticket opened here."""
    source = _check_source(source)
    reason = check_reason(reason)
    found = await open_ticket_for(session, conversation_id)
    if found is not None:
        return found
    conversation = (
        await session.execute(
            select(Conversation)
            .where(Conversation.id == conversation_id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if conversation is None:
        raise NotFound("conversation not found")
    # Under the lock: a concurrent opener has committed by now, and we see its ticket.
    found = await open_ticket_for(session, conversation_id)
    if found is not None:
        return found
    return await _insert_ticket(
        session,
        customer_id=conversation.customer_id,
        subject=subject or await _subject_of(session, conversation),
        source=source,
        reason=reason,
        actor=actor,
        priority=priority,
        tags=tags,
        conversation_id=conversation.id,
    )


async def do_create_ticket(
    session: AsyncSession,
    *,
    customer_id: int,
    actor: str,
    subject: str | None = None,
    priority: TicketPriority = TicketPriority.NORMAL,
    tags: Sequence[str] = (),
    source: str = "agent",
) -> Ticket:
    """A ticket for a customer without a conversation (a phone call, a walk-in)."""
    if await session.get(Customer, customer_id) is None:
        raise NotFound("customer not found")
    return await _insert_ticket(
        session,
        customer_id=customer_id,
        subject=subject,
        source=_check_source(source),
        reason=None,
        actor=actor,
        priority=priority,
        tags=tags,
    )


# --- changing --------------------------------------------------------------------------


async def sync_open_links(session: AsyncSession, ticket: Ticket) -> None:
    """Mark the ticket's conversations as having it open (or not), to match its status.
    A conversation that has meanwhile got another active ticket keeps that one."""
    links = TicketConversation.__table__.c
    if ticket.status in ACTIVE_STATUSES:
        taken = select(links.open_conversation_id).where(links.open_conversation_id.is_not(None))
        await session.execute(
            update(TicketConversation)
            .where(
                TicketConversation.ticket_id == ticket.id,
                TicketConversation.open_conversation_id.is_(None),
                TicketConversation.conversation_id.not_in(taken.scalar_subquery()),
            )
            .values(open_conversation_id=TicketConversation.conversation_id)
        )
    else:
        await session.execute(
            update(TicketConversation)
            .where(TicketConversation.ticket_id == ticket.id)
            .values(open_conversation_id=None)
        )


def apply_status(ticket: Ticket, to: TicketStatus, cause: Cause, now: datetime) -> None:
    """Move the ticket to `to` if the lifecycle table allows it (409 otherwise)."""
    check_transition(ticket.status, to, cause)
    ticket.status = to
    if to == TicketStatus.SOLVED:
        ticket.solved_at = now
    elif to == TicketStatus.CLOSED:
        ticket.closed_at = now
    elif to in ACTIVE_STATUSES:
        ticket.solved_at = None


async def _check_assignee(session: AsyncSession, user_id: int) -> None:
    user = await session.get(User, user_id)
    if user is None or not user.active or user.role not in _STAFF:
        raise InvalidInput(
            "assignee_id must name an active agent, supervisor or admin", code="invalid_assignee"
        )


async def claim_conflict(session: AsyncSession, ticket: Ticket, user_id: int) -> None:
    """409 naming the owner when the ticket (locked by the caller) is someone else's: the
    one rule for taking a ticket, by `POST /tickets/{id}/claim` and by an agent's PATCH."""
    owner_id = ticket.assignee_user_id
    if owner_id is not None and owner_id != user_id:
        owner = await session.get(User, owner_id)
        name = owner.name if owner is not None else "another agent"
        raise Conflict(
            f"ticket {ticket.id} is already claimed by {name} (user {owner_id})",
            code="already_claimed",
        )


async def _check_assignment_by(
    session: AsyncSession, ticket: Ticket, by: User, to: int | None
) -> None:
    """An agent may take an unassigned ticket or give up their own, nothing more;
    supervisors and admins assign any ticket to any active staff member."""
    if by.role != Role.AGENT:
        return
    if to == by.id:
        await claim_conflict(session, ticket, by.id)
    elif to is None and ticket.assignee_user_id in (None, by.id):
        return
    else:
        raise Forbidden(
            "agents may only assign an unassigned ticket to themselves or unassign "
            "themselves; a supervisor or admin reassigns tickets",
            code="assignment_forbidden",
        )


async def lock_profile(session: AsyncSession, user_id: int) -> None:
    """Lock the agent's routing profile row, as the automatic assigner does before it
    counts their tickets (`routing.assignment`): an assignment by hand waits for a pass
    that is counting, and a pass that starts later counts it, so the assigner never
    takes an agent past capacity. The assignment by hand itself may (a person's choice)."""
    await session.execute(
        select(AgentProfile.user_id).where(AgentProfile.user_id == user_id).with_for_update()
    )


async def _replace_tags(
    session: AsyncSession, ticket_id: int, tags: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Set the ticket's tags; return (added, removed)."""
    current = set(
        (await session.execute(select(TicketTag.tag).where(TicketTag.ticket_id == ticket_id)))
        .scalars()
        .all()
    )
    wanted = set(tags)
    added, removed = sorted(wanted - current), sorted(current - wanted)
    if removed:
        await session.execute(
            delete(TicketTag).where(TicketTag.ticket_id == ticket_id, TicketTag.tag.in_(removed))
        )
    for tag in added:
        session.add(TicketTag(ticket_id=ticket_id, tag=tag))
    return added, removed


async def do_update_ticket(
    session: AsyncSession,
    ticket_id: int,
    changes: TicketChanges,
    *,
    actor: str,
    cause: Cause = Cause.AGENT,
    by: User | None = None,
) -> Ticket:
    """Apply checked changes; each one that changes something gets a timeline entry.
    A closed ticket (which includes a merged one) takes no changes. `by`: the person
    asking, whose role limits how they may change the assignee (`_check_assignment_by`)."""
    ticket = await lock_ticket(session, ticket_id)
    if ticket.status == TicketStatus.CLOSED:
        where = f" (merged into ticket {ticket.merged_into_id})" if ticket.merged_into_id else ""
        raise Conflict(f"ticket {ticket.id} is closed{where}", code="ticket_closed")
    if changes.assignee_user_id not in (UNSET, None):
        await _check_assignee(session, changes.assignee_user_id)
    if changes.assignee_user_id is not UNSET and by is not None:
        await _check_assignment_by(session, ticket, by, changes.assignee_user_id)
    if changes.assignee_user_id not in (UNSET, None, ticket.assignee_user_id):
        await lock_profile(session, changes.assignee_user_id)
    now = utcnow()
    changed: dict[str, Any] = {}

    if changes.status is not None and changes.status != ticket.status:
        before = ticket.status
        apply_status(ticket, changes.status, cause, now)
        changed["status"] = {"from": before, "to": ticket.status}
        await sync_open_links(session, ticket)
        await sla.on_status_changed(session, ticket, before, now)
    if changes.priority is not None and changes.priority != ticket.priority:
        changed["priority"] = {"from": ticket.priority, "to": changes.priority.value}
        ticket.priority = changes.priority
    if changes.subject is not UNSET and changes.subject != ticket.subject:
        changed["subject"] = {"from": ticket.subject, "to": changes.subject}
        ticket.subject = changes.subject
        await index_ticket(session, ticket.id)
    if changes.assignee_user_id is not UNSET and changes.assignee_user_id != (
        ticket.assignee_user_id
    ):
        changed["assignee"] = {"from": ticket.assignee_user_id, "to": changes.assignee_user_id}
        ticket.assignee_user_id = changes.assignee_user_id
    if changes.tags is not None:
        added, removed = await _replace_tags(session, ticket.id, changes.tags)
        if added or removed:
            changed["tags"] = {"added": added, "removed": removed}
    if not changed:
        return ticket
    if "priority" in changed and ticket.status in ACTIVE_STATUSES:
        await sla.do_attach_policy(session, ticket, now)  # the new priority's targets
    ticket.updated_at = now
    for kind, data in changed.items():
        record(session, ticket.id, kind, actor, data, at=now)
    await session.flush()
    await _emit(session, TicketUpdated, for_ticket=ticket, actor=actor, changes=changed)
    return ticket


def note_view(note: TicketNote) -> dict[str, Any]:
    return {
        "id": note.id,
        "ticket_id": note.ticket_id,
        "author_id": note.author_user_id,
        "body": note.body,
        "created_at": note.created_at.isoformat(),
    }


async def do_add_note(
    session: AsyncSession, ticket_id: int, *, body: object, author_user_id: int
) -> TicketNote:
    """An internal note: kept on the ticket, never sent to the customer."""
    text = check_note_body(body)
    ticket = await lock_ticket(session, ticket_id)
    now = utcnow()
    note = TicketNote(ticket_id=ticket.id, author_user_id=author_user_id, body=text, created_at=now)
    session.add(note)
    await session.flush()
    await add_ticket_text(session, ticket.id, text)
    actor = f"agent:{author_user_id}"
    record(session, ticket.id, "note", actor, {"note_id": note.id}, at=now)
    ticket.updated_at = now
    await session.flush()
    await _emit(session, TicketNoteAdded, for_ticket=ticket, actor=actor, note=note_view(note))
    return note


def activity_view(entry: TicketActivity) -> dict[str, Any]:
    return {
        "id": entry.id,
        "ticket_id": entry.ticket_id,
        "kind": entry.kind,
        "actor": entry.actor,
        "actor_user_id": entry.actor_user_id,
        "data": entry.data,
        "created_at": entry.created_at.isoformat(),
        "merged_from_ticket_id": entry.merged_from_ticket_id,
    }


async def timeline(
    session: AsyncSession, ticket_id: int, *, after_id: int = 0, limit: int = 200
) -> list[dict[str, Any]]:
    """The ticket's timeline, oldest first (entries moved in by merges included)."""
    rows = await session.execute(
        select(TicketActivity)
        .where(TicketActivity.ticket_id == ticket_id, TicketActivity.id > after_id)
        .order_by(TicketActivity.id)
        .limit(limit)
    )
    return [activity_view(a) for a in rows.scalars()]


async def notes(session: AsyncSession, ticket_id: int, *, limit: int = 500) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(TicketNote)
        .where(TicketNote.ticket_id == ticket_id)
        .order_by(TicketNote.id)
        .limit(limit)
    )
    return [note_view(n) for n in rows.scalars()]
