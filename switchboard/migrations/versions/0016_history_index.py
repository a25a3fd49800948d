"""The cross-channel history's index: messages by conversation, time and id

A customer's history in the inbox is paged newest first by (created_at, id) across
their conversations; each conversation's newest page is read from the end of this index
(see `conversations.history_index`).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 17:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_messages_conversation_created",
        "messages",
        ["conversation_id", "created_at", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_messages_conversation_created", table_name="messages")
