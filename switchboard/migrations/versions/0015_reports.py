"""Reports and the supervisor dashboard

Indexes on the time columns the reports filter by (see `tickets.report_indexes`):
tickets by creation and by solve, SLA clocks by due time (and status), bot replies by
time, the bot's state by hand-off time.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 16:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_tickets_created_at", "tickets", ["created_at"]),
    ("ix_tickets_solved_at", "tickets", ["solved_at"]),
    ("ix_sla_clocks_due_at", "sla_clocks", ["due_at", "status"]),
    ("ix_bot_replies_created_at", "bot_replies", ["created_at"]),
    ("ix_bot_conversations_handed_off_at", "bot_conversations", ["handed_off_at"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
