"""The customer and ticket search index: customer_terms and ticket_terms

One row per (term, customer) and (term, ticket), so searching customers and tickets is
a primary-key range scan per term instead of a substring scan of every row (see
`conversations.search_terms`). Existing customers and tickets are indexed here.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 17:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_terms",
        sa.Column("term", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_terms_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("term", "customer_id", name=op.f("pk_customer_terms")),
    )
    op.create_index("ix_customer_terms_customer_id", "customer_terms", ["customer_id"])
    op.create_table(
        "ticket_terms",
        sa.Column("term", sa.String(length=64), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_ticket_terms_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("term", "ticket_id", name=op.f("pk_ticket_terms")),
    )
    op.create_index("ix_ticket_terms_ticket_id", "ticket_terms", ["ticket_id"])
    # Imported here: the term rules are the application's (one place to change them).
    from conversations.search_terms import backfill

    backfill(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_ticket_terms_ticket_id", table_name="ticket_terms")
    op.drop_table("ticket_terms")
    op.drop_index("ix_customer_terms_customer_id", table_name="customer_terms")
    op.drop_table("customer_terms")
