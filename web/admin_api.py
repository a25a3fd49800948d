"""Admin-only JSON routes under /api/v1 for the admin console (`web.admin`): users and
roles, the audit log, the knowledge base's revert/diff/preview, the "try the bot" box,
turning a missed question into a phrasing, and the inbox connection test. Every route is
`access_admin`: a supervisor or agent gets 403, a non-staff caller 404, anonymous 401.

Every write records an audit entry (`switchboard.audit.record`) in its own transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import secrets
import ssl
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.engines.base import predict_within, unavailable
from bot.inbox_settings import load_inbox_settings
from bot.models import BotReply
from bot.policy import Answer, BotMemory, BotSettings, Clarify, CustomerFacts, decide
from bot.training import pick_variant
from channels.base import InboxSetup
from conversations.models import Message
from knowledge_base.markdown import render_answer
from knowledge_base.models import ArticleVersion
from knowledge_base.service import MAX_ANSWER, do_update_article, get_article
from routing.models import QueueMember
from switchboard import accounts
from switchboard.appkeys import BOT_RUNTIME, DB, REGISTRY
from switchboard.audit import entry_view, record, search_entries
from switchboard.db import utcnow
from switchboard.errors import Conflict, InvalidInput, NotFound
from switchboard.events import UserRoleChanged
from switchboard.models import Role, User
from switchboard.tx import emit
from web.access import access_admin, row_id_from
from web.bodies import read_json_object
from web.clientip import client_address
from web.kb_api import _detail as article_detail

MAX_LIMIT = 200
MAX_QUERY = 200
MAX_TRY = 1000
TRY_TIMEOUT = 10.0
USER_FIELDS = frozenset({"role", "active", "name"})


def _admin(request: web.Request) -> User:
    return access_admin(request, "the hub's settings")


def _path_id(request: web.Request, what: str) -> int:
    found = row_id_from(request.match_info["id"])
    if found is None:
        raise NotFound(f"{what} not found")
    return found


def _limit(request: web.Request, default: int = 50) -> int:
    raw = request.query.get("limit", str(default))
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 4 or not 0 < int(raw) <= MAX_LIMIT:
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


def _where(request: web.Request) -> str:
    return client_address(request)


# --- users ---------------------------------------------------------------------------------


def user_view(user: User, queue_ids: list[int] | None = None) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "active": user.active,
        "locale": user.locale,
        "created_at": user.created_at.isoformat(),
        "queue_ids": queue_ids or [],
    }


async def users(request: web.Request) -> web.Response:
    """Every user (active or not) by id, a page at a time (`cursor`: the last id seen)."""
    _admin(request)
    limit = _limit(request, default=MAX_LIMIT)
    after = 0
    if request.query.get("cursor"):
        found = row_id_from(request.query["cursor"])
        if found is None:
            raise InvalidInput("cursor is not one this API gave out", code="invalid_filter")
        after = found
    async with request.config_dict[DB].reading() as session:
        query = select(User).where(User.id > after).order_by(User.id).limit(limit + 1)
        rows = list((await session.execute(query)).scalars())
        more, rows = len(rows) > limit, rows[:limit]
        ids = [u.id for u in rows]
        memberships = (
            await session.execute(
                select(QueueMember.user_id, QueueMember.queue_id)
                .where(QueueMember.user_id.in_(ids))
                .order_by(QueueMember.queue_id)
            )
        ).all()
    queues: dict[int, list[int]] = {}
    for user_id, queue_id in memberships:
        queues.setdefault(user_id, []).append(queue_id)
    return web.json_response(
        {
            "users": [user_view(u, queues.get(u.id, [])) for u in rows],
            "next_cursor": str(rows[-1].id) if more and rows else None,
        }
    )


def _role(raw: object) -> str:
    if raw not in {r.value for r in Role}:
        raise InvalidInput("role must be agent, supervisor or admin")
    assert isinstance(raw, str)
    return raw


def _name(raw: object) -> str:
    if not isinstance(raw, str) or len(raw.strip()) > 200 or "\x00" in raw:
        raise InvalidInput("name must be a string of at most 200 characters")
    return raw.strip()


def one_time_password() -> str:
    """Shown once to the admin who asked; only its Argon2 hash is stored."""
    return secrets.token_urlsafe(12)


async def create_user(request: web.Request) -> web.Response:
    admin = _admin(request)
    data = await read_json_object(request)
    email = data.get("email")
    if not isinstance(email, str) or "\x00" in email:
        raise InvalidInput("email is required", code="invalid_email")
    role = _role(data.get("role", "agent"))
    name = _name(data.get("name", ""))
    password = data.get("password")
    generated = password is None or password == ""
    if generated:
        password = one_time_password()
    if not isinstance(password, str) or len(password) > 1024:
        raise InvalidInput("password must be a string")

    async def write(session: AsyncSession) -> dict[str, Any]:
        user = await accounts.do_create_user(
            session, email=email, name=name, role=role, password=password
        )
        await record(
            session,
            "user.created",
            actor=admin,
            address=_where(request),
            target_type="user",
            target_id=user.id,
            target_label=user.email,
            details={"role": role, "name": user.name, "password_generated": generated},
        )
        return user_view(user)

    view = await request.config_dict[DB].run(write)
    body: dict[str, Any] = {"user": view}
    if generated:
        body["password"] = password  # the only time anyone sees it
    return web.json_response(body, status=201)


async def _active_admins(session: AsyncSession) -> list[int]:
    # Locked (PostgreSQL) so two admins demoting each other at once cannot both pass.
    # (SQLite, which has no FOR UPDATE, runs one writer at a time anyway.)
    query = select(User.id).where(User.role == Role.ADMIN, User.active.is_(True))
    return list((await session.execute(query.order_by(User.id).with_for_update())).scalars())


async def change_user(request: web.Request) -> web.Response:
    admin = _admin(request)
    user_id = _path_id(request, "user")
    data = await read_json_object(request)
    unknown = sorted(set(data) - USER_FIELDS)
    if unknown:
        raise InvalidInput(f"only role, active and name can be changed, not {unknown[0]}")
    role = _role(data["role"]) if "role" in data else None
    active = data.get("active")
    if "active" in data and not isinstance(active, bool):
        raise InvalidInput("active must be true or false")
    name = _name(data["name"]) if "name" in data else None

    async def write(session: AsyncSession) -> dict[str, Any]:
        admins = await _active_admins(session)
        user = await session.get(User, user_id, with_for_update=True)
        if user is None:
            raise NotFound("user not found")
        before = {"role": user.role, "active": user.active, "name": user.name}
        stays_admin = (role or user.role) == Role.ADMIN and (
            user.active if active is None else active
        )
        if user.id in admins and not stays_admin and len(admins) <= 1:
            raise Conflict(
                "this is the last active admin: make someone else admin first",
                code="last_admin",
            )
        if role is not None:
            user.role = role
        if name is not None:
            user.name = name or user.email
        revoked = 0
        if active is not None:
            user.active = active
            if not active:
                revoked = await accounts.do_revoke_everything(session, user.id)
        await session.flush()
        after = {"role": user.role, "active": user.active, "name": user.name}
        changed = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
        where = _where(request)
        if "role" in changed:
            # Open sockets were authorised for the old role: they close and reconnect.
            emit(session, UserRoleChanged(actor=f"user:{admin.id}", user_id=user.id))
            await record(
                session, "user.role_changed", actor=admin, address=where, target_type="user",
                target_id=user.id, target_label=user.email, details={"role": changed["role"]},
            )  # fmt: skip
        if "active" in changed:
            action = "user.deactivated" if not user.active else "user.reactivated"
            await record(
                session, action, actor=admin, address=where, target_type="user",
                target_id=user.id, target_label=user.email, details={"tokens_revoked": revoked},
            )  # fmt: skip
        if "name" in changed:
            await record(
                session, "user.renamed", actor=admin, address=where, target_type="user",
                target_id=user.id, target_label=user.email, details={"name": changed["name"]},
            )  # fmt: skip
        return user_view(user)

    return web.json_response({"user": await request.config_dict[DB].run(write)})


async def reset_password(request: web.Request) -> web.Response:
    """A new one-time password (shown once); every session and token of the user ends."""
    admin = _admin(request)
    user_id = _path_id(request, "user")
    password = one_time_password()

    async def write(session: AsyncSession) -> None:
        user = await session.get(User, user_id, with_for_update=True)
        if user is None:
            raise NotFound("user not found")
        user.password_hash = await accounts.hash_password(password)
        revoked = await accounts.do_revoke_everything(session, user.id)
        await record(
            session, "user.password_reset", actor=admin, address=_where(request),
            target_type="user", target_id=user.id, target_label=user.email,
            details={"tokens_revoked": revoked},
        )  # fmt: skip

    await request.config_dict[DB].run(write)
    return web.json_response({"password": password})


# --- audit log ---------------------------------------------------------------------------


def _time(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name, "").strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be an ISO 8601 time", code="invalid_filter") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(f"{name} is out of range", code="invalid_filter") from None


def _short(request: web.Request, name: str) -> str:
    value = request.query.get(name, "").strip()
    if len(value) > MAX_QUERY or "\x00" in value:
        raise InvalidInput(f"{name} is at most {MAX_QUERY} characters", code="invalid_filter")
    return value


async def audit_log(request: web.Request) -> web.Response:
    _admin(request)
    cursor = request.query.get("cursor") or None
    before_id = None
    if cursor is not None:
        before_id = row_id_from(cursor)
        if before_id is None:
            raise InvalidInput("cursor is not one this API gave out", code="invalid_filter")
    limit = _limit(request)
    async with request.config_dict[DB].reading() as session:
        rows = await search_entries(
            session,
            q=_short(request, "q"),
            actor=_short(request, "actor"),
            action=_short(request, "action"),
            since=_time(request, "since"),
            until=_time(request, "until"),
            before_id=before_id,
            limit=limit + 1,
        )
    more = len(rows) > limit
    rows = rows[:limit]
    return web.json_response(
        {
            "entries": [entry_view(e) for e in rows],
            "next_cursor": str(rows[-1].id) if more and rows else None,
        }
    )


# --- knowledge base: preview, diff, revert -----------------------------------------------


async def preview(request: web.Request) -> web.Response:
    _admin(request)
    data = await read_json_object(request, limit=512 * 1024)
    source = data.get("answer_markdown", "")
    if not isinstance(source, str) or len(source) > MAX_ANSWER:
        raise InvalidInput(f"answer_markdown must be a string of at most {MAX_ANSWER} characters")
    return web.json_response({"html": render_answer(source)})


async def _version(session: AsyncSession, article_id: int, number: object) -> ArticleVersion:
    if isinstance(number, str) and number.isascii() and number.isdigit() and len(number) < 10:
        number = int(number)
    if not isinstance(number, int) or isinstance(number, bool) or not 0 < number < 2**31:
        raise InvalidInput("version must be a version number of this article")
    found = (
        await session.execute(
            select(ArticleVersion).where(
                ArticleVersion.article_id == article_id, ArticleVersion.version == number
            )
        )
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(f"article has no version {number}")
    return found


DIFF_FIELDS = ("question", "phrasings", "answer_markdown", "locale", "category", "tags", "status")


def _lines(version: ArticleVersion, field: str) -> list[str]:
    value = getattr(version, field)
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value).splitlines()


def version_diff(old: ArticleVersion, new: ArticleVersion) -> list[dict[str, Any]]:
    """Per field that differs, its unified diff as (op, text) lines: op is one of
    "-", "+", " " or "@" (a hunk header)."""
    fields = []
    for field in DIFF_FIELDS:
        a, b = _lines(old, field), _lines(new, field)
        if a == b:
            continue
        lines = []
        for line in difflib.unified_diff(a, b, lineterm="", n=2):
            if line.startswith(("---", "+++")):
                continue
            op = "@" if line.startswith("@@") else line[:1]
            lines.append({"op": op, "text": line if op == "@" else line[1:]})
        fields.append({"field": field, "lines": lines})
    return fields


async def diff(request: web.Request) -> web.Response:
    _admin(request)
    article_id = _path_id(request, "article")
    async with request.config_dict[DB].reading() as session:
        article = await get_article(session, article_id)
        new_number = request.query.get("to") or article.version
        new = await _version(session, article_id, new_number)
        old_raw = request.query.get("from") or max(new.version - 1, 1)
        old = await _version(session, article_id, old_raw)
    return web.json_response(
        {"from": old.version, "to": new.version, "fields": version_diff(old, new)}
    )


async def revert(request: web.Request) -> web.Response:
    """A new version whose content is that of an earlier one (history is never
    rewritten). The status stays: a published article serves the reverted text at once,
    unless `"as_draft": true` (then the earlier content becomes its pending draft)."""
    admin = _admin(request)
    article_id = _path_id(request, "article")
    data = await read_json_object(request)
    as_draft = data.get("as_draft", False)
    if not isinstance(as_draft, bool):
        raise InvalidInput("as_draft must be true or false")

    async def write(session: AsyncSession) -> dict[str, Any]:
        old = await _version(session, article_id, data.get("version"))
        content = {
            "question": old.question,
            "phrasings": list(old.phrasings),
            "answer_markdown": old.answer_markdown,
            "locale": old.locale,
            "category": old.category,
            "tags": list(old.tags),
        }
        article = await do_update_article(
            session,
            article_id,
            content,
            author_user_id=admin.id,
            change_note=f"reverted to version {old.version}",
            as_draft=as_draft,
        )
        drafted = as_draft and article.draft is not None
        new_version = article.draft_version if drafted else article.version
        await record(
            session, "kb.article.reverted", actor=admin, address=_where(request),
            target_type="article", target_id=article.id, target_label=article.key,
            details={"to_version": old.version, "new_version": new_version, "draft": drafted},
        )  # fmt: skip
        return article_detail(article)

    return web.json_response({"article": await request.config_dict[DB].run(write)})


# --- the bot: try it, and missed questions into phrasings ---------------------------------


async def try_bot(request: web.Request) -> web.Response:
    """What the serving bot would do with a message: the matched article, confidence and
    alternatives. Nothing is stored: no conversation, no customer, no bot reply."""
    _admin(request)
    data = await read_json_object(request)
    text = data.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TRY:
        raise InvalidInput(f"text must be 1 to {MAX_TRY} characters")
    raw_inbox = data.get("inbox_id")
    settings = BotSettings()
    if raw_inbox is not None:
        inbox_id = row_id_from(raw_inbox)
        if inbox_id is None:
            raise NotFound("inbox not found")
        async with request.config_dict[DB].reading() as session:
            _inbox, settings = await load_inbox_settings(session, inbox_id)
    runtime = request.config_dict[BOT_RUNTIME]
    try:
        async with asyncio.timeout(TRY_TIMEOUT):
            loaded = await runtime.current()
        prediction = await predict_within(loaded.model, text, TRY_TIMEOUT)
        articles = loaded.articles
        fingerprint: str | None = loaded.fingerprint
    except TimeoutError:
        prediction, articles, fingerprint = unavailable("no trained model yet"), {}, None
    turn = decide(
        prediction,
        text=text,
        memory=BotMemory(),
        customer=CustomerFacts(),
        settings=settings,
        # Rules name customers; a try has none, so only thresholds apply.
        articles=articles,
    )
    decision = turn.decision
    locale = turn.memory.locale or "en"

    def article_of(topic: str) -> dict[str, Any] | None:
        variants = articles.get(topic)
        if not variants:
            return None
        found = pick_variant(variants, locale)
        return {"id": found.article_id, "key": found.key, "question": found.question}

    matched = None
    if isinstance(decision, Answer):
        matched = {
            **(article_of(decision.topic) or {}),
            "answer_html": render_answer(decision.text),
        }
    ranking = [(label, conf) for label, conf in prediction.ranking if label in articles]
    alternatives = [
        {"topic": label, "confidence": round(conf, 4), "article": article_of(label)}
        for label, conf in ranking[:5]
    ]
    return web.json_response(
        {
            "decision": str(decision.kind),
            "reason": getattr(decision, "detail", None) or getattr(decision, "reason", None),
            "text": decision.text,
            "confidence": round(ranking[0][1], 4) if ranking else 0.0,
            "article": matched,
            "choices": [c.topic for c in decision.choices] if isinstance(decision, Clarify) else [],
            "alternatives": alternatives,
            "locale": locale,
            "model": fingerprint,
            "thresholds": {
                "confidence": settings.confidence,
                "margin": settings.margin,
                "clarify_gap": settings.clarify_gap,
            },
        }
    )


async def missed_to_phrasing(request: web.Request) -> web.Response:
    """Add a missed question's text to an article's phrasings and dismiss it."""
    admin = _admin(request)
    reply_id = _path_id(request, "missed question")
    data = await read_json_object(request)
    article_id = row_id_from(data.get("article_id"))
    if article_id is None:
        raise InvalidInput("article_id must name an article")

    async def write(session: AsyncSession) -> dict[str, Any]:
        reply = await session.get(BotReply, reply_id)
        if reply is None:
            raise NotFound("missed question not found")
        question = (
            await session.get(Message, reply.question_message_id)
            if reply.question_message_id is not None
            else None
        )
        text = (question.text if question is not None else "").strip()[:500]
        if not text:
            raise InvalidInput("the missed question has no text to add")
        article = await get_article(session, article_id)
        phrasings = [*article.phrasings]
        if text not in phrasings and text != article.question:
            phrasings.append(text)
        article = await do_update_article(
            session,
            article_id,
            {"phrasings": phrasings},
            author_user_id=admin.id,
            change_note="phrasing from a missed question",
        )
        if article.draft is not None and text not in article.draft["phrasings"]:
            # The draft changed the phrasings itself: add the phrasing there too, so
            # publishing the draft keeps it.
            article = await do_update_article(
                session,
                article_id,
                {"phrasings": [*article.draft["phrasings"], text]},
                author_user_id=admin.id,
                change_note="phrasing from a missed question",
                as_draft=True,
            )
        if reply.dismissed_at is None:
            reply.dismissed_at = utcnow()
            reply.dismissed_by_user_id = admin.id
        await record(
            session, "kb.article.phrasing_added", actor=admin, address=_where(request),
            target_type="article", target_id=article.id, target_label=article.key,
            details={"phrasing": text, "missed_question": reply_id},
        )  # fmt: skip
        return {"article_id": article.id, "version": article.version, "phrasings": phrasings}

    return web.json_response(await request.config_dict[DB].run(write))


def setup(app: web.Application) -> None:
    app.router.add_get("/users", users)
    app.router.add_post("/users", create_user)
    app.router.add_patch("/users/{id}", change_user)
    app.router.add_post("/users/{id}/password", reset_password)
    app.router.add_get("/audit", audit_log)
    app.router.add_post("/kb/preview", preview)
    app.router.add_get("/kb/articles/{id}/diff", diff)
    app.router.add_post("/kb/articles/{id}/revert", revert)
    app.router.add_post("/bot/try", try_bot)
    app.router.add_post("/bot/missed/{id}/phrasing", missed_to_phrasing)
    app.router.add_post("/inboxes/{id}/test", test_inbox)


def openapi_paths() -> dict[str, Any]:
    """This module's routes for the OpenAPI document (`web.openapi`)."""
    from web.openapi import _ID, _admin_only, _op

    obj: dict[str, Any] = {"type": "object"}

    def json_body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
        schema = {"type": "object", "properties": properties, "required": required}
        return {"application/json": {"schema": schema}}

    def query(name: str, description: str) -> dict[str, Any]:
        return {
            "name": name,
            "in": "query",
            "schema": {"type": "string"},
            "description": description,
        }

    user_write = {
        "email": {"type": "string"},
        "name": {"type": "string", "maxLength": 200},
        "role": {"enum": ["agent", "supervisor", "admin"]},
        "password": {"type": "string", "description": "omitted: a one-time password is returned"},
    }
    return {
        "/users": {
            "get": _admin_only(
                _op(
                    "Users by id with role, state and queues, a page at a time (admins)",
                    obj,
                    params=[
                        query("cursor", "next_cursor of the page before"),
                        query("limit", "1 to 200"),
                    ],
                )
            ),
            "post": _admin_only(
                _op(
                    "Create a user; without a password, the response carries a one-time one",
                    obj,
                    body=json_body(user_write, ["email"]),
                    status="201",
                )
            ),
        },
        "/users/{id}": {
            "patch": _admin_only(
                _op(
                    "Change role, active or name; deactivating ends every session and API"
                    " token; 409 last_admin if no active admin would be left",
                    obj,
                    params=[_ID],
                    body=json_body(
                        {
                            "role": user_write["role"],
                            "active": {"type": "boolean"},
                            "name": user_write["name"],
                        },
                        [],
                    ),
                )
            )
        },
        "/users/{id}/password": {
            "post": _admin_only(
                _op("A new one-time password; every session and token ends", obj, params=[_ID])
            )
        },
        "/audit": {
            "get": _admin_only(
                _op(
                    "The audit log, newest first, a page at a time (admins)",
                    obj,
                    params=[
                        query("q", "action, actor, target or address contains"),
                        query("actor", "actor email contains"),
                        query("action", "an action, or a prefix ending in a dot"),
                        query("since", "ISO 8601 time, inclusive"),
                        query("until", "ISO 8601 time, exclusive"),
                        query("cursor", "next_cursor of the page before"),
                        query("limit", "1 to 200"),
                    ],
                )
            )
        },
        "/kb/preview": {
            "post": _admin_only(
                _op(
                    "An answer's Markdown rendered by the server's safe renderer",
                    obj,
                    body=json_body({"answer_markdown": {"type": "string"}}, ["answer_markdown"]),
                )
            )
        },
        "/kb/articles/{id}/diff": {
            "get": _admin_only(
                _op(
                    "Line diff between two versions, per field (defaults: the latest and the"
                    " one before)",
                    obj,
                    params=[_ID, query("from", "version number"), query("to", "version number")],
                )
            )
        },
        "/kb/articles/{id}/revert": {
            "post": _admin_only(
                _op(
                    "Revert to an earlier version's content, saved as a new version"
                    " (with as_draft, a published article's pending draft)",
                    obj,
                    params=[_ID],
                    body=json_body(
                        {"version": {"type": "integer"}, "as_draft": {"type": "boolean"}},
                        ["version"],
                    ),
                )
            )
        },
        "/bot/try": {
            "post": _admin_only(
                _op(
                    "What the serving bot would answer: article, confidence, alternatives;"
                    " stores nothing",
                    obj,
                    body=json_body(
                        {
                            "text": {"type": "string", "maxLength": MAX_TRY},
                            "inbox_id": {"type": "integer"},
                        },
                        ["text"],
                    ),
                )
            )
        },
        "/inboxes/{id}/test": {
            "post": _admin_only(
                _op(
                    "Connection test: Telegram getMe, Slack auth.test, SMTP EHLO and IMAP"
                    " login; ok and what the channel said",
                    obj,
                    params=[_ID],
                )
            )
        },
        "/bot/missed/{id}/phrasing": {
            "post": _admin_only(
                _op(
                    "Add a missed question to an article's phrasings and dismiss it",
                    obj,
                    params=[_ID],
                    body=json_body({"article_id": {"type": "integer"}}, ["article_id"]),
                )
            )
        },
    }


