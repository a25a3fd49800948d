"""Indexes for the agent's ticket list at a million tickets

Two partial indexes over the active tickets (new, open, pending, on hold): by assignee
and id (an agent's "mine" list, newest first, with no sort) and by id (the "visible
active" list, an index-ordered scan that never reads finished tickets). See
docs/benchmarks.md, "SLA: breach scan and the agent's ticket list".

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 16:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE_SQL = "status IN ('new', 'open', 'pending', 'on_hold')"


def upgrade() -> None:
    op.create_index(
        "ix_tickets_active_assignee",
        "tickets",
        ["assignee_user_id", "id"],
        unique=False,
        postgresql_where=sa.text(ACTIVE_SQL),
        sqlite_where=sa.text(ACTIVE_SQL),
    )
    op.create_index(
        "ix_tickets_active_id",
        "tickets",
        ["id"],
        unique=False,
        postgresql_where=sa.text(ACTIVE_SQL),
        sqlite_where=sa.text(ACTIVE_SQL),
    )


def downgrade() -> None:
    op.drop_index("ix_tickets_active_id", table_name="tickets")
    op.drop_index("ix_tickets_active_assignee", table_name="tickets")
