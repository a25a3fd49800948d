"""Events API payloads into channel events: pure functions on the raw body.

One Slack thread is one conversation: the thread key is `channel:root ts`, where the root
is the message's `thread_ts`, or its own `ts` when it starts the thread. A direct
message's top level is the exception: people chat there without threads, so it is one
conversation per DM (`channel:` with no root) and our replies go to the top level too.
A message's own id is `channel:ts` (a `ts` is unique only within its channel), which is
also what our replies' receipts record, so an echo of our own message would dedupe
against them.

Only people's messages are customer messages. Our own echoes (our bot user or bot id,
learnt from auth.test or read from the payload's `authorizations`) and every other bot's
messages (any `bot_id`, subtype `bot_message`) are ignored, as are system subtypes
(`channel_join`, …) and other event types (`app_mention` duplicates the `message` event
we already get; reactions are not messages).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from channels.base import (
    ChannelEvent,
    Delivery,
    Ignored,
    InboundFile,
    InboundMessage,
    MessageDeleted,
    MessageEdited,
    RawInbound,
    WebhookRejected,
)
from channels.slack.mrkdwn import readable

KIND = "slack"
# Where the people are: DMs with the app, public and private channels, group DMs.
_CONVERSATION_TYPES = frozenset({"im", "channel", "group", "mpim"})
# Subtypes that are a person writing; everything else is a system notice or a bot.
_PERSON_SUBTYPES = frozenset({None, "file_share", "thread_broadcast", "me_message"})
_TS = re.compile(r"\d{1,12}(\.\d{1,9})?")
_MAX_ID = 255  # the dedupe and external-id columns


@dataclass(frozen=True)
class BotIdentity:
    """Who "we" are in the workspace, as auth.test says: our messages are not customers'."""

    user_id: str | None = None
    bot_id: str | None = None


def _bad(reason: str) -> WebhookRejected:
    return WebhookRejected(400, reason)


def load_envelope(raw: RawInbound) -> dict[str, Any]:
    """The JSON object Slack posted, or `WebhookRejected(400)` with a plain reason."""
    content_type = ""
    for name, value in raw.headers.items():
        if name.lower() == "content-type":
            content_type = value
    media_type, _, params = content_type.partition(";")
    charset = params.strip().lower().removeprefix("charset=").strip('"')
    if media_type.strip().lower() != "application/json" or charset not in ("", "utf-8"):
        raise _bad("Slack events are application/json")
    try:
        envelope = json.loads(raw.body)
    except (ValueError, RecursionError):
        raise _bad("body is not valid JSON") from None
    if not isinstance(envelope, dict):
        raise _bad("body must be a JSON object")
    kind = envelope.get("type")
    if not isinstance(kind, str) or not kind:
        raise _bad("payload has no type")
    if kind == "event_callback":
        event_id, event = envelope.get("event_id"), envelope.get("event")
        if not isinstance(event_id, str) or not 0 < len(event_id) <= _MAX_ID - 6:
            raise _bad("event_callback without a usable event_id")
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise _bad("event_callback without an event")
        authorizations = envelope.get("authorizations", [])
        if not isinstance(authorizations, list) or not all(
            isinstance(a, dict) for a in authorizations
        ):
            raise _bad("malformed authorizations")
    elif kind == "url_verification" and not isinstance(envelope.get("challenge"), str):
        raise _bad("url_verification without a challenge")
    return envelope


def delivery_of(envelope: Mapping[str, Any]) -> Delivery:
    """How the delivery is filed: by `event_id`, which Slack keeps across its retries."""
    if envelope["type"] == "event_callback":
        return Delivery(dedupe_key=f"event:{envelope['event_id']}")
    # url_verification and app_rate_limited carry no event; they are never filed.
    return Delivery(dedupe_key=f"{envelope['type']}"[:_MAX_ID])


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _when(ts: Any) -> datetime | None:
    if not isinstance(ts, str) or not _TS.fullmatch(ts):
        return None
    return datetime.fromtimestamp(float(ts), UTC)


def _ours(envelope: Mapping[str, Any], us: BotIdentity) -> tuple[set[str], set[str]]:
    """Our bot user ids and bot ids: auth.test's, plus the bot users the payload names."""
    users = {u for u in [us.user_id] if u}
    users.update(
        a["user_id"]
        for a in envelope.get("authorizations", [])
        if a.get("is_bot") and isinstance(a.get("user_id"), str)
    )
    return users, {b for b in [us.bot_id] if b}


