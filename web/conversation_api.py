"""REST routes for working one conversation in the agent inbox, under /api/v1:

- `GET /conversations/{id}/history`: every message of the conversation's customer across
  every channel the caller may see, in order, each with its channel, its author's name,
  and for a bot answer the article and confidence (`bot_replies`);
- `GET /conversations/{id}/assist`: knowledge-base answers for the customer's latest
  message (agent assist), published articles only;
- `POST /conversations/{id}/notes`: an internal note naming teammates (`mentions`), each
  notified live; never sent to the customer;
- `GET /mentions`, `POST /mentions/read`: the caller's own mentions;
- `GET /teammates`: active staff (names for @mentions and the assignee picker).

Staff only; every conversation is reached through `web.access.access_conversation_by_id`
and every list through `visible_conversations`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import Select, and_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import BotReply
from conversations.mentions import MAX_MENTIONS, do_add_note, do_mark_mentions_read, list_mentions
from conversations.models import Conversation, Message
from conversations.service import attachments_by_message, latest_customer_texts, message_view
from knowledge_base.markdown import plain_text
from knowledge_base.models import Article
from knowledge_base.search import search_articles
from switchboard.appkeys import DB
from switchboard.errors import InvalidInput, NotFound
from switchboard.models import User
from web.access import (
    STAFF_ROLES,
    access_conversation_by_id,
    access_staff,
    row_id_from,
    visible_conversations,
)
from web.bodies import read_json_object

HISTORY_PAGE = 100
MAX_HISTORY_PAGE = 300
ASSIST_RESULTS = 3
# BM25 scores grow with the knowledge base (IDF): a hit far below the best one, or one
# matching only a word that is everywhere (score under 1 even in a tiny base), is noise.
ASSIST_MIN_SCORE = 1.0
ASSIST_RELATIVE = 0.6
MAX_TEAMMATES = 500


def _conversation_id(request: web.Request) -> int:
    found = row_id_from(request.match_info["id"])
    if found is None:
        raise NotFound("conversation not found")
    return found


def _limit(request: web.Request, default: int, most: int) -> int:
    raw = request.query.get("limit", str(default))
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= most:
        raise InvalidInput(f"limit must be a whole number from 1 to {most}")
    return int(raw)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _encode_cursor(created_at: datetime, message_id: int) -> str:
    """URL-safe: microseconds since the epoch and the id."""
    return f"{(created_at - EPOCH) // timedelta(microseconds=1)}~{message_id}"


Cursor = tuple[datetime, int]


def _decode_cursor(raw: str) -> Cursor:
    stamp, _, raw_id = raw.partition("~")
    message_id = row_id_from(raw_id)
    if message_id is None or not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 17:
        raise InvalidInput("cursor is not one this API gave", code="invalid_cursor")
    return EPOCH + timedelta(microseconds=int(stamp)), message_id


HistorySelect = Select[Message, str, str | None, str, BotReply, str]


def _newest_first_before(query: Any, created_at: Any, row_id: Any, before: Cursor | None) -> Any:
    if before is not None:
        when, message_id = before
        query = query.where(or_(created_at < when, and_(created_at == when, row_id < message_id)))
    return query.order_by(created_at.desc(), row_id.desc())


def history_query(
    customer_id: int, user: User, before: Cursor | None, limit: int, *, lateral: bool
) -> HistorySelect:
    """A page of the customer's messages the caller may see, newest first.

    The page's ids are found first, then joined with what the pane shows. On PostgreSQL
    (`lateral`) each of the customer's conversations gives at most `limit` ids from the
    end of its `(conversation_id, created_at, id)` index (migration 0016), and only those
    are merged: opening a customer with 20,000 messages reads a page's worth per
    conversation instead of all of them. SQLite (no LATERAL) filters by the
    conversations and sorts."""
    conversations = select(Conversation.id).where(
        Conversation.customer_id == customer_id, visible_conversations(user)
    )
    if lateral:
        mine = conversations.subquery("mine")
        newest = _newest_first_before(
            select(Message.id, Message.created_at).where(Message.conversation_id == mine.c.id),
            Message.created_at,
            Message.id,
            before,
        )
        each = newest.limit(limit).lateral("each")
        page = (
            select(each.c.id)
            .select_from(mine.join(each, true()))
            .order_by(each.c.created_at.desc(), each.c.id.desc())
            .limit(limit)
            .subquery("page")
        )
    else:
        page = (
            _newest_first_before(
                select(Message.id).where(Message.conversation_id.in_(conversations)),
                Message.created_at,
                Message.id,
                before,
            )
            .limit(limit)
            .subquery("page")
        )
    return (
        select(
            Message,
            Conversation.channel,
            Conversation.subject,
            User.name,
            BotReply,
            Article.question,
        )
        .select_from(page)
        .join(Message, Message.id == page.c.id)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .outerjoin(User, User.id == Message.author_user_id)
        .outerjoin(BotReply, BotReply.message_id == Message.id)
        .outerjoin(Article, Article.id == BotReply.article_id)
        .order_by(Message.created_at.desc(), Message.id.desc())
    )


async def history(request: web.Request) -> web.Response:
    """The customer's messages on every channel, oldest first, a page ending before
    `before` (the `next_cursor` of the previous page; none: the newest page)."""
    user = access_staff(request)
    limit = _limit(request, HISTORY_PAGE, MAX_HISTORY_PAGE)
    before = _decode_cursor(request.query["before"]) if "before" in request.query else None
    async with request.config_dict[DB].reading() as session:
        conversation = await access_conversation_by_id(session, user, _conversation_id(request))
        lateral = session.get_bind().dialect.name == "postgresql"
        query = history_query(conversation.customer_id, user, before, limit + 1, lateral=lateral)
        rows = (await session.execute(query)).all()
        more = len(rows) > limit
        rows = rows[:limit]
        files = await attachments_by_message(session, [r[0].id for r in rows])
    messages = []
    for message, channel, subject, author_name, bot, article_question in reversed(rows):
        view = message_view(message, files.get(message.id, []))
        view["channel"] = channel
        view["conversation_subject"] = subject
        view["author_name"] = author_name
        view["bot"] = (
            {
                "kind": bot.kind,
                "topic": bot.topic,
                "article_id": bot.article_id,
                "article_title": article_question,
                "confidence": bot.confidence,
                "reason": bot.reason,
            }
            if bot is not None
            else None
        )
        messages.append(view)
    oldest = rows[-1][0] if rows else None
    return web.json_response(
        {
            "customer_id": conversation.customer_id,
            "messages": messages,
            "next_cursor": _encode_cursor(oldest.created_at, oldest.id)
            if more and oldest
            else None,
        }
    )


async def assist(request: web.Request) -> web.Response:
    """Published articles answering the customer's latest message, best first."""
    user = access_staff(request)
    async with request.config_dict[DB].reading() as session:
        conversation = await access_conversation_by_id(session, user, _conversation_id(request))
        texts = await latest_customer_texts(session, conversation.id, 1)
        question = texts[0] if texts else ""
        suggestions: list[dict[str, Any]] = []
        if question.strip():
            hits = await search_articles(session, question, limit=20)
            ids = [h.article_id for h in hits]
            articles = {
                a.id: a
                for a in (
                    await session.execute(
                        select(Article).where(Article.id.in_(ids), Article.status == "published")
                    )
                ).scalars()
            }
            best = max((h.score for h in hits if h.article_id in articles), default=0.0)
            for hit in hits:
                article = articles.get(hit.article_id)
                if article is None or hit.score < max(ASSIST_MIN_SCORE, best * ASSIST_RELATIVE):
                    continue
                suggestions.append(
                    {
                        "article_id": article.id,
                        "question": article.question,
                        "answer": plain_text(article.answer_markdown),
                        "locale": article.locale,
                        "score": hit.score,
                    }
                )
                if len(suggestions) == ASSIST_RESULTS:
                    break
    return web.json_response({"question": question, "suggestions": suggestions})


