"""REST routes for the bot under /api/v1: hand a conversation back to the bot and read
the bot's state and explanations (staff who may see the conversation), read an inbox's
bot thresholds and rules (supervisors and admins) and change them (admins), list and
dismiss missed questions (admins). Every check is a `web.access` one."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.inbox_settings import do_update_settings, load_inbox_settings, settings_view
from bot.missed import do_dismiss_missed, missed_questions
from bot.service import conversation_bot_view, do_hand_back
from switchboard.appkeys import DB
from switchboard.audit import record
from switchboard.errors import InvalidInput, NotFound
from switchboard.models import User
from web.access import (
    MAX_ROW_ID,
    access_admin,
    access_conversation_by_id,
    access_reader,
    access_staff,
    visible_inbox_ids,
)
from web.bodies import read_json_object
from web.clientip import client_address

MAX_LIMIT = 500


def _staff(request: web.Request) -> User:
    return access_staff(request)


def _admin(request: web.Request) -> User:
    return access_admin(request, "the bot's settings")


def _row_id(request: web.Request, what: str) -> int:
    raw = request.match_info["id"]
    # isascii: str.isdigit() also accepts "²" and "١".
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10 or not 0 < int(raw) <= MAX_ROW_ID:
        raise NotFound(f"{what} not found")
    return int(raw)


async def conversation_bot(request: web.Request) -> web.Response:
    """The bot's mode, hand-off reason and guesses, and why each bot message was sent."""
    user = _staff(request)
    conversation_id = _row_id(request, "conversation")
    async with request.config_dict[DB].reading() as session:
        await access_conversation_by_id(session, user, conversation_id)
        view = await conversation_bot_view(session, conversation_id)
    return web.json_response({"bot": view})


async def hand_back(request: web.Request) -> web.Response:
    user = _staff(request)
    conversation_id = _row_id(request, "conversation")

    async def write(session: AsyncSession) -> dict[str, Any]:
        await access_conversation_by_id(session, user, conversation_id)
        return await do_hand_back(session, conversation_id, user_id=user.id)

    return web.json_response({"bot": await request.config_dict[DB].run(write)})


async def inbox_settings(request: web.Request) -> web.Response:
    access_reader(request, "the bot's settings")
    inbox_id = _row_id(request, "inbox")
    async with request.config_dict[DB].reading() as session:
        inbox, settings = await load_inbox_settings(session, inbox_id)
    return web.json_response({"settings": settings_view(inbox_id, settings, inbox.bot_enabled)})


async def change_inbox_settings(request: web.Request) -> web.Response:
    user = _admin(request)
    inbox_id = _row_id(request, "inbox")
    data = await read_json_object(request)

    async def write(session: AsyncSession) -> dict[str, Any]:
        view = await do_update_settings(session, inbox_id, data, user_id=user.id)
        await record(
            session, "bot.settings_changed", actor=user, address=client_address(request),
            target_type="inbox", target_id=inbox_id, details=view,
        )  # fmt: skip
        return view

    return web.json_response({"settings": await request.config_dict[DB].run(write)})


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", "100")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 4 or not 0 < int(raw) <= MAX_LIMIT:
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


async def missed(request: web.Request) -> web.Response:
    user = _admin(request)
    limit = _limit(request)
    async with request.config_dict[DB].reading() as session:
        rows = await missed_questions(session, inbox_ids=visible_inbox_ids(user), limit=limit)
    return web.json_response({"missed": rows})


async def dismiss_missed(request: web.Request) -> web.Response:
    user = _admin(request)
    reply_id = _row_id(request, "missed question")

    async def write(session: AsyncSession) -> None:
        await do_dismiss_missed(
            session, reply_id, user_id=user.id, inbox_ids=visible_inbox_ids(user)
        )
        await record(
            session, "bot.missed_dismissed", actor=user, address=client_address(request),
            target_type="missed_question", target_id=reply_id,
        )  # fmt: skip

    await request.config_dict[DB].run(write)
    return web.json_response({"ok": True})


def setup(app: web.Application) -> None:
    app.router.add_get("/conversations/{id}/bot", conversation_bot)
    app.router.add_post("/conversations/{id}/bot/hand-back", hand_back)
    app.router.add_get("/inboxes/{id}/bot", inbox_settings)
    app.router.add_patch("/inboxes/{id}/bot", change_inbox_settings)
    app.router.add_get("/bot/missed", missed)
    app.router.add_post("/bot/missed/{id}/dismiss", dismiss_missed)