# --- inboxes: connection test -------------------------------------------------------------

CONNECTION_TIMEOUT = 15.0


async def _check_telegram(setup: InboxSetup) -> tuple[bool, str]:
    from telegram import Bot
    from telegram.error import TelegramError

    from channels.telegram.adapter import DEFAULT_API_URL
    from channels.telegram.sending import scrub

    token = setup.credentials.get("bot_token", "")
    if not token:
        return False, "no bot token"
    api_url = str(setup.config.get("api_url") or DEFAULT_API_URL).rstrip("/")
    # A fresh client, so the answer is today's getMe, not the adapter's cached one.
    bot = Bot(token, base_url=f"{api_url}/bot", base_file_url=f"{api_url}/file/bot")
    try:
        await bot.initialize()  # getMe
        return True, f"getMe: @{bot.username}"
    except TelegramError as exc:
        return False, f"getMe failed: {scrub(exc.message, token)}"
    finally:
        with contextlib.suppress(Exception):
            await bot.shutdown()


async def _check_slack(setup: InboxSetup) -> tuple[bool, str]:
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web.async_client import AsyncWebClient

    from channels.slack.adapter import DEFAULT_API_URL

    token = setup.credentials.get("bot_token", "")
    if not token:
        return False, "no bot token"
    client = AsyncWebClient(
        token=token, base_url=str(setup.config.get("api_url") or DEFAULT_API_URL)
    )
    try:
        answer = await client.auth_test()
        return True, f"auth.test: {answer.get('user', '?')} in {answer.get('team', '?')}"
    except SlackApiError as exc:
        return False, f"auth.test failed: {exc.response.get('error', 'error')}"
    except aiohttp.ClientError as exc:
        return False, f"auth.test failed: {type(exc).__name__}"


