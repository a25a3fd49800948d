"""REST API under /api/v1. Bearer tokens or the browser session; the same access rules."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.service import conversation_bot_state
from conversations import attachments as attachment_store
from conversations.inbox_list import do_mark_read_by
from conversations.models import AuthorKind
from conversations.service import (
    conversation_view,
    do_mark_read,
    do_reply,
    list_conversations,
    list_messages,
    message_view,
)
from switchboard.appkeys import DB, SETTINGS
from switchboard.errors import InvalidInput, NotFound
from switchboard.inboxes import list_inboxes
from web import (
    admin_api,
    bot_api,
    canned_api,
    conversation_api,
    csat,
    customers_api,
    inbox_api,
    kb_api,
    preferences,
    routing_api,
    sla_api,
    supervisor_api,
    tickets_api,
)
from web.access import (
    MAX_ROW_ID,
    access_attachment_by_id,
    access_conversation_by_id,
    access_reader,
    access_staff,
    may_see_inbox,
    visible_conversations,
    visible_inbox_ids,
)
from web.bodies import read_json_object
from web.preferences import preferences_view
from web.uploads import attachment_response, read_upload


def _int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number") from None
    if not lo <= value <= hi:
        raise InvalidInput(f"{name} must be between {lo} and {hi}")
    return value


def _conversation_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    # isascii: str.isdigit() also accepts "²" (int() then raises) and "١" (int() says 1).
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10 or int(raw) > MAX_ROW_ID:
        raise NotFound("conversation not found")
    return int(raw)


async def me(request: web.Request) -> web.Response:
    user = access_staff(request)
    return web.json_response(
        {
            "id": user.id,
            "email": user.email,
            "name": user.name,
            "role": user.role,
            **preferences_view(user),
        }
    )


async def conversations(request: web.Request) -> web.Response:
    user = access_staff(request)
    limit = _int_param(request, "limit", 100, 1, 500)
    async with request.config_dict[DB].reading() as session:
        rows = await list_conversations(
            session,
            inbox_ids=visible_inbox_ids(user),
            visible=visible_conversations(user),
            limit=limit,
        )
    return web.json_response({"conversations": rows})


async def conversation(request: web.Request) -> web.Response:
    user = access_staff(request)
    async with request.config_dict[DB].reading() as session:
        found = await access_conversation_by_id(session, user, _conversation_id(request))
        # The agent sees why the bot handed off and what it guessed, beside the thread.
        bot = await conversation_bot_state(session, found)
        return web.json_response({"conversation": {**conversation_view(found), "bot": bot}})


async def messages(request: web.Request) -> web.Response:
    user = access_staff(request)
    after = _int_param(request, "after_seq", 0, 0, 2**31 - 1)
    limit = _int_param(request, "limit", 200, 1, 500)
    async with request.config_dict[DB].reading() as session:
        found = await access_conversation_by_id(session, user, _conversation_id(request))
        rows = await list_messages(
            session, found.id, after_seq=after, limit=limit, include_private=True
        )
    return web.json_response({"messages": rows})


async def reply(request: web.Request) -> web.Response:
    user = access_staff(request)
    conversation_id = _conversation_id(request)
    data = await read_json_object(request)
    private = data.get("private", False)
    if not isinstance(private, bool):
        raise InvalidInput("private must be true or false")
    attachment_ids = data.get("attachments", [])
    if not isinstance(attachment_ids, list) or not all(isinstance(a, str) for a in attachment_ids):
        raise InvalidInput("attachments must be a list of attachment ids")

    async def write(session: Any) -> dict[str, Any]:
        await access_conversation_by_id(session, user, conversation_id)
        message = await do_reply(
            session,
            conversation_id=conversation_id,
            text=data.get("text", ""),
            author_kind=AuthorKind.AGENT,
            author_user_id=user.id,
            private=private,
            attachment_ids=attachment_ids,
        )
        return message_view(message)

    message = await request.config_dict[DB].run(write)
    return web.json_response({"message": message}, status=201)


async def mark_read(request: web.Request) -> web.Response:
    user = access_staff(request)
    conversation_id = _conversation_id(request)

    async def write(session: Any) -> None:
        await access_conversation_by_id(session, user, conversation_id)
        await do_mark_read(session, conversation_id)
        await do_mark_read_by(session, user.id, conversation_id)  # the agent's own unread

    await request.config_dict[DB].run(write)
    return web.json_response({"ok": True})


async def upload(request: web.Request) -> web.Response:
    user = access_staff(request)
    settings = request.config_dict[SETTINGS]
    inbox_id = _int_param(request, "inbox_id", 0, 1, 2**31 - 1)
    if not may_see_inbox(user, inbox_id):
        raise NotFound("inbox not found")
    filename, data = await read_upload(request, settings.upload_max_bytes)
    checked = attachment_store.check_upload(filename, data, settings.upload_max_bytes)

    async def store(session: Any) -> dict[str, Any]:
        attachment = await attachment_store.do_store_attachment(
            session, inbox_id=inbox_id, upload=checked, data=data, user_id=user.id
        )
        return {"attachment_id": attachment.id, "filename": attachment.filename}

    return web.json_response(await request.config_dict[DB].run(store), status=201)


async def attachment(request: web.Request) -> web.StreamResponse:
    user = access_staff(request)
    async with request.config_dict[DB].reading() as session:
        found = await access_attachment_by_id(session, user, request.match_info["id"])
    return attachment_response(*found)


async def inboxes(request: web.Request) -> web.Response:
    """Every inbox with the URL its channel must call: admins set channels up,
    supervisors read."""
    access_reader(request, "inbox settings")
    async with request.config_dict[DB].reading() as session:
        rows = await list_inboxes(session, request.config_dict[SETTINGS].public_url)
    return web.json_response({"inboxes": rows})


async def openapi(request: web.Request) -> web.Response:
    from web.openapi import document

    return web.json_response(document(request.config_dict[SETTINGS].public_url))


def create_api_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/me", me)
    app.router.add_get("/inboxes", inboxes)
    app.router.add_get("/conversations", conversations)
    app.router.add_get("/conversations/{id}", conversation)
    app.router.add_get("/conversations/{id}/messages", messages)
    app.router.add_post("/conversations/{id}/messages", reply)
    app.router.add_post("/conversations/{id}/read", mark_read)
    app.router.add_post("/uploads", upload)
    app.router.add_get("/attachments/{id}", attachment)
    customers_api.setup(app)
    kb_api.setup(app)
    bot_api.setup(app)
    tickets_api.setup(app)
    sla_api.setup(app)
    routing_api.setup(app)
    csat.setup_api(app)
    inbox_api.setup(app)
    preferences.setup_api(app)
    admin_api.setup(app)
    canned_api.setup(app)
    conversation_api.setup(app)
    supervisor_api.setup(app)
    return app
