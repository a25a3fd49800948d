"""The web-chat edge: loader script, iframe, visitor session, websocket, uploads.

The socket is the live channel. Every message carries its conversation `seq`; on
(re)connect the widget sends `resume` with the last seq it has and the server replays
what is newer, then streams. Sends carry a `client_msg_id` that dedupes retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import orjson
from aiohttp import WSCloseCode, WSMsgType, web
from sqlalchemy import select

from bot.service import choices_by_message
from channels.base import InboundAttachment, InboundMessage, WebhookRejected
from channels.webchat.frames import (
    FrameError,
    Ping,
    Read,
    Resume,
    SendMessage,
    TypingFrame,
    parse_client_frame,
)
from channels.webchat.tokens import IDENTIFIED_PREFIX, Visitor
from conversations import attachments as attachment_store
from conversations.events import MessageCreated, Typing, conversation_topic
from conversations.models import AuthorKind, ChannelKind, Conversation, Direction, Inbox
from conversations.service import (
    IntakeResult,
    KnownThread,
    get_inbox_by_public_key,
    list_messages,
)
from customers.identify import check_visitor_claims, identity_secret
from customers.service import do_resolve_sender, is_resolved
from switchboard.appkeys import BUS, DB, INTAKE, LIMITER, REGISTRY, SETTINGS, VISITOR_TOKENS
from switchboard.bus import Resync
from switchboard.errors import DomainError, InvalidInput, NotFound, TooManyRequests
from web.bodies import read_json_object
from web.clientip import client_address
from web.origin import origin_allowed
from web.sockets import SOCKETS
from web.uploads import attachment_response, read_upload

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
HEARTBEAT_SECONDS = 25
LIMIT_WINDOW = 10.0  # seconds; the limits themselves are settings (widget_*_limit)
UPLOAD_LIMIT = (20, 600)  # files per visitor per 10 minutes: one visitor cannot fill storage
TYPING_INTERVAL = 1.0


def _widget_message(message: dict[str, Any]) -> dict[str, Any]:
    """What a customer sees of a message: no internal ids of agents, no delivery errors."""
    return {
        "id": message["id"],
        "seq": message["seq"],
        "direction": message["direction"],
        "author_kind": message["author_kind"],
        "text": message["text"],
        "created_at": message["created_at"],
        "attachments": message["attachments"],
        # A bot's "did you mean" options, shown as buttons (bot.service.choices_by_message).
        "choices": message.get("choices", []),
    }


async def _inbox_for(request: web.Request, public_key: str) -> Inbox:
    async with request.config_dict[DB].reading() as session:
        inbox = await get_inbox_by_public_key(session, public_key)
    if inbox is None or inbox.kind != ChannelKind.WEBCHAT:
        raise NotFound("unknown inbox")
    return inbox


async def loader(request: web.Request) -> web.StreamResponse:
    response = web.FileResponse(STATIC / "widget" / "loader.js")
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


async def frame(request: web.Request) -> web.StreamResponse:
    inbox = await _inbox_for(request, request.query.get("inbox", "")[:64])
    response = aiohttp_jinja2.render_template(
        "widget_frame.html", request, {"inbox": inbox, "public_key": inbox.public_key}
    )
    # The iframe is meant to be embedded on customers' sites: allow any ancestor, and
    # nothing else beyond our own origin.
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
        "connect-src 'self'; frame-ancestors *; base-uri 'none'; object-src 'none'"
    )
    return response


async def session(request: web.Request) -> web.StreamResponse:
    """Issue (or renew) the visitor token. The only place a token is ever returned."""
    data = await read_json_object(request, limit=4096)
    public_key = data.get("inbox")
    if not isinstance(public_key, str):
        raise InvalidInput("inbox is required")
    inbox = await _inbox_for(request, public_key[:64])
    tokens = request.config_dict[VISITOR_TOKENS]
    visitor_id = await _identified_visitor_id(request, inbox, data)
    previous = data.get("token")
    if visitor_id is None and isinstance(previous, str) and previous:
        try:
            known = tokens.verify(previous)
        except WebhookRejected:
            known = None  # a forged or stale token starts a new anonymous visitor
        # An identified visitor stays identified only while the site says so again: after
        # the site's logout the next person at this browser starts anonymous.
        if known is not None and known.inbox_key == inbox.public_key and not known.identified:
            visitor_id = known.visitor_id
    visitor, token = tokens.issue(inbox.public_key, visitor_id)
    return web.json_response(
        {"token": token, "visitor_id": visitor.visitor_id, "inbox": {"name": inbox.name}},
        headers={"Cache-Control": "no-store"},
    )


async def _identified_visitor_id(
    request: web.Request, inbox: Inbox, data: dict[str, Any]
) -> str | None:
    """`user:<id>` when the site signed who this visitor is, else None (anonymous).

    The identity is resolved now, not at the first message: a signed email links the
    visitor to the customer who has it verified on any channel before they write."""
    if data.get("user_id") is None and data.get("email") is None:
        return None
    secret = identity_secret(inbox, request.config_dict[REGISTRY].box)
    claims = check_visitor_claims(secret, data)
    if claims is None:
        return None
    visitor_id = IDENTIFIED_PREFIX + claims.user_id
    db = request.config_dict[DB]
    async with db.reading() as s:
        known = await is_resolved(
            s,
            inbox_id=inbox.id,
            channel=ChannelKind.WEBCHAT,
            external_id=visitor_id,
            verified_email=claims.email,
        )
    if not known:  # the first visit, or a new email: otherwise no write per page load
        await db.run(
            lambda s: do_resolve_sender(
                s,
                inbox_id=inbox.id,
                channel=ChannelKind.WEBCHAT,
                external_id=visitor_id,
                display_name=claims.name,
                verified_email=claims.email,
                verified=True,
            )
        )
    return visitor_id


def _visitor(request: web.Request, token: str) -> Visitor:
    return request.config_dict[VISITOR_TOKENS].verify(token)


async def upload(request: web.Request) -> web.StreamResponse:
    visitor = _visitor(request, request.headers.get("X-Visitor-Token", ""))
    inbox = await _inbox_for(request, visitor.inbox_key)
    limiter = request.config_dict[LIMITER]
    if wait := await limiter.hit(f"upload:{inbox.id}:{visitor.visitor_id}", *UPLOAD_LIMIT):
        raise TooManyRequests("too many files in a short time; try again later", retry_after=wait)
    settings = request.config_dict[SETTINGS]
    filename, data = await read_upload(request, settings.upload_max_bytes)
    checked = attachment_store.check_upload(filename, data, settings.upload_max_bytes)

    async def store(s: Any) -> dict[str, Any]:
        sender = await do_resolve_sender(
            s,
            inbox_id=inbox.id,
            channel=ChannelKind.WEBCHAT,
            external_id=visitor.visitor_id,
            display_name=None,
        )
        attachment = await attachment_store.do_store_attachment(
            s, inbox_id=inbox.id, upload=checked, data=data, customer_id=sender.customer_id
        )
        return {
            "attachment_id": attachment.id,
            "filename": attachment.filename,
            "content_type": attachment.content_type,
            "size": attachment.size,
        }

    return web.json_response(await request.config_dict[DB].run(store), status=201)


async def attachment(request: web.Request) -> web.StreamResponse:
    visitor = _visitor(request, request.headers.get("X-Visitor-Token", ""))
    inbox = await _inbox_for(request, visitor.inbox_key)
    async with request.config_dict[DB].reading() as s:
        found = await attachment_store.load_attachment(s, request.match_info["id"][:64])
        conversation = (
            await s.execute(
                select(Conversation.id).where(
                    Conversation.inbox_id == inbox.id,
                    Conversation.thread_key == visitor.visitor_id,
                )
            )
        ).scalar_one_or_none()
    if found is None or conversation is None or found[0].conversation_id != conversation:
        raise NotFound("attachment not found")
    return attachment_response(*found)


class WidgetSocket:
    """One visitor's live connection."""

    def __init__(
        self, request: web.Request, ws: web.WebSocketResponse, inbox: Inbox, visitor: Visitor
    ):
        self.request = request
        self.ws = ws
        self.inbox = inbox
        self.visitor = visitor
        self.db = request.config_dict[DB]
        self.bus = request.config_dict[BUS]
        self.intake = request.config_dict[INTAKE]
        self.settings = request.config_dict[SETTINGS]
        self.cursor = 0  # highest seq sent to this socket
        self.conversation_id: int | None = None
        # Once known, intake skips resolving the sender and finding the conversation.
        self.thread: KnownThread | None = None
        self.pump: asyncio.Task[None] | None = None
        self.flush_lock = asyncio.Lock()
        # Clear while a send of this socket is being stored: the pump then holds a
        # customer message's event until the send's ack is out, since that ack shows the
        # message when it is this one (`acknowledge`), saving the separate echo.
        self.not_sending = asyncio.Event()
        self.not_sending.set()
        self.window_start = time.monotonic()
        self.window_frames = 0
        self.window_sends = 0
        self.last_typing = 0.0

    async def find_conversation(self) -> None:
        async with self.db.reading() as s:
            self.conversation_id = (
                await s.execute(
                    select(Conversation.id).where(
                        Conversation.inbox_id == self.inbox.id,
                        Conversation.thread_key == self.visitor.visitor_id,
                    )
                )
            ).scalar_one_or_none()

    async def send(self, payload: dict[str, Any]) -> None:
        if not self.ws.closed:
            # orjson writes UTF-8 bytes straight into a text frame (no str round trip).
            await self.ws.send_frame(orjson.dumps(payload), WSMsgType.TEXT)

    async def error(self, code: str, message: str, client_msg_id: str | None = None) -> None:
        frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
        if client_msg_id:
            frame["client_msg_id"] = client_msg_id
        await self.send(frame)

    async def flush(self) -> None:
        """Send every customer-visible message newer than the cursor, in seq order."""
        if self.conversation_id is None:
            return
        async with self.flush_lock:
            while True:
                # Shielded: a socket closing mid-read must not cancel a database call
                # half-way (the driver would have to tear its connection down).
                batch = await asyncio.shield(self._read_after(self.conversation_id, self.cursor))
                for message in batch:
                    await self.send({"type": "message", "message": _widget_message(message)})
                    self.cursor = max(self.cursor, message["seq"])
                if len(batch) < 200:
                    return

    async def _read_after(self, conversation_id: int, cursor: int) -> list[dict[str, Any]]:
        async with self.db.reading() as s:
            messages = await list_messages(
                s, conversation_id, after_seq=cursor, include_private=False
            )
            bot_ids = [m["id"] for m in messages if m["author_kind"] == AuthorKind.BOT]
            choices = await choices_by_message(s, bot_ids)
        for message in messages:
            if message["id"] in choices:
                message["choices"] = choices[message["id"]]
        return messages

    def start_pump(self) -> None:
        if self.pump is None and self.conversation_id is not None:
            self.pump = asyncio.create_task(self._pump(self.conversation_id))

    async def _pump(self, conversation_id: int) -> None:
        async with self.bus.subscribe([conversation_topic(conversation_id)]) as sub:
            await self.flush()
            async for event in sub:
                if isinstance(event, Typing):
                    if event.side == "agent":
                        await self.send(
                            {"type": "typing", "name": event.name, "typing": event.typing}
                        )
                elif isinstance(event, MessageCreated):
                    if event.message["direction"] == Direction.INBOUND:
                        await self.not_sending.wait()
                    await self.deliver(event.message)
                elif isinstance(event, Resync):
                    await self.flush()

    async def deliver(self, message: dict[str, Any]) -> None:
        """Send a just-created message straight from its event when it is the next one
        this socket expects; anything else (a gap, a note) goes through the database."""
        async with self.flush_lock:
            if message["seq"] <= self.cursor:
                return  # already shown by an earlier flush
            # A bot's message may carry choices, which live beside it in the database.
            direct = not message["private"] and message["author_kind"] != AuthorKind.BOT
            if message["seq"] == self.cursor + 1 and direct:
                await self.send({"type": "message", "message": _widget_message(message)})
                self.cursor = message["seq"]
                return
        await self.flush()

    def count_frame(self, is_send: bool) -> str | None:
        now = time.monotonic()
        if now - self.window_start >= LIMIT_WINDOW:
            self.window_start, self.window_frames, self.window_sends = now, 0, 0
        self.window_frames += 1
        self.window_sends += int(is_send)
        if self.window_frames > self.settings.widget_frame_limit:
            return "flood"
        if is_send and self.window_sends > self.settings.widget_send_limit:
            return "slow_down"
        return None

    async def handle(self, raw: str) -> None:
        try:
            frame = parse_client_frame(raw)
        except FrameError as exc:
            if self.count_frame(False) == "flood":
                await self.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"flood")
                return
            await self.error(exc.code, exc.message, exc.client_msg_id)
            return
        verdict = self.count_frame(isinstance(frame, SendMessage))
        if verdict == "flood":
            await self.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"flood")
            return
        if isinstance(frame, Resume):
            self.cursor = frame.last_seq
            await self.flush()
        elif isinstance(frame, SendMessage):
            if verdict == "slow_down":
                await self.error(
                    "rate_limited", "too many messages; wait a moment", frame.client_msg_id
                )
                return
            await self.take_message(frame)
        elif isinstance(frame, TypingFrame):
            await self.typing(frame.typing)
        elif isinstance(frame, Read):
            return None
        elif isinstance(frame, Ping):
            await self.send({"type": "pong"})

    async def reject_binary(self) -> None:
        # Counted like any other frame: a binary flood must hit the same 1008 close.
        if self.count_frame(False) == "flood":
            await self.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"flood")
            return
        await self.error("bad_frame", "binary frames are not accepted")

    async def take_message(self, frame: SendMessage) -> None:
        inbound = InboundMessage(
            channel=ChannelKind.WEBCHAT,
            inbox_id=self.inbox.id,
            sender_id=self.visitor.visitor_id,
            # Scoped by visitor: nobody can collide with another visitor's ids.
            external_id=f"{self.visitor.visitor_id}:{frame.client_msg_id}",
            thread_key=self.visitor.visitor_id,
            text=frame.text,  # type: ignore[arg-type]  # checked by do_intake
            attachments=[InboundAttachment(a) for a in frame.attachment_ids],
        )
        self.not_sending.clear()
        try:
            result = await self.intake.submit(inbound, self.thread)
        except DomainError as exc:
            await self.error(exc.code, exc.message, frame.client_msg_id)
            return
        except Exception:
            # Nothing was acknowledged, so the widget keeps the message and retries it.
            log.exception("widget message not stored")
            await self.error(
                "not_stored", "message not stored; please try again", frame.client_msg_id
            )
            return
        else:
            await self.acknowledge(frame.client_msg_id, result)
        finally:
            self.not_sending.set()
        if result.customer_id is not None:
            self.thread = KnownThread(result.conversation_id, result.customer_id)
        if self.conversation_id is None:
            self.conversation_id = result.conversation_id
            self.start_pump()
        # Otherwise the ack showed the message, or the pump shows it when its event comes.

    async def acknowledge(self, client_msg_id: str, result: IntakeResult) -> None:
        """Answer a stored send. When the message is the next one this socket expects,
        the ack carries it (one frame instead of an ack and then the message's echo when
        its event comes back); its event is then skipped as already shown. Otherwise, on
        a gap or before the socket follows its conversation, the message reaches the
        widget the usual way, in seq order after what it has not seen yet."""
        ack: dict[str, Any] = {
            "type": "ack",
            "client_msg_id": client_msg_id,
            "seq": result.seq,
            "message_id": result.message_id,
            "duplicate": result.duplicate,
        }
        async with self.flush_lock:
            if (
                result.message is not None
                and self.pump is not None
                and self.conversation_id == result.conversation_id
                and result.seq == self.cursor + 1
            ):
                ack["message"] = _widget_message(result.message)
                self.cursor = result.seq
            await self.send(ack)

    async def typing(self, typing: bool) -> None:
        now = time.monotonic()
        if self.conversation_id is None or (typing and now - self.last_typing < TYPING_INTERVAL):
            return
        self.last_typing = now if typing else 0.0
        await self.bus.publish(
            Typing(
                actor=f"visitor:{self.visitor.visitor_id}",
                conversation_id=self.conversation_id,
                inbox_id=self.inbox.id,
                side="customer",
                name="",
                typing=typing,
            )
        )

    async def close(self) -> None:
        if self.pump is not None:
            self.pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.pump


