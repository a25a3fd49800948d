"""Writing and reading articles. Every save appends an ArticleVersion: the history is
complete, and nothing a caller sends can choose the author, the version or an id.

Drafts of published articles: `do_update_article(..., as_draft=True)` on a published
article saves a pending draft beside the live fields (a version marked `is_draft`) and
changes nothing customers, the bot or search see; `do_publish` makes the draft live,
`do_discard_draft` drops it. `Article.version` always names the version holding the
live fields (the bot records it with every answer); new version numbers follow the
highest one, drafts included. A live save while a draft is pending carries each field
it changes into the draft unless the draft changed that field itself (so publishing
the draft later does not undo, say, a phrasing added from a missed question).
Unpublishing folds a pending draft into the article (it is then all draft anyway)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from knowledge_base.events import PublishedArticlesChanged
from knowledge_base.models import STATUSES, Article, ArticleVersion
from switchboard.db import utcnow
from switchboard.errors import Conflict, InvalidInput, NotFound
from switchboard.tx import emit

KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,99}$")
LOCALE_RE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,2}$")
MAX_QUESTION = 500
MAX_PHRASING = 500
MAX_PHRASINGS = 100
MAX_ANSWER = 20_000
MAX_CATEGORY = 100
MAX_TAG = 50
MAX_TAGS = 20
MAX_NOTE = 500
_CHANGED_KEY = "knowledge_base_changed_ids"
# What a caller may set; anything else in a body (id, version, author…) is ignored.
EDITABLE = ("key", "question", "phrasings", "answer_markdown", "locale", "category", "tags")
# What a draft holds: the key is the bot's stable id and changes only live.
CONTENT = ("question", "phrasings", "answer_markdown", "locale", "category", "tags")


@dataclass(frozen=True)
class TrainingArticle:
    """What the bot trains on: one published article at its current version."""

    key: str
    article_id: int
    version: int
    locale: str
    question: str
    phrasings: tuple[str, ...]
    answer: str


def _text(data: Mapping[str, Any], name: str, limit: int, *, required: bool) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise InvalidInput(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string")
    value = value.strip()
    if required and not value:
        raise InvalidInput(f"{name} must not be empty")
    if len(value) > limit:
        raise InvalidInput(f"{name} is longer than {limit} characters")
    return value


def _strings(data: Mapping[str, Any], name: str, limit: int, count: int) -> list[str] | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"{name} must be a list of strings")
    items: list[str] = []
    for raw in value:
        item = raw.strip()
        if len(item) > limit:
            raise InvalidInput(f"each of {name} must be at most {limit} characters")
        if item and item not in items:
            items.append(item)
    if len(items) > count:
        raise InvalidInput(f"at most {count} {name}")
    return items


def clean_fields(data: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
    """The editable fields of `data`, validated; unknown fields are dropped."""
    fields: dict[str, Any] = {}
    key = _text(data, "key", 100, required=creating)
    if key is not None:
        if not KEY_RE.match(key):
            raise InvalidInput("key must be lowercase letters, digits and _ (at most 100)")
        fields["key"] = key
    for name, limit in (("question", MAX_QUESTION), ("answer_markdown", MAX_ANSWER)):
        value = _text(data, name, limit, required=creating or name in data)
        if value is not None:
            fields[name] = value
    locale = _text(data, "locale", 20, required=creating or "locale" in data)
    if locale is not None:
        if not LOCALE_RE.match(locale):
            raise InvalidInput("locale must look like en, zh-Hans or zh-Hant")
        fields["locale"] = locale
    category = _text(data, "category", MAX_CATEGORY, required=False)
    if category is not None:
        fields["category"] = category
    phrasings = _strings(data, "phrasings", MAX_PHRASING, MAX_PHRASINGS)
    if phrasings is not None:
        fields["phrasings"] = phrasings
    tags = _strings(data, "tags", MAX_TAG, MAX_TAGS)
    if tags is not None:
        fields["tags"] = tags
    return fields


def _note(note: object) -> str:
    if note is None:
        return ""
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise InvalidInput(f"change_note must be a string of at most {MAX_NOTE} characters")
    return note.strip()


def live_content(article: Article) -> dict[str, Any]:
    return {
        "question": article.question,
        "phrasings": list(article.phrasings),
        "answer_markdown": article.answer_markdown,
        "locale": article.locale,
        "category": article.category,
        "tags": list(article.tags),
    }


def _snapshot(article: Article, author_user_id: int | None, note: str) -> ArticleVersion:
    return ArticleVersion(
        article_id=article.id,
        version=article.version,
        **live_content(article),
        status=article.status,
        author_user_id=author_user_id,
        change_note=note,
        is_draft=False,
        created_at=article.updated_at,
    )


async def _next_version(session: AsyncSession, article: Article) -> int:
    """One more than the highest version (a draft's included); the article is locked."""
    found = await session.execute(
        select(func.max(ArticleVersion.version)).where(ArticleVersion.article_id == article.id)
    )
    return max(int(found.scalar_one() or 0), article.version) + 1


async def _key_taken(session: AsyncSession, key: str, but: int | None = None) -> bool:
    query = select(Article.id).where(Article.key == key)
    if but is not None:
        query = query.where(Article.id != but)
    return (await session.execute(query.limit(1))).first() is not None


async def do_create_article(
    session: AsyncSession,
    data: Mapping[str, Any],
    *,
    author_user_id: int | None,
    change_note: object = None,
    publish: bool = False,
) -> Article:
    fields = clean_fields(data, creating=True)
    if await _key_taken(session, fields["key"]):
        raise Conflict(f"an article with key {fields['key']!r} exists")
    now = utcnow()
    article = Article(
        **{"category": "", "tags": [], "phrasings": [], **fields},
        status="published" if publish else "draft",
        version=1,
        created_at=now,
        updated_at=now,
        published_at=now if publish else None,
    )
    session.add(article)
    await session.flush()
    session.add(_snapshot(article, author_user_id, _note(change_note) or "created"))
    await session.flush()
    if publish:
        _training_changed(session, article, author_user_id)
    return article


async def _locked(session: AsyncSession, article_id: int) -> Article:
    article = await session.get(Article, article_id, with_for_update=True)
    if article is None:
        raise NotFound("article not found")
    return article


async def do_update_article(
    session: AsyncSession,
    article_id: int,
    data: Mapping[str, Any],
    *,
    author_user_id: int | None,
    change_note: object = None,
    as_draft: bool = False,
) -> Article:
    """Apply the edit and record it as a new version (even if nothing changed: a save).
    With `as_draft` on a published article, only its pending draft changes."""
    fields = clean_fields(data, creating=False)
    note = _note(change_note)
    article = await _locked(session, article_id)
    if as_draft and article.status == "published":
        return await _save_draft(session, article, fields, author_user_id, note)
    if "key" in fields and await _key_taken(session, fields["key"], but=article.id):
        raise Conflict(f"an article with key {fields['key']!r} exists")
    before = live_content(article)
    for name, value in fields.items():
        setattr(article, name, value)
    if article.draft is not None:
        # Carry each live change into the draft where the draft left that field alone.
        after = live_content(article)
        article.draft = {
            name: after[name]
            if before[name] != after[name] and article.draft.get(name) == before[name]
            else article.draft.get(name, after[name])
            for name in CONTENT
        }
    await _new_version(session, article, author_user_id, note or "edited")
    if article.status == "published":
        _training_changed(session, article, author_user_id)
    return article


async def _save_draft(
    session: AsyncSession,
    article: Article,
    fields: Mapping[str, Any],
    author_user_id: int | None,
    note: str,
) -> Article:
    if "key" in fields and fields["key"] != article.key:
        raise InvalidInput("key: a published article's key changes only in a live save")
    draft = {**live_content(article), **(article.draft or {})}
    draft.update({name: fields[name] for name in CONTENT if name in fields})
    number = await _next_version(session, article)
    now = utcnow()
    # A new dict: the JSON column sees the change.
    article.draft = {name: draft[name] for name in CONTENT}
    article.draft_version = number
    article.draft_author_user_id = author_user_id
    article.draft_saved_at = now
    session.add(
        ArticleVersion(
            article_id=article.id,
            version=number,
            **article.draft,
            status=article.status,
            author_user_id=author_user_id,
            change_note=note or "draft saved",
            is_draft=True,
            created_at=now,
        )
    )
    await session.flush()
    return article


def _take_draft(article: Article) -> int | None:
    """Move a pending draft into the live fields; its version number, or None."""
    if article.draft is None:
        return None
    number = article.draft_version
    for name in CONTENT:
        if name in article.draft:
            setattr(article, name, article.draft[name])
    _clear_draft(article)
    return number


def _clear_draft(article: Article) -> None:
    article.draft = None
    article.draft_version = None
    article.draft_author_user_id = None
    article.draft_saved_at = None


def _training_changed(session: AsyncSession, article: Article, author_user_id: int | None) -> None:
    # The event is queued once per transaction and its list grows in place: it is
    # serialised only when published, after commit, with every article it changed.
    pending: list[int] | None = session.info.get(_CHANGED_KEY)
    if pending is not None:
        if article.id not in pending:
            pending.append(article.id)
        return
    pending = session.info[_CHANGED_KEY] = [article.id]
    actor = f"user:{author_user_id}" if author_user_id is not None else "system"
    emit(session, PublishedArticlesChanged(actor, pending))


async def _new_version(
    session: AsyncSession, article: Article, author_user_id: int | None, note: str
) -> Article:
    article.version = await _next_version(session, article)
    article.updated_at = utcnow()
    session.add(_snapshot(article, author_user_id, note))
    await session.flush()
    return article


async def do_publish(
    session: AsyncSession, article_id: int, *, author_user_id: int | None
) -> Article:
    """Publish the article, or (published already) its pending draft."""
    article = await _locked(session, article_id)
    drafted = _take_draft(article)
    article.status = "published"
    article.published_at = utcnow()
    note = "published" if drafted is None else f"published the draft (version {drafted})"
    await _new_version(session, article, author_user_id, note)
    _training_changed(session, article, author_user_id)
    return article


async def do_discard_draft(
    session: AsyncSession, article_id: int, *, author_user_id: int | None
) -> tuple[Article, int]:
    """Drop the pending draft (its version stays in the history); the live article is
    untouched. Returns the article and the discarded draft's version number."""
    article = await _locked(session, article_id)
    if article.draft is None or article.draft_version is None:
        raise NotFound("the article has no draft")
    number = article.draft_version
    _clear_draft(article)
    await session.flush()
    return article, number


async def do_unpublish(
    session: AsyncSession, article_id: int, *, author_user_id: int | None
) -> Article:
    article = await _locked(session, article_id)
    was_published = article.status == "published"
    article.status = "draft"
    drafted = _take_draft(article)
    note = "unpublished" if drafted is None else f"unpublished with the draft (version {drafted})"
    await _new_version(session, article, author_user_id, note)
    if was_published:
        _training_changed(session, article, author_user_id)
    return article


async def get_article(session: AsyncSession, article_id: int) -> Article:
    article = await session.get(Article, article_id)
    if article is None:
        raise NotFound("article not found")
    return article


async def get_article_by_key(session: AsyncSession, key: str) -> Article | None:
    found = await session.execute(select(Article).where(Article.key == key))
    return found.scalar_one_or_none()


async def list_articles(
    session: AsyncSession,
    *,
    status: str | None = None,
    locale: str | None = None,
    ids: list[int] | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[Article]:
    if status is not None and status not in STATUSES:
        raise InvalidInput("status must be draft or published")
    query = select(Article)
    if status is not None:
        query = query.where(Article.status == status)
    if locale is not None:
        # "zh" covers zh-Hans and zh-Hant; "zh-Hans" only itself.
        query = query.where(or_(Article.locale == locale, Article.locale.like(f"{locale}-%")))
    if ids is not None:
        query = query.where(Article.id.in_(ids))
    query = query.order_by(Article.id).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list((await session.execute(query)).scalars())


async def count_articles(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count(Article.id)))).scalar_one())


