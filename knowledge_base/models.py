"""Knowledge-base articles and their versions: every save is a new, immutable version."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.db import Base, UTCDateTime, utcnow

STATUSES = ("draft", "published")


class Article(Base):
    """The live state of an article; `version` names the ArticleVersion holding it.

    A published article may also have a pending draft (`draft`: its content fields, with
    `draft_version`, its author and time): customers, the bot and search see only the
    live columns until the draft is published. `draft` is null whenever the article is
    not published (an unpublished article is all draft: edits change it directly)."""

    __tablename__ = "kb_articles"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stable slug: the Rasa `faq/<key>` intent and the bot's answer id survive edits.
    key: Mapped[str] = mapped_column(String(100), unique=True)
    locale: Mapped[str] = mapped_column(String(20), index=True)
    category: Mapped[str] = mapped_column(String(100), default="")
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="draft", index=True)
    version: Mapped[int] = mapped_column(default=1)
    question: Mapped[str] = mapped_column(String(500))
    phrasings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    answer_markdown: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    draft: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    draft_version: Mapped[int | None] = mapped_column()
    draft_author_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    draft_saved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ArticleVersion(Base):
    """One saved state of an article, with who saved it and why."""

    __tablename__ = "kb_article_versions"
    __table_args__ = (UniqueConstraint("article_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column()
    question: Mapped[str] = mapped_column(String(500))
    phrasings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    answer_markdown: Mapped[str] = mapped_column(Text)
    locale: Mapped[str] = mapped_column(String(20))
    category: Mapped[str] = mapped_column(String(100), default="")
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20))
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    change_note: Mapped[str] = mapped_column(String(500), default="")
    # A save of a published article's pending draft (never live unless published later).
    is_draft: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
