"""The index the inbox's cross-channel history reads by (migration 0016).

`GET /api/v1/conversations/{id}/history` (web.conversation_api.history_query) pages a
customer's messages on every channel newest first by `(created_at, id)`. On PostgreSQL
each of the customer's conversations gives its newest page from the end of this index
(a LATERAL subquery), so opening a customer with tens of thousands of messages reads a
page per conversation, not all of them; `uq_messages_conversation_id_seq` orders by seq,
which is not the order shown.
"""

from __future__ import annotations

from sqlalchemy import Index

from conversations.models import Message

HISTORY_INDEX = Index(
    "ix_messages_conversation_created", Message.conversation_id, Message.created_at, Message.id
)
