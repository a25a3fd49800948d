"""Merging one ticket into another.

`do_merge_tickets(survivor, merged)` moves the merged ticket's conversations (and with
them their messages), notes, tags and timeline to the survivor, points the merged
ticket at the survivor (`merged_into_id`) and closes it. Refused with a clear error:
merging a ticket into itself; merging a closed ticket (which includes one already
merged); merging into a closed ticket (the error names where a merged one went); an agent
merging tickets of two queues (or one queued and one not), which would show one
queue's notes and timeline to another's agents — supervisors and admins may.

Concurrency: both ticket rows are locked in ascending id order and every check is made
again under the locks, so crossed merges (A into B and B into A at once) never both
succeed: whichever commits second finds its survivor closed.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.search_terms import index_ticket
from customers.service import final_customer_id
from switchboard.db import utcnow
from switchboard.errors import Conflict, InvalidInput
from switchboard.models import Role, User
from switchboard.tx import emit
from tickets.events import TicketMerged, TicketUpdated
from tickets.lifecycle import Cause
from tickets.models import (
    Ticket,
    TicketActivity,
    TicketConversation,
    TicketNote,
    TicketStatus,
    TicketTag,
)
from tickets.service import (
    apply_status,
    full_view,
    lock_ticket,
    record,
    sync_open_links,
    ticket_inbox_id,
)


def _closed(ticket: Ticket) -> Conflict:
    if ticket.merged_into_id is not None:
        return Conflict(
            f"ticket {ticket.id} was merged into ticket {ticket.merged_into_id}",
            code="already_merged",
        )
    return Conflict(f"ticket {ticket.id} is closed", code="ticket_closed")


async def _move_conversations(session: AsyncSession, merged: Ticket, survivor: Ticket) -> list[int]:
    """Re-own the merged ticket's conversation links; return the conversations moved."""
    links = list(
        (
            await session.execute(
                select(TicketConversation)
                .where(TicketConversation.ticket_id == merged.id)
                .order_by(TicketConversation.id)
            )
        ).scalars()
    )
    # Free the merged ticket's open marks first: the survivor may take them over.
    await session.execute(
        update(TicketConversation)
        .where(TicketConversation.ticket_id == merged.id)
        .values(open_conversation_id=None)
    )
    already = set(
        (
            await session.execute(
                select(TicketConversation.conversation_id).where(
                    TicketConversation.ticket_id == survivor.id
                )
            )
        ).scalars()
    )
    moved: list[int] = []
    for link in links:
        if link.conversation_id in already:
            await session.execute(
                delete(TicketConversation).where(TicketConversation.id == link.id)
            )
        else:
            await session.execute(
                update(TicketConversation)
                .where(TicketConversation.id == link.id)
                .values(ticket_id=survivor.id)
            )
            moved.append(link.conversation_id)
    await session.flush()
    return moved


async def _move_tags(session: AsyncSession, merged: Ticket, survivor: Ticket) -> list[str]:
    theirs = set(
        (await session.execute(select(TicketTag.tag).where(TicketTag.ticket_id == merged.id)))
        .scalars()
        .all()
    )
    ours = set(
        (await session.execute(select(TicketTag.tag).where(TicketTag.ticket_id == survivor.id)))
        .scalars()
        .all()
    )
    added = sorted(theirs - ours)
    for tag in added:
        session.add(TicketTag(ticket_id=survivor.id, tag=tag))
    return added


async def do_merge_tickets(
    session: AsyncSession,
    *,
    survivor_id: int,
    merged_id: int,
    actor: str,
    by: User | None = None,
) -> Ticket:
    """Merge ticket `merged_id` into `survivor_id`; returns the survivor. `by`: the person
    asking; an agent may merge only tickets of one queue (or both in none)."""
    if survivor_id == merged_id:
        raise InvalidInput("a ticket cannot be merged into itself", code="merge_self")
    locked = {tid: await lock_ticket(session, tid) for tid in sorted((survivor_id, merged_id))}
    survivor, merged = locked[survivor_id], locked[merged_id]
    if survivor.status == TicketStatus.CLOSED:
        raise _closed(survivor)
    if merged.status == TicketStatus.CLOSED:
        raise _closed(merged)
    if await final_customer_id(session, merged.customer_id) != await final_customer_id(
        session, survivor.customer_id
    ):
        # Refused rather than silently combining two people's requests; merge the
        # customer records first if they are one person.
        raise Conflict(
            f"ticket {merged.id} belongs to another customer than ticket {survivor.id}",
            code="other_customer",
        )
    if by is not None and by.role == Role.AGENT and survivor.queue_id != merged.queue_id:
        # Notes, timeline and conversations would move where other agents see them.
        raise Conflict(
            f"ticket {merged.id} and ticket {survivor.id} are in different queues; "
            "only a supervisor or admin merges across queues",
            code="other_queue",
        )
    now = utcnow()
    conversations = await _move_conversations(session, merged, survivor)
    notes = await session.execute(
        update(TicketNote)
        .where(TicketNote.ticket_id == merged.id)
        .values(ticket_id=survivor.id)
        .returning(TicketNote.id)
    )
    moved_notes = len(notes.all())
    for ticket_id in (survivor.id, merged.id):
        await index_ticket(session, ticket_id)  # the notes' search terms move with them
    history = await session.execute(
        update(TicketActivity)
        .where(TicketActivity.ticket_id == merged.id)
        .values(ticket_id=survivor.id, merged_from_ticket_id=merged.id)
        .returning(TicketActivity.id)
    )
    moved_history = len(history.all())
    tags = await _move_tags(session, merged, survivor)
    merged_status = merged.status
    apply_status(merged, TicketStatus.CLOSED, Cause.MERGE, now)
    merged.merged_into_id = survivor.id
    merged.updated_at = now
    survivor.updated_at = now
    await sync_open_links(session, survivor)
    record(
        session,
        survivor.id,
        "merged",
        actor,
        {
            "merged_ticket_id": merged.id,
            "conversation_ids": conversations,
            "notes": moved_notes,
            "timeline_entries": moved_history,
            "tags_added": tags,
        },
        at=now,
    )
    record(
        session,
        merged.id,
        "merged_into",
        actor,
        {"survivor_id": survivor.id, "from": merged_status, "to": TicketStatus.CLOSED.value},
        at=now,
    )
    await session.flush()
    survivor_view = await full_view(session, survivor)
    emit(
        session,
        TicketMerged(
            actor=actor,
            ticket_id=merged.id,
            inbox_id=await ticket_inbox_id(session, survivor.id),
            ticket=survivor_view,
            survivor_id=survivor.id,
        ),
    )
    emit(
        session,
        TicketUpdated(
            actor=actor,
            ticket_id=survivor.id,
            inbox_id=await ticket_inbox_id(session, survivor.id),
            ticket=survivor_view,
            changes={"merged": {"ticket_id": merged.id, "conversation_ids": conversations}},
        ),
    )
    return survivor
