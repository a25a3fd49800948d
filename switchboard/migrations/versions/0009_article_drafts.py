"""Drafts of published articles

`kb_articles` gains a pending draft beside its live fields (`draft` JSON with the content
fields, `draft_version`, `draft_author_user_id`, `draft_saved_at`; all null when there is
none), and `kb_article_versions.is_draft` marks the versions saved as a draft (false for
every existing row).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 16:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("kb_articles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("draft", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("draft_version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("draft_author_user_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("draft_saved_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_kb_articles_draft_author_user_id_users"),
            "users",
            ["draft_author_user_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("kb_article_versions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("is_draft", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("kb_article_versions", schema=None) as batch_op:
        batch_op.drop_column("is_draft")
    with op.batch_alter_table("kb_articles", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_kb_articles_draft_author_user_id_users"), type_="foreignkey"
        )
        batch_op.drop_column("draft_saved_at")
        batch_op.drop_column("draft_author_user_id")
        batch_op.drop_column("draft_version")
        batch_op.drop_column("draft")
