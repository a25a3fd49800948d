"""Agent inbox: saved views and what each agent has read

`inbox_views` holds each agent's saved list views (a name and the filters, JSON);
`conversation_reads` how far each agent has read each conversation (their own unread
counts); `message_terms` the message search index (a term and a message, one row each:
normalised words, Chinese bigrams and single characters) with `search_index_state` the
id up to which messages are indexed. Messages stored before this revision are indexed
by the search's catch-up (`conversations.search.catch_up`), batch by batch.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 16:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbox_views",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_inbox_views_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_views")),
        sa.UniqueConstraint("user_id", "name", name=op.f("uq_inbox_views_user_id_name")),
    )
    op.create_table(
        "conversation_reads",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("last_read_seq", sa.Integer(), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_reads_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_conversation_reads_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "conversation_id", name=op.f("pk_conversation_reads")),
    )
    op.create_table(
        "message_terms",
        sa.Column("term", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_message_terms_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("term", "message_id", name=op.f("pk_message_terms")),
    )
    op.create_index("ix_message_terms_message_id", "message_terms", ["message_id"], unique=False)
    op.create_table(
        "search_index_state",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_search_index_state")),
    )


def downgrade() -> None:
    op.drop_table("search_index_state")
    op.drop_index("ix_message_terms_message_id", table_name="message_terms")
    op.drop_table("message_terms")
    op.drop_table("conversation_reads")
    op.drop_table("inbox_views")
