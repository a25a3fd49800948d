"""The intake path's statements, built once at import.

Built per call, a statement costs more CPU to construct and cache-key than to run; built
once with bound parameters, SQLAlchemy compiles it once and only binds values after.
They run on the session's Core connection, outside the ORM's unit of work.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, bindparam, case, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import ReturningUpdate

from conversations.models import Conversation, Message
from switchboard.db import UTCDateTime

messages: Table = Message.__table__  # type: ignore[assignment]
conversations: Table = Conversation.__table__  # type: ignore[assignment]

CONVERSATION_VIEW_COLUMNS = (
    conversations.c.id,
    conversations.c.inbox_id,
    conversations.c.customer_id,
    conversations.c.channel,
    conversations.c.status,
    conversations.c.subject,
    conversations.c.last_seq,
    conversations.c.last_preview,
    conversations.c.unread_count,
)

FIND_DUPLICATE = select(messages.c.id, messages.c.conversation_id, messages.c.seq).where(
    messages.c.inbox_id == bindparam("inbox_id"),
    messages.c.external_id == bindparam("external_id"),
)


def _advance(*, inbound: bool) -> ReturningUpdate[Any]:
    values: dict[str, Any] = {
        "last_seq": conversations.c.last_seq + 1,
        "last_message_at": bindparam("at", type_=UTCDateTime),
        "last_preview": bindparam("preview"),
    }
    if inbound:
        values["unread_count"] = conversations.c.unread_count + 1
    return (
        update(conversations)
        .where(conversations.c.id == bindparam("conversation_id"))
        .values(**values)
        .returning(*CONVERSATION_VIEW_COLUMNS)
    )


ADVANCE_INBOUND = _advance(inbound=True)
ADVANCE_OUTBOUND = _advance(inbound=False)
INSERT_MESSAGE = insert(messages).returning(messages.c.id)


# For batches: a duplicate shows up as no row returned instead of a preliminary SELECT.
INSERT_MESSAGES_UNLESS_DUPLICATE = {
    dialect: statement.returning(messages.c.inbox_id, messages.c.external_id, messages.c.id)
    for dialect, statement in {
        "postgresql": postgresql.insert(messages).on_conflict_do_nothing(
            index_elements=[messages.c.inbox_id, messages.c.external_id]
        ),
        "sqlite": sqlite.insert(messages).on_conflict_do_nothing(
            index_elements=[messages.c.inbox_id, messages.c.external_id]
        ),
    }.items()
}


def advance_many(conversation_ids: list[int]) -> ReturningUpdate[Any]:
    """Take the next seq of several conversations at once (one customer message each).
    Built per batch size; SQLAlchemy caches one compiled form per size."""
    previews = case(
        {cid: bindparam(f"p{n}") for n, cid in enumerate(conversation_ids)},
        value=conversations.c.id,
    )
    return (
        update(conversations)
        .where(conversations.c.id.in_(conversation_ids))
        .values(
            last_seq=conversations.c.last_seq + 1,
            last_message_at=bindparam("at", type_=UTCDateTime),
            last_preview=previews,
            unread_count=conversations.c.unread_count + 1,
        )
        .returning(*CONVERSATION_VIEW_COLUMNS)
    )


def preview_params(previews: dict[int, str]) -> dict[str, str]:
    return {f"p{n}": text for n, text in enumerate(previews.values())}