async def _check_email(setup: InboxSetup, adapter: object) -> tuple[bool, str]:
    import aiosmtplib

    from channels.email.adapter import EmailAdapter
    from channels.email.imap import account_of, imap_session

    if not isinstance(adapter, EmailAdapter):
        return False, "no email adapter for this inbox"
    smtp = aiosmtplib.SMTP(
        hostname=adapter.smtp_host,
        port=adapter.smtp_port,
        use_tls=adapter.smtp_tls == "ssl",
        start_tls=adapter.smtp_tls == "starttls",
        tls_context=(
            ssl.create_default_context(cafile=adapter.smtp_cafile)
            if adapter.smtp_tls != "none"
            else None
        ),
        username=adapter.smtp_username,
        password=adapter.smtp_password if adapter.smtp_username else None,
        timeout=CONNECTION_TIMEOUT,
    )
    try:
        await smtp.connect()  # EHLO, STARTTLS and AUTH as configured
        parts = [f"SMTP {adapter.smtp_host}:{adapter.smtp_port} EHLO ok"]
        with contextlib.suppress(Exception):
            await smtp.quit()
    except (aiosmtplib.SMTPException, OSError) as exc:
        return False, f"SMTP {adapter.smtp_host}:{adapter.smtp_port} failed: {exc}"[:300]
    account = account_of(setup.id, setup.key, setup.config, setup.credentials)
    if account is None:
        parts.append("no IMAP mailbox configured")
        return True, "; ".join(parts)
    try:
        async with imap_session(account, CONNECTION_TIMEOUT):
            parts.append(f"IMAP {account.host}:{account.port} login ok")
    except Exception as exc:  # the IMAP library raises many kinds; each is a failed test
        return False, "; ".join([*parts, f"IMAP {account.host} failed: {exc}"[:300]])
    return True, "; ".join(parts)


