"""Telegram webhook bodies → channel events. Pure: no I/O, no bot.

We read updates with our own small mapping rather than PTB's `Update.de_json`: de_json
builds objects without checking types (a string chat id or a numeric text goes straight
through), and it parses every update type, so an odd shape in a type we only ignore
would fail the whole update. Here each field we use is read once and checked; anything
we do not use is never looked at.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from channels.base import (
    ChannelEvent,
    Delivery,
    Ignored,
    InboundFile,
    InboundMessage,
    MessageEdited,
    SenderUnreachable,
    WebhookRejected,
)

CHANNEL = "telegram"
# A real update nests about seven levels (update → message → reply → entities → user);
# anything far deeper is an attack on whoever walks it.
MAX_DEPTH = 32
# Stored in a BIGINT column; Telegram's ids are far below this.
MAX_UPDATE_ID = 2**63 - 1
# Chats a customer can write to the bot from; channels are broadcasts, not conversations.
CONVERSATION_CHATS = ("private", "group", "supergroup")


class Malformed(ValueError):
    """A field we need is missing or has the wrong type."""


def load_update(body: bytes) -> dict[str, Any]:
    """The update as a JSON object with a usable `update_id`, or WebhookRejected(400)."""
    if not body.strip():
        raise WebhookRejected(400, "empty body")
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise WebhookRejected(400, "body is not valid JSON") from None
    if not isinstance(data, dict):
        raise WebhookRejected(400, "an update must be a JSON object")
    if _too_deep(data, MAX_DEPTH):
        raise WebhookRejected(400, "body is nested too deeply")
    update_id = data.get("update_id")
    # type() rather than isinstance(): JSON `true` must not pass as update 1.
    if type(update_id) is not int or not 0 <= update_id <= MAX_UPDATE_ID:
        raise WebhookRejected(400, "update_id must be a non-negative 64-bit integer")
    return data


def delivery_of(data: dict[str, Any]) -> Delivery:
    update_id: int = data["update_id"]
    return Delivery(dedupe_key=f"update:{update_id}", order_key=update_id)


def parse_update(data: dict[str, Any], inbox_id: int) -> Sequence[ChannelEvent]:
    """What one update means for the hub; anything we do not handle is Ignored."""
    try:
        if "message" in data:
            return [_message(_obj(data, "message"), inbox_id)]
        if "edited_message" in data:
            return [_edit(_obj(data, "edited_message"), inbox_id)]
        if "my_chat_member" in data:
            return [_membership(_obj(data, "my_chat_member"), inbox_id)]
    except Malformed as exc:
        raise WebhookRejected(400, f"malformed update: {exc}") from None
    kinds = [key for key in data if key != "update_id"]
    kind = repr(kinds[0][:40]) if kinds else "nothing"
    return [Ignored(f"update type {kind} is not handled")]


# --- the three update types we handle ------------------------------------------------------


def _message(message: dict[str, Any], inbox_id: int) -> ChannelEvent:
    chat_id, chat_type = _chat(message)
    if chat_type not in CONVERSATION_CHATS:
        return Ignored(f"message in a {chat_type!r} chat")
    message_id = _int(message, "message_id")
    sender = _sender(message)
    if sender is None:
        return Ignored("message from a bot or without a sender")
    content = _content(message)
    if content is None:
        return Ignored(f"message without content we keep: {_keys(message)}")
    text, files = content
    return InboundMessage(
        channel=CHANNEL,
        inbox_id=inbox_id,
        sender_id=sender[0],
        external_id=f"{chat_id}:{message_id}",
        thread_key=f"chat:{chat_id}",
        text=text,
        sent_at=_time(message, "date"),
        sender_name=sender[1],
        files=files,
        wants_greeting=_is_start(_opt_str(message, "text")),
    )


def _edit(message: dict[str, Any], inbox_id: int) -> ChannelEvent:
    chat_id, chat_type = _chat(message)
    if chat_type not in CONVERSATION_CHATS:
        return Ignored(f"edit in a {chat_type!r} chat")
    message_id = _int(message, "message_id")
    if "location" in message:
        # A live location is "edited" every few seconds as it moves: not a revision.
        return Ignored("live location update")
    content = _content(message)
    if content is None:
        return Ignored(f"edit without content we keep: {_keys(message)}")
    return MessageEdited(
        inbox_id=inbox_id,
        external_id=f"{chat_id}:{message_id}",
        text=content[0],
        edited_at=_time(message, "edit_date") if "edit_date" in message else None,
    )


def _membership(change: dict[str, Any], inbox_id: int) -> ChannelEvent:
    _chat_id, chat_type = _chat(change)
    status = _opt_str(_obj(change, "new_chat_member"), "status")
    if chat_type == "private" and status == "kicked":
        # In a private chat "kicked" means the user blocked the bot.
        user_id = _int(_obj(change, "from"), "id")
        return SenderUnreachable(inbox_id, str(user_id), reason="blocked the bot")
    return Ignored(f"bot is now {status!r} in a {chat_type!r} chat")


# --- message content -----------------------------------------------------------------------


def _content(message: dict[str, Any]) -> tuple[str, tuple[InboundFile, ...]] | None:
    """The text to store and the files to download, or None for a service message."""
    text = _opt_str(message, "text")
    if text is not None:
        return text, ()
    caption = _opt_str(message, "caption") or ""
    if "photo" in message:
        photo = _largest(message, "photo")
        name = f"photo_{_opt_str(photo, 'file_unique_id') or 'telegram'}.jpg"
        return caption, (_file(photo, name, "image/jpeg"),)
    described = _described_media(message)
    if described is not None:
        label, files = described
        return (f"{label}\n{caption}" if caption else label), files
    if "document" in message:
        document = _obj(message, "document")
        name = _opt_str(document, "file_name") or "document"
        return caption, (_file(document, name, _opt_str(document, "mime_type")),)
    return None


def _described_media(message: dict[str, Any]) -> tuple[str, tuple[InboundFile, ...]] | None:
    """Media that reads as a placeholder line, with its file where one is worth keeping."""
    if "voice" in message:
        voice = _obj(message, "voice")
        return f"[voice message {_duration(voice)}]", (
            _file(voice, "voice.ogg", _opt_str(voice, "mime_type") or "audio/ogg"),
        )
    if "audio" in message:
        audio = _obj(message, "audio")
        title = " – ".join(
            part for part in (_opt_str(audio, "performer"), _opt_str(audio, "title")) if part
        )
        label = f"[audio {title} {_duration(audio)}]" if title else f"[audio {_duration(audio)}]"
        name = _opt_str(audio, "file_name") or "audio.mp3"
        return label, (_file(audio, name, _opt_str(audio, "mime_type")),)
    if "video_note" in message:
        note = _obj(message, "video_note")
        return f"[video message {_duration(note)}]", (_file(note, "video_note.mp4", "video/mp4"),)
    if "video" in message:
        video = _obj(message, "video")
        name = _opt_str(video, "file_name") or "video.mp4"
        return f"[video {_duration(video)}]", (_file(video, name, _opt_str(video, "mime_type")),)
    # An animation also carries a `document` copy for old clients: take it as animation.
    if "animation" in message:
        animation = _obj(message, "animation")
        name = _opt_str(animation, "file_name") or "animation.mp4"
        return "[animation]", (_file(animation, name, _opt_str(animation, "mime_type")),)
    if "sticker" in message:
        emoji = _opt_str(_obj(message, "sticker"), "emoji")
        return (f"[sticker {emoji}]" if emoji else "[sticker]"), ()
    if "venue" in message:
        venue = _obj(message, "venue")
        where = ", ".join(p for p in (_opt_str(venue, "title"), _opt_str(venue, "address")) if p)
        return f"[venue {where}] {_map_link(_obj(venue, 'location'))}", ()
    if "location" in message:
        location = _obj(message, "location")
        lat, lon = _coordinates(location)
        return f"[location {lat}, {lon}] {_map_link(location)}", ()
    if "contact" in message:
        contact = _obj(message, "contact")
        parts = (
            _opt_str(contact, "first_name"),
            _opt_str(contact, "last_name"),
            _opt_str(contact, "phone_number"),
        )
        return f"[contact {' '.join(p for p in parts if p)}]", ()
    if "dice" in message:
        dice = _obj(message, "dice")
        return f"[dice {_opt_str(dice, 'emoji') or ''} {_int(dice, 'value')}]", ()
    return None


def _file(obj: dict[str, Any], filename: str, content_type: str | None) -> InboundFile:
    return InboundFile(
        filename=filename,
        content_type=content_type,
        size=_opt_int(obj, "file_size"),
        ref=_str(obj, "file_id"),
    )


def _largest(message: dict[str, Any], key: str) -> dict[str, Any]:
    sizes = message.get(key)
    # Telegram lists a photo's sizes smallest first.
    if not isinstance(sizes, list) or not sizes or not isinstance(sizes[-1], dict):
        raise Malformed(key)
    largest: dict[str, Any] = sizes[-1]
    return largest


def _duration(media: dict[str, Any]) -> str:
    seconds = _opt_int(media, "duration") or 0
    return f"{seconds // 60}:{seconds % 60:02d}"


def _coordinates(location: dict[str, Any]) -> tuple[float, float]:
    return round(_number(location, "latitude"), 6), round(_number(location, "longitude"), 6)


def _map_link(location: dict[str, Any]) -> str:
    lat, lon = _coordinates(location)
    return f"https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=17/{lat}/{lon}"


def _is_start(text: str | None) -> bool:
    """`/start`, `/start <deep-link payload>` or, in groups, `/start@OurBot`."""
    if not text or not text.startswith("/start"):
        return False
    command = text.split(maxsplit=1)[0]
    return command.split("@", 1)[0] == "/start"


def _sender(message: dict[str, Any]) -> tuple[str, str | None] | None:
    """(sender id, display name). An anonymous group admin or a linked channel posts as
    `sender_chat` (its `from` is a placeholder bot shared by all of them)."""
    chat = _opt_obj(message, "sender_chat")
    if chat is not None:
        return str(_int(chat, "id")), _opt_str(chat, "title") or _opt_str(chat, "username")
    user = _opt_obj(message, "from")
    if user is None or user.get("is_bot") is True:
        return None
    names = (_opt_str(user, "first_name"), _opt_str(user, "last_name"))
    name = " ".join(n for n in names if n) or _opt_str(user, "username")
    return str(_int(user, "id")), name


def _chat(obj: dict[str, Any]) -> tuple[int, str | None]:
    chat = _obj(obj, "chat")
    return _int(chat, "id"), _opt_str(chat, "type")


def _keys(obj: dict[str, Any]) -> str:
    ordinary = {"message_id", "from", "chat", "date", "sender_chat", "message_thread_id"}
    return ", ".join(sorted(k[:40] for k in obj if k not in ordinary)[:8]) or "none"


# --- typed field access --------------------------------------------------------------------


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _too_deep(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _obj(parent: dict[str, Any], key: str) -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise Malformed(key)
    return value


def _opt_obj(parent: dict[str, Any], key: str) -> dict[str, Any] | None:
    return None if parent.get(key) is None else _obj(parent, key)


def _int(parent: dict[str, Any], key: str) -> int:
    value = parent.get(key)
    if type(value) is not int or abs(value) > MAX_UPDATE_ID:
        raise Malformed(key)
    return value


def _opt_int(parent: dict[str, Any], key: str) -> int | None:
    return None if parent.get(key) is None else _int(parent, key)


def _number(parent: dict[str, Any], key: str) -> float:
    value = parent.get(key)
    if (type(value) is float and math.isfinite(value)) or (
        type(value) is int and abs(value) <= MAX_UPDATE_ID
    ):
        return float(value)
    raise Malformed(key)


def _str(parent: dict[str, Any], key: str) -> str:
    value = parent.get(key)
    if not isinstance(value, str) or not value:
        raise Malformed(key)
    return value


def _opt_str(parent: dict[str, Any], key: str) -> str | None:
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Malformed(key)
    return value


def _time(parent: dict[str, Any], key: str) -> datetime:
    try:
        return datetime.fromtimestamp(_int(parent, key), UTC)
    except (OverflowError, OSError, ValueError):
        raise Malformed(key) from None
