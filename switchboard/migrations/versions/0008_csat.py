"""CSAT: rating requests and answers per solved ticket, per-inbox switch

The per-inbox switch lives in `inboxes.config` ("csat_enabled", default on): no column.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 14:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "csat_surveys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("inbox_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("agent_user_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("locale", sa.String(length=20), nullable=False),
        sa.Column("skipped", sa.String(length=32), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("answered_via", sa.String(length=16), nullable=True),
        sa.Column("rated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("commented_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_user_id"],
            ["users.id"],
            name=op.f("fk_csat_surveys_agent_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_csat_surveys_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_csat_surveys_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["inbox_id"],
            ["inboxes.id"],
            name=op.f("fk_csat_surveys_inbox_id_inboxes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_csat_surveys_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_csat_surveys_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_csat_surveys")),
        sa.UniqueConstraint("message_id", name=op.f("uq_csat_surveys_message_id")),
        sa.UniqueConstraint("ticket_id", name=op.f("uq_csat_surveys_ticket_id")),
    )
    op.create_index("ix_csat_surveys_agent", "csat_surveys", ["agent_user_id", "rated_at"])
    op.create_index(op.f("ix_csat_surveys_conversation_id"), "csat_surveys", ["conversation_id"])
    op.create_index(op.f("ix_csat_surveys_customer_id"), "csat_surveys", ["customer_id"])
    op.create_index("ix_csat_surveys_inbox", "csat_surveys", ["inbox_id", "rated_at"])
    op.create_index("ix_csat_surveys_rated_at", "csat_surveys", ["rated_at", "id"])


def downgrade() -> None:
    op.drop_table("csat_surveys")