async def _mentionable(
    session: AsyncSession, conversation: Conversation, raw: object
) -> list[User]:
    """The named teammates: active staff who may see the conversation, or a 400."""
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_MENTIONS:
        raise InvalidInput(
            f"mentions must be a list of at most {MAX_MENTIONS} user ids", code="invalid_mentions"
        )
    ids = []
    for item in raw:
        found = row_id_from(item) if not isinstance(item, str | bool) else None
        if found is None:
            raise InvalidInput("mentions must be user ids", code="invalid_mentions")
        ids.append(found)
    if not ids:
        return []
    users = {
        u.id: u
        for u in (
            await session.execute(
                select(User).where(
                    User.id.in_(ids), User.active.is_(True), User.role.in_(STAFF_ROLES)
                )
            )
        ).scalars()
    }
    for user_id in ids:
        person = users.get(user_id)
        if person is None:
            raise InvalidInput(f"user {user_id} cannot be mentioned", code="invalid_mentions")
        sees = await session.execute(
            select(Conversation.id).where(
                Conversation.id == conversation.id, visible_conversations(person)
            )
        )
        if sees.first() is None:
            raise InvalidInput(
                f"{person.name} cannot see this conversation", code="mention_not_visible"
            )
    return list(users.values())


async def add_note(request: web.Request) -> web.Response:
    user = access_staff(request)
    conversation_id = _conversation_id(request)
    data = await read_json_object(request)
    attachment_ids = data.get("attachments", [])
    if not isinstance(attachment_ids, list) or not all(isinstance(a, str) for a in attachment_ids):
        raise InvalidInput("attachments must be a list of attachment ids")

    async def write(session: AsyncSession) -> dict[str, Any]:
        conversation = await access_conversation_by_id(session, user, conversation_id)
        mentioned = await _mentionable(session, conversation, data.get("mentions"))
        message, rows = await do_add_note(
            session,
            conversation=conversation,
            author=user,
            text=data.get("text", ""),
            mentioned=mentioned,
            attachment_ids=attachment_ids,
        )
        files = await attachments_by_message(session, [message.id])
        return {
            "message": message_view(message, files.get(message.id, [])),
            "mentioned_user_ids": [r.mentioned_user_id for r in rows],
        }

    return web.json_response(await request.config_dict[DB].run(write), status=201)