def _from_a_bot(message: Mapping[str, Any], users: set[str], bots: set[str]) -> str | None:
    """Why this message is not a person's, or None when it is."""
    bot_id, user = message.get("bot_id"), message.get("user")
    if (bot_id is not None and bot_id in bots) or (user is not None and user in users):
        return "our own message"
    if bot_id is not None or message.get("subtype") == "bot_message":
        return "another bot's message"
    return None


def _files(event: Mapping[str, Any]) -> list[InboundFile]:
    files = []
    for item in event.get("files") or []:
        if not isinstance(item, dict) or not _str(item.get("url_private")):
            continue  # e.g. "hidden_by_limit" files on free workspaces carry no URL
        size = item.get("size")
        files.append(
            InboundFile(
                filename=_str(item.get("name")) or _str(item.get("title")) or "file",
                content_type=_str(item.get("mimetype")),
                size=size if isinstance(size, int) and size >= 0 else None,
                ref=item["url_private"],
            )
        )
    return files


def _sender_name(event: Mapping[str, Any]) -> str | None:
    profile = event.get("user_profile")
    if not isinstance(profile, dict):
        return None
    return _str(profile.get("display_name")) or _str(profile.get("real_name"))


def _edited(
    inbox_id: int, event: Mapping[str, Any], users: set[str], bots: set[str]
) -> ChannelEvent:
    message, channel = event.get("message"), _str(event.get("channel"))
    if not isinstance(message, dict) or channel is None or not _str(message.get("ts")):
        return Ignored("message_changed without the message")
    if (why := _from_a_bot(message, users, bots)) is not None:
        return Ignored(f"edit of {why}")
    edited = message.get("edited")
    edited_ts = edited.get("ts") if isinstance(edited, dict) else None
    return MessageEdited(
        inbox_id=inbox_id,
        external_id=f"{channel}:{message['ts']}",
        text=readable(message.get("text") or ""),
        edited_at=_when(edited_ts) or _when(event.get("event_ts")),
        raw=dict(event),
    )


def _deleted(inbox_id: int, event: Mapping[str, Any]) -> ChannelEvent:
    previous = event.get("previous_message")
    deleted_ts = _str(event.get("deleted_ts"))
    if deleted_ts is None and isinstance(previous, dict):
        deleted_ts = _str(previous.get("ts"))
    channel = _str(event.get("channel"))
    if channel is None or deleted_ts is None:
        return Ignored("message_deleted without the message")
    return MessageDeleted(
        inbox_id=inbox_id,
        external_id=f"{channel}:{deleted_ts}",
        deleted_at=_when(event.get("event_ts")) or _when(event.get("ts")),
    )


def _message(
    inbox_id: int, event: Mapping[str, Any], users: set[str], bots: set[str]
) -> ChannelEvent:
    if (why := _from_a_bot(event, users, bots)) is not None:
        return Ignored(why)
    subtype = event.get("subtype")
    if subtype not in _PERSON_SUBTYPES:
        return Ignored(f"message subtype {subtype}")
    if event.get("channel_type", "channel") not in _CONVERSATION_TYPES:
        return Ignored(f"message in a {event.get('channel_type')}")
    channel, ts, user = _str(event.get("channel")), _str(event.get("ts")), _str(event.get("user"))
    if channel is None or ts is None or user is None:
        return Ignored("message without channel, ts or user")
    root = _str(event.get("thread_ts"))
    if root is None and event.get("channel_type") != "im":
        root = ts
    return InboundMessage(
        channel=KIND,
        inbox_id=inbox_id,
        sender_id=user,
        external_id=f"{channel}:{ts}"[:_MAX_ID],
        thread_key=f"{channel}:{root or ''}"[:_MAX_ID],
        text=readable(event.get("text") or "") if isinstance(event.get("text"), str) else "",
        sent_at=_when(ts),
        sender_name=_sender_name(event),
        raw=dict(event),
        files=tuple(_files(event)),
    )


def parse_envelope(
    envelope: Mapping[str, Any], inbox_id: int, us: BotIdentity
) -> Sequence[ChannelEvent]:
    """The channel events of one checked envelope (see `load_envelope`)."""
    if envelope["type"] != "event_callback":
        return [Ignored(f"{envelope['type']} payload")]
    event = envelope["event"]
    if event["type"] != "message":
        return [Ignored(f"{event['type']} event")]
    users, bots = _ours(envelope, us)
    subtype = event.get("subtype")
    if subtype == "message_changed":
        return [_edited(inbox_id, event, users, bots)]
    if subtype == "message_deleted":
        return [_deleted(inbox_id, event)]
    return [_message(inbox_id, event, users, bots)]
