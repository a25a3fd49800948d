"""The agent inbox: the page, and the live socket that feeds it.

The socket re-checks access for every event it forwards (`web.access`: the ticket's or
the conversation's visibility, memberships read afresh), so a change in what an agent
may see (removed from a queue, a ticket moved or reassigned) applies to an already-open
socket at once. The read is made once per event per process (`AudienceCache`: the
event's audience, shared by every socket of the process), not once per socket. Ending
all of a user's sessions (logout everywhere, deactivation) closes every socket of
theirs, including one opened with an API token.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import aiohttp_jinja2
from aiohttp import WSCloseCode, WSMsgType, web

from bot.events import BotStateChanged
from conversations.events import INBOX_TOPIC, MessageCreated, MessageUpdated, Typing
from conversations.mentions import MentionCreated
from routing.events import SUPERVISOR_TOPIC, AgentPresenceChanged
from routing.presence import agent_connected
from switchboard import accounts
from switchboard.appkeys import BUS, DB, REGISTRY
from switchboard.bus import Resync
from switchboard.errors import DomainError
from switchboard.events import SessionsEnded, UserRoleChanged, user_topic
from switchboard.models import Role, User
from switchboard.tx import Database
from tickets.events import TicketEvent
from web.access import (
    READER_ROLES,
    access_conversation_by_id,
    access_staff,
    conversation_audience,
    may_see_inbox,
    ticket_view_audience,
)
from web.auth import TOKEN_KEY, csrf_token, current_user
from web.collision import ConversationPresence, TypingRelay, Viewing
from web.origin import origin_allowed
from web.sockets import SOCKETS, FrameBudget

log = logging.getLogger(__name__)
AGENT_WS_MAX_MSG = 16 * 1024
AGENT_FRAME_LIMIT = 60  # frames per AGENT_FRAME_SECONDS from one agent socket
AGENT_FRAME_SECONDS = 10.0
TYPING_REPEAT_SECONDS = 2.0


class TypingGate:
    """Which of an agent page's typing frames are news: a change of state or
    conversation, or "still typing" after `TYPING_REPEAT_SECONDS`. Repeats are dropped
    before they cost a database read or a publish."""

    def __init__(self) -> None:
        self._last: tuple[int, bool] | None = None
        self._at = 0.0

    def wanted(self, conversation_id: int, typing: bool) -> bool:
        now = time.monotonic()
        if self._last == (conversation_id, typing) and (
            not typing or now - self._at < TYPING_REPEAT_SECONDS
        ):
            return False
        self._last, self._at = (conversation_id, typing), now
        return True


ROLE_CHANGED = 4001  # close code: reconnect, the role this socket was opened with changed


async def home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/inbox" if current_user(request) else "/login")


async def inbox_page(request: web.Request) -> web.StreamResponse:
    user = current_user(request)
    if user is None:
        raise web.HTTPFound("/login?next=/inbox")
    return aiohttp_jinja2.render_template(
        "inbox.html", request, {"user": user, "csrf_token": csrf_token(request)}
    )


def _frame_for(event: object) -> dict[str, Any] | None:
    if isinstance(event, Resync):
        return {"type": "resync"}
    if isinstance(
        event,
        MessageCreated
        | MessageUpdated
        | Typing
        | TicketEvent
        | BotStateChanged
        | ConversationPresence
        | MentionCreated
        | AgentPresenceChanged,
    ):
        data = {k: v for k, v in event.__dict__.items() if k != "actor"}
        return {"type": event.type_name, "data": data}
    return None


class Audience(Protocol):
    def admits(self, user: User) -> bool: ...


AUDIENCE_SECONDS = 5.0  # an event's audience is kept this long (sockets read it at once)
AUDIENCE_LIMIT = 2048  # and at most this many events' audiences


class AudienceCache:
    """Each live event's audience, read once per process and shared by all its sockets.

    Both buses hand the same event object to every local subscriber, so the object is
    the key (by identity: an entry holds the event, so its id cannot be reused while the
    entry lives). The first socket starts the read; the others await the same task,
    which a socket closing meanwhile does not cancel. Entries go after
    `AUDIENCE_SECONDS` or beyond `AUDIENCE_LIMIT`, oldest first. Never shared across
    events: the next event reads memberships afresh.
    """

    def __init__(
        self,
        seconds: float = AUDIENCE_SECONDS,
        limit: int = AUDIENCE_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._seconds = seconds
        self._limit = limit
        self._clock = clock
        self._entries: OrderedDict[int, tuple[object, float, asyncio.Task[Audience | None]]] = (
            OrderedDict()
        )

    def __len__(self) -> int:
        return len(self._entries)

    async def audience(
        self, event: object, read: Callable[[], Awaitable[Audience | None]]
    ) -> Audience | None:
        now = self._clock()
        entries = self._entries
        while entries:
            _event, at, _task = next(iter(entries.values()))
            if now - at < self._seconds and len(entries) < self._limit:
                break
            entries.popitem(last=False)
        entry = entries.get(id(event))
        if entry is None or entry[0] is not event:
            entry = (event, now, asyncio.ensure_future(read()))
            entries[id(event)] = entry
        task = entry[2]
        if task.done():
            return task.result()
        return await asyncio.shield(task)


async def _may_forward(db: Database, audiences: AudienceCache, user: User, event: object) -> bool:
    """Whether this agent could GET what the event shows, checked now (not at connect):
    the event's audience, read once for all of this process's sockets."""
    inbox_id = getattr(event, "inbox_id", None)
    if inbox_id is not None and not may_see_inbox(user, inbox_id):
        return False
    if isinstance(event, AgentPresenceChanged):
        # The same rule as GET /api/v1/supervisor/overview.
        return user.role in READER_ROLES
    if user.role in READER_ROLES:
        return True  # they see every ticket and conversation: nothing to read
    audience: Audience | None
    if isinstance(event, TicketEvent):
        # The same rule as GET /api/v1/tickets/{id} (`may_see_ticket_view`).
        view = event.ticket
        audience = await audiences.audience(event, lambda: ticket_view_audience(db, view))
    else:
        conversation_id = getattr(event, "conversation_id", None)
        if not isinstance(conversation_id, int):
            return True
        # The same rule as GET /api/v1/conversations/{id} (`may_see_conversation`).
        cid = conversation_id
        audience = await audiences.audience(event, lambda: conversation_audience(db, cid))
    # None: the database could not be read; not forwarded (the page re-reads what it
    # shows from the API, which checks again).
    return audience is not None and audience.admits(user)


async def inbox_socket(request: web.Request) -> web.StreamResponse:
    if not origin_allowed(request):
        raise web.HTTPForbidden(text="foreign origin")
    user = access_staff(request)
    sockets = request.config_dict[SOCKETS]
    ws = web.WebSocketResponse(heartbeat=25, max_msg_size=AGENT_WS_MAX_MSG)
    # The socket is the agent's presence for routing (online while one is open, offline
    # a grace period after the last one closes), on whatever process it lands. Recorded
    # before the handshake completes: a write after it delayed the bus subscription, so
    # events in the first moments of a connection (a customer's message) were missed.
    async with agent_connected(request.config_dict[DB], user.id):
        await ws.prepare(request)
        async with sockets.holding(f"user:{user.id}", ws):
            return await _serve_agent(request, ws, user)


async def _serve_agent(
    request: web.Request, ws: web.WebSocketResponse, user: User
) -> web.WebSocketResponse:
    bus = request.config_dict[BUS]
    db = request.config_dict[DB]
    audiences = request.config_dict[AUDIENCES]

    session_token = request.get(TOKEN_KEY)
    session_digest = accounts.token_digest(session_token) if session_token else None

    async def forward() -> None:
        topics = [INBOX_TOPIC, user_topic(user.id)]
        if user.role in (Role.SUPERVISOR, Role.ADMIN):
            topics.append(SUPERVISOR_TOPIC)  # agents' presence, for the dashboard
        async with bus.subscribe(topics) as sub:
            async for event in sub:
                if isinstance(event, UserRoleChanged):
                    # Authorised for the old role: the client reconnects under the new one.
                    await ws.close(code=ROLE_CHANGED, message=b"role changed")
                    return
                if isinstance(event, SessionsEnded):
                    # Every session ended (logout everywhere, deactivation): stop whatever
                    # this socket rides on. One session ended: stop if it is this one.
                    if event.token_hash is None or event.token_hash == session_digest:
                        await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"session ended")
                        return
                    continue
                if isinstance(event, ConversationPresence) and not viewing.concerns(event):
                    continue  # presence matters only to pages showing that conversation
                if not await _may_forward(db, audiences, user, event):
                    continue
                frame = _frame_for(event)
                if frame is not None and not ws.closed:
                    await ws.send_json(frame)

    async def typing(conversation_id: object, is_typing: bool) -> None:
        if not isinstance(conversation_id, int) or isinstance(conversation_id, bool):
            await ws.send_json({"type": "error", "code": "bad_frame", "message": "conversation_id"})
            return
        if not typing_gate.wanted(conversation_id, is_typing):
            return  # nothing new to tell anyone: no database read, no publish
        try:
            async with db.reading() as session:
                conversation = await access_conversation_by_id(session, user, conversation_id)
        except DomainError as exc:
            await ws.send_json({"type": "error", "code": exc.code, "message": exc.message})
            return
        await bus.publish(
            Typing(
                actor=f"agent:{user.id}",
                conversation_id=conversation.id,
                inbox_id=conversation.inbox_id,
                side="agent",
                name=user.name,
                typing=is_typing,
            )
        )
        if is_typing:
            relay.agent_typing(conversation)  # Telegram: "typing…" in the customer's chat

    viewing = Viewing(db, bus, user)
    relay = TypingRelay(request.config_dict[REGISTRY])
    typing_gate = TypingGate()
    # Every frame may cost a database read and a publish that fans out to every agent
    # socket and the customer's widget: a page sends a few a second at most.
    budget = FrameBudget(AGENT_FRAME_LIMIT, AGENT_FRAME_SECONDS)
    task = asyncio.create_task(forward())
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                if msg.type == WSMsgType.ERROR:
                    break
                continue
            if not budget.allow():
                if budget.flooding:
                    await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"flood")
                    break
                await ws.send_json({"type": "error", "code": "too_many", "message": "slow down"})
                continue
            try:
                data = json.loads(msg.data)
            except (ValueError, RecursionError):
                await ws.send_json({"type": "error", "code": "bad_json", "message": "not JSON"})
                continue
            if not isinstance(data, dict):
                await ws.send_json(
                    {"type": "error", "code": "bad_frame", "message": "not an object"}
                )
            elif data.get("type") == "ping":
                await ws.send_json({"type": "pong"})
            elif data.get("type") == "typing":
                await typing(data.get("conversation_id"), bool(data.get("typing")))
            elif data.get("type") == "viewing":
                await viewing.handle(ws, data)  # collision detection (web.collision)
            else:
                await ws.send_json({"type": "error", "code": "unknown_type", "message": "unknown"})
    finally:
        with contextlib.suppress(Exception):
            await viewing.leave()  # "X is viewing" goes away when the page does
        with contextlib.suppress(Exception):
            await relay.aclose()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return ws


AUDIENCES = web.AppKey("inbox_audiences", AudienceCache)


def setup(app: web.Application) -> None:
    app[AUDIENCES] = AudienceCache()
    app.router.add_get("/", home)
    app.router.add_get("/inbox", inbox_page)
    app.router.add_get("/inbox/ws", inbox_socket)