async def history(session: AsyncSession, article_id: int) -> list[ArticleVersion]:
    """Every version of the article, oldest first (404 for no article)."""
    await get_article(session, article_id)
    found = await session.execute(
        select(ArticleVersion)
        .where(ArticleVersion.article_id == article_id)
        .order_by(ArticleVersion.version)
    )
    return list(found.scalars())


async def published_training_set(session: AsyncSession) -> list[TrainingArticle]:
    """Published articles as the bot trains on them (answers as Markdown source)."""
    return [
        TrainingArticle(
            key=a.key,
            article_id=a.id,
            version=a.version,
            locale=a.locale,
            question=a.question,
            phrasings=tuple(a.phrasings),
            answer=a.answer_markdown,
        )
        for a in await list_articles(session, status="published")
    ]


def article_view(article: Article) -> dict[str, Any]:
    return {
        "id": article.id,
        "key": article.key,
        "locale": article.locale,
        "category": article.category,
        "tags": list(article.tags),
        "status": article.status,
        "version": article.version,
        "question": article.question,
        "phrasings": list(article.phrasings),
        "answer_markdown": article.answer_markdown,
        "created_at": article.created_at.isoformat(),
        "updated_at": article.updated_at.isoformat(),
        "published_at": article.published_at.isoformat() if article.published_at else None,
        "draft": draft_view(article),
    }


def draft_view(article: Article) -> dict[str, Any] | None:
    """The pending draft of a published article (its content, version, author, time)."""
    if article.draft is None:
        return None
    return {
        **{name: article.draft.get(name) for name in CONTENT},
        "version": article.draft_version,
        "author_user_id": article.draft_author_user_id,
        "saved_at": article.draft_saved_at.isoformat() if article.draft_saved_at else None,
    }


def version_view(version: ArticleVersion) -> dict[str, Any]:
    return {
        "version": version.version,
        "question": version.question,
        "phrasings": list(version.phrasings),
        "answer_markdown": version.answer_markdown,
        "locale": version.locale,
        "category": version.category,
        "tags": list(version.tags),
        "status": version.status,
        "author_user_id": version.author_user_id,
        "change_note": version.change_note,
        "is_draft": version.is_draft,
        "created_at": version.created_at.isoformat(),
    }
