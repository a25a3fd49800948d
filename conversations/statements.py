"""The intake path's statements, built once at import.

Built per call, a statement costs more CPU to construct and cache-key than to run; built
once with bound parameters, SQLAlchemy compiles it once and only binds values after.
They run on the session's Core connection, outside the ORM's unit of work.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    case,
    column,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import ReturningUpdate
from sqlalchemy.sql.selectable import TextualSelect

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


# PostgreSQL: a batch of returning senders in one statement whose text does not depend on
# the batch size: each row's values come as arrays (unnested), a data-modifying CTE takes
# every conversation's next seq (the row lock orders concurrent writers, as `_advance`
# does), the INSERT stores each message under that seq and skips a duplicate, and the
# result pairs each conversation's view with its new message id (NULL: a duplicate).
# One round trip instead of two, one compiled form and one prepared statement, instead of
# a statement rendered per batch size with a parameter per value (the Core forms above,
# which SQLite still uses).
PG_ROW_ARRAYS = (  # per message, as arrays
    "conversation_id",
    "inbox_id",
    "external_id",
    "text",
    "sent_at",
    "html",
    "subject",
    "automatic",
)
PG_BATCH_SCALARS = (  # one value for the whole batch
    "direction",
    "author_kind",
    "author_user_id",
    "private",
    "delivery_status",
    "delivery_error",
    "created_at",
    "raw",
    "edited_at",
    "deleted_at",
    "inbound_event_id",
)
PG_FROM_STATEMENT = ("id", "seq")


def _store_returning_senders_pg(on_conflict: str) -> TextualSelect:
    return (
        text(
            """
        WITH v AS (
            SELECT * FROM unnest(
                CAST(:conversation_id AS INTEGER[]), CAST(:inbox_id AS INTEGER[]),
                CAST(:external_id AS VARCHAR[]), CAST(:text AS TEXT[]),
                CAST(:preview AS VARCHAR[]), CAST(:sent_at AS TIMESTAMP WITH TIME ZONE[]),
                CAST(:html AS TEXT[]), CAST(:subject AS VARCHAR[]),
                CAST(:automatic AS BOOLEAN[])
            ) AS v (conversation_id, inbox_id, external_id, text, preview, sent_at, html,
                    subject, automatic)
        ),
        advanced AS (
            UPDATE conversations AS c
            SET last_seq = c.last_seq + 1,
                last_message_at = :created_at,
                last_preview = v.preview,
                unread_count = c.unread_count + 1
            FROM v
            WHERE c.id = v.conversation_id
            RETURNING c.id, c.inbox_id, c.customer_id, c.channel, c.status, c.subject,
                      c.last_seq, c.last_preview, c.unread_count
        ),
        stored AS (
            INSERT INTO messages (conversation_id, inbox_id, seq, external_id, text,
                                  sent_at, html, subject, automatic, direction, author_kind,
                                  author_user_id, private, delivery_status, delivery_error,
                                  created_at, raw, edited_at, deleted_at, inbound_event_id)
            SELECT v.conversation_id, v.inbox_id, a.last_seq, v.external_id, v.text,
                   v.sent_at, v.html, v.subject, v.automatic, :direction, :author_kind,
                   :author_user_id, :private, :delivery_status, :delivery_error,
                   :created_at, :raw, :edited_at, :deleted_at, :inbound_event_id
            FROM v JOIN advanced AS a ON a.id = v.conversation_id
            {on_conflict}
            RETURNING conversation_id, id
        )
        SELECT a.id, a.inbox_id, a.customer_id, a.channel, a.status, a.subject,
               a.last_seq, a.last_preview, a.unread_count, s.id AS message_id
        FROM advanced AS a LEFT JOIN stored AS s ON s.conversation_id = a.id
        """.replace("{on_conflict}", on_conflict)  # one of the two constants below
        )
        .bindparams(
            bindparam("conversation_id", type_=postgresql.ARRAY(Integer)),
            bindparam("inbox_id", type_=postgresql.ARRAY(Integer)),
            bindparam("external_id", type_=postgresql.ARRAY(String)),
            bindparam("text", type_=postgresql.ARRAY(Text)),
            bindparam("preview", type_=postgresql.ARRAY(String)),
            bindparam("sent_at", type_=postgresql.ARRAY(UTCDateTime)),
            bindparam("html", type_=postgresql.ARRAY(Text)),
            bindparam("subject", type_=postgresql.ARRAY(String)),
            bindparam("automatic", type_=postgresql.ARRAY(Boolean)),
            *(bindparam(name, type_=messages.c[name].type) for name in PG_BATCH_SCALARS),
        )
        .columns(*CONVERSATION_VIEW_COLUMNS, column("message_id", Integer))
    )


STORE_RETURNING_SENDERS_PG = _store_returning_senders_pg(
    "ON CONFLICT (inbox_id, external_id) DO NOTHING"
)
# The same, for running alone in autocommit (`conversations.intake_pg`): a duplicate
# fails the whole statement, so nothing of the batch is stored (one statement is atomic
# without a BEGIN and a COMMIT around it, which would be two more round trips).
STORE_RETURNING_SENDERS_PG_ALONE = _store_returning_senders_pg("")
