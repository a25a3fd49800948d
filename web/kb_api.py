"""REST routes for the knowledge base under /api/v1.

Agents (and above) read; only admins write. A write body names content only: the id
comes from the path, the author from the caller, the version from the history; any
other field a caller sends is ignored (`knowledge_base.service.EDITABLE`).

Drafts: PATCH with `"as_draft": true` on a published article saves its pending draft
only (customers and the bot keep the live text); POST .../publish publishes the draft
if there is one; DELETE .../draft discards it. GET shows both: the live fields and
`draft` (null, or its fields with `answer_html`, version, author and time).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from knowledge_base.markdown import render_answer
from knowledge_base.models import STATUSES, Article
from knowledge_base.search import search_articles
from knowledge_base.service import (
    EDITABLE,
    LOCALE_RE,
    article_view,
    do_create_article,
    do_discard_draft,
    do_publish,
    do_unpublish,
    do_update_article,
    get_article,
    history,
    list_articles,
    version_view,
)
from switchboard.appkeys import DB
from switchboard.audit import record
from switchboard.errors import InvalidInput, NotFound
from switchboard.models import User
from web.access import MAX_ROW_ID, access_admin, access_staff
from web.bodies import read_json_object
from web.clientip import client_address

# The largest valid article (70,500 characters) written as \uXXXX escapes, as most
# JSON encoders send Chinese, is about 420 KB: more than the API's default body limit.
ARTICLE_BODY_LIMIT = 512 * 1024
MAX_QUERY = 200
MAX_LIMIT = 200
DEFAULT_LIMIT = 50


def _reader(request: web.Request) -> User:
    return access_staff(request)


def _admin(request: web.Request) -> User:
    return access_admin(request, "the knowledge base")


def _article_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    # isascii: str.isdigit() also accepts "²" and "١".
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10 or not 0 < int(raw) <= MAX_ROW_ID:
        raise NotFound("article not found")
    return int(raw)


def _int_param(request: web.Request, name: str, default: int, top: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or int(raw) > top:
        raise InvalidInput(f"{name} must be a whole number from 0 to {top}")
    return int(raw)


def _detail(article: Article) -> dict[str, Any]:
    view = {**article_view(article), "answer_html": render_answer(article.answer_markdown)}
    if view["draft"] is not None:
        view["draft"]["answer_html"] = render_answer(view["draft"]["answer_markdown"])
    return view


async def _audit(
    session: AsyncSession,
    request: web.Request,
    user: User,
    action: str,
    article: Article,
    extra: dict[str, Any] | None = None,
) -> None:
    await record(
        session, action, actor=user, address=client_address(request), target_type="article",
        target_id=article.id, target_label=article.key,
        details={"version": article.version, "status": article.status, **(extra or {})},
    )  # fmt: skip


async def articles(request: web.Request) -> web.Response:
    """Articles, filtered by status and locale; with `q`, best matches first."""
    _reader(request)
    status = request.query.get("status") or None
    if status is not None and status not in STATUSES:
        raise InvalidInput("status must be draft or published")
    locale = request.query.get("locale") or None
    if locale is not None and not LOCALE_RE.match(locale):
        raise InvalidInput("locale must look like en, zh, zh-Hans or zh-Hant")
    query = request.query.get("q", "").strip()
    if len(query) > MAX_QUERY:
        raise InvalidInput(f"q is at most {MAX_QUERY} characters")
    limit = _int_param(request, "limit", DEFAULT_LIMIT, MAX_LIMIT)
    offset = _int_param(request, "offset", 0, 10**6)
    async with request.config_dict[DB].reading() as session:
        if not query:
            found = await list_articles(
                session, status=status, locale=locale, limit=limit, offset=offset
            )
            return web.json_response({"articles": [article_view(a) for a in found]})
        hits = await search_articles(session, query, limit=10_000)
        scores = {hit.article_id: hit.score for hit in hits}
        matching = await list_articles(session, status=status, locale=locale, ids=list(scores))
    ranked = sorted(matching, key=lambda a: (-scores[a.id], a.id))[offset : offset + limit]
    return web.json_response(
        {"articles": [{**article_view(a), "score": scores[a.id]} for a in ranked]}
    )


async def article(request: web.Request) -> web.Response:
    _reader(request)
    article_id = _article_id(request)
    async with request.config_dict[DB].reading() as session:
        found = await get_article(session, article_id)
        return web.json_response({"article": _detail(found)})


async def versions(request: web.Request) -> web.Response:
    _reader(request)
    article_id = _article_id(request)
    async with request.config_dict[DB].reading() as session:
        rows = await history(session, article_id)
    return web.json_response({"versions": [version_view(v) for v in rows]})


def _content(data: dict[str, Any]) -> dict[str, Any]:
    return {name: data[name] for name in EDITABLE if name in data}


async def create(request: web.Request) -> web.Response:
    user = _admin(request)
    data = await read_json_object(request, limit=ARTICLE_BODY_LIMIT)

    async def write(session: AsyncSession) -> dict[str, Any]:
        created = await do_create_article(
            session, _content(data), author_user_id=user.id, change_note=data.get("change_note")
        )
        await _audit(session, request, user, "kb.article.created", created)
        return _detail(created)

    return web.json_response({"article": await request.config_dict[DB].run(write)}, status=201)


async def update(request: web.Request) -> web.Response:
    user = _admin(request)
    article_id = _article_id(request)
    data = await read_json_object(request, limit=ARTICLE_BODY_LIMIT)
    as_draft = data.get("as_draft", False)
    if not isinstance(as_draft, bool):
        raise InvalidInput("as_draft must be true or false")

    async def write(session: AsyncSession) -> dict[str, Any]:
        changed = await do_update_article(
            session,
            article_id,
            _content(data),
            author_user_id=user.id,
            change_note=data.get("change_note"),
            as_draft=as_draft,
        )
        if as_draft and changed.draft is not None:
            await _audit(
                session, request, user, "kb.article.draft_saved", changed,
                {"draft_version": changed.draft_version},
            )  # fmt: skip
        else:
            await _audit(session, request, user, "kb.article.edited", changed)
        return _detail(changed)

    return web.json_response({"article": await request.config_dict[DB].run(write)})


async def publish(request: web.Request) -> web.Response:
    user = _admin(request)
    article_id = _article_id(request)

    async def write(session: AsyncSession) -> dict[str, Any]:
        # Read under the row lock do_publish takes too: the draft it publishes.
        locked = await session.get(Article, article_id, with_for_update=True)
        draft = locked.draft_version if locked is not None else None
        done = await do_publish(session, article_id, author_user_id=user.id)
        extra = {"draft_version": draft} if draft is not None else None
        await _audit(session, request, user, "kb.article.published", done, extra)
        return _detail(done)

    return web.json_response({"article": await request.config_dict[DB].run(write)})


async def unpublish(request: web.Request) -> web.Response:
    user = _admin(request)
    article_id = _article_id(request)

    async def write(session: AsyncSession) -> dict[str, Any]:
        done = await do_unpublish(session, article_id, author_user_id=user.id)
        await _audit(session, request, user, "kb.article.unpublished", done)
        return _detail(done)

    return web.json_response({"article": await request.config_dict[DB].run(write)})


async def discard_draft(request: web.Request) -> web.Response:
    """Drop a published article's pending draft; the live article stays as it is."""
    user = _admin(request)
    article_id = _article_id(request)

    async def write(session: AsyncSession) -> dict[str, Any]:
        done, number = await do_discard_draft(session, article_id, author_user_id=user.id)
        await _audit(
            session, request, user, "kb.article.draft_discarded", done, {"draft_version": number}
        )
        return _detail(done)

    return web.json_response({"article": await request.config_dict[DB].run(write)})


def setup(app: web.Application) -> None:
    app.router.add_get("/kb/articles", articles)
    app.router.add_post("/kb/articles", create)
    app.router.add_get("/kb/articles/{id}", article)
    app.router.add_patch("/kb/articles/{id}", update)
    app.router.add_get("/kb/articles/{id}/versions", versions)
    app.router.add_post("/kb/articles/{id}/publish", publish)
    app.router.add_post("/kb/articles/{id}/unpublish", unpublish)
    app.router.add_delete("/kb/articles/{id}/draft", discard_draft)