async def mentions(request: web.Request) -> web.Response:
    user = access_staff(request)
    unread_only = request.query.get("unread", "") in ("1", "true")
    limit = _limit(request, 50, 200)
    async with request.config_dict[DB].reading() as session:
        rows = await list_mentions(
            session,
            user.id,
            visible=visible_conversations(user),
            unread_only=unread_only,
            limit=limit,
        )
    return web.json_response({"mentions": rows})


async def mark_mentions_read(request: web.Request) -> web.Response:
    user = access_staff(request)
    data = await read_json_object(request)
    raw = data.get("conversation_id")
    conversation_id = None
    if raw is not None:
        conversation_id = row_id_from(raw) if not isinstance(raw, str | bool) else None
        if conversation_id is None:
            raise InvalidInput("conversation_id must be a conversation id")

    async def write(session: AsyncSession) -> int:
        return await do_mark_mentions_read(session, user.id, conversation_id=conversation_id)

    return web.json_response({"marked": await request.config_dict[DB].run(write)})


async def teammates(request: web.Request) -> web.Response:
    access_staff(request)
    async with request.config_dict[DB].reading() as session:
        rows = await session.execute(
            select(User.id, User.name, User.role)
            .where(User.active.is_(True), User.role.in_(STAFF_ROLES))
            .order_by(User.name, User.id)
            .limit(MAX_TEAMMATES)
        )
        found = [{"id": i, "name": n, "role": r} for i, n, r in rows]
    return web.json_response({"teammates": found})


def setup(app: web.Application) -> None:
    app.router.add_get("/conversations/{id}/history", history)
    app.router.add_get("/conversations/{id}/assist", assist)
    app.router.add_post("/conversations/{id}/notes", add_note)
    app.router.add_get("/mentions", mentions)
    app.router.add_post("/mentions/read", mark_mentions_read)
    app.router.add_get("/teammates", teammates)