async def connection_check(setup: InboxSetup, adapter: object) -> tuple[bool, str]:
    """Whether the inbox's channel answers with its configured credentials, and what it
    said (never a secret)."""
    if setup.kind == "telegram":
        return await _check_telegram(setup)
    if setup.kind == "slack":
        return await _check_slack(setup)
    if setup.kind == "email":
        return await _check_email(setup, adapter)
    if setup.kind == "webchat":
        return True, "web chat needs no connection: embed the snippet on your site"
    return False, f"no connection test for {setup.kind}"


async def test_inbox(request: web.Request) -> web.Response:
    admin = _admin(request)
    inbox_id = _path_id(request, "inbox")
    registry = request.config_dict[REGISTRY]
    setup = await registry.setup_of(inbox_id)
    if setup is None:
        raise NotFound("inbox not found")
    adapter = await registry.for_inbox(inbox_id, setup.kind)
    try:
        async with asyncio.timeout(CONNECTION_TIMEOUT * 2):
            ok, detail = await connection_check(setup, adapter)
    except TimeoutError:
        ok, detail = False, "no answer in time"

    async def write(session: AsyncSession) -> None:
        await record(
            session, "inbox.connection_tested", actor=admin, address=_where(request),
            target_type="inbox", target_id=inbox_id, target_label=setup.name,
            details={"ok": ok, "detail": detail},
        )  # fmt: skip

    await request.config_dict[DB].run(write)
    return web.json_response({"inbox_id": inbox_id, "kind": setup.kind, "ok": ok, "detail": detail})