async def websocket(request: web.Request) -> web.StreamResponse:
    if not origin_allowed(request):
        raise web.HTTPForbidden(text="foreign origin")
    visitor = _visitor(request, request.query.get("token", ""))
    inbox = await _inbox_for(request, visitor.inbox_key)
    address = client_address(request)
    sockets = request.config_dict[SOCKETS]
    settings = request.config_dict[SETTINGS]
    sockets.check_room(address, settings.widget_sockets_per_address)
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, max_msg_size=settings.ws_max_msg_bytes)
    await ws.prepare(request)
    socket = WidgetSocket(request, ws, inbox, visitor)
    try:
        async with sockets.holding(address, ws):
            await socket.find_conversation()
            await socket.send({"type": "hello", "visitor_id": visitor.visitor_id})
            socket.start_pump()
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await socket.handle(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await socket.reject_binary()
                elif msg.type == WSMsgType.ERROR:
                    log.info("widget socket closed with error: %s", ws.exception())
                    break
    finally:
        await socket.close()
    return ws


def setup(app: web.Application) -> None:
    app.router.add_get("/widget.js", loader)
    app.router.add_get("/widget/frame", frame)
    app.router.add_post("/widget/session", session, name="widget-session")
    app.router.add_post("/widget/upload", upload, name="widget-upload")
    app.router.add_get("/widget/attachments/{id}", attachment)
    app.router.add_get("/widget/ws", websocket)
