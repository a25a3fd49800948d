"""The widget websocket's frames, parsed from untrusted JSON into typed values."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

MAX_SEQ = 2**31 - 1
_CLIENT_MSG_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_ATTACHMENT_ID = re.compile(r"^att_[A-Za-z0-9_-]{10,40}$")


class FrameError(ValueError):
    def __init__(self, code: str, message: str, client_msg_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.client_msg_id = client_msg_id


@dataclass(frozen=True)
class Resume:
    last_seq: int


@dataclass(frozen=True)
class SendMessage:
    client_msg_id: str
    text: object  # checked by conversations.text at intake
    attachment_ids: tuple[str, ...]


@dataclass(frozen=True)
class TypingFrame:
    typing: bool


@dataclass(frozen=True)
class Read:
    last_read_seq: int


@dataclass(frozen=True)
class Ping:
    pass


Frame = Resume | SendMessage | TypingFrame | Read | Ping


def _seq(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEQ:
        raise FrameError("bad_frame", f"{name} must be a whole number from 0 to {MAX_SEQ}")
    return value


def parse_client_frame(raw: str) -> Frame:
    """One frame from the widget; `FrameError` says what is wrong with it."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise FrameError("bad_json", "frame is not valid JSON") from None
    if not isinstance(data, dict):
        raise FrameError("bad_frame", "frame must be a JSON object")
    kind = data.get("type")
    if kind == "resume":
        return Resume(_seq(data.get("last_seq", 0), "last_seq"))
    if kind == "message":
        client_msg_id = data.get("client_msg_id")
        if not isinstance(client_msg_id, str) or not _CLIENT_MSG_ID.match(client_msg_id):
            raise FrameError(
                "bad_frame", "client_msg_id must be 8-64 characters of A-Z a-z 0-9 _ -"
            )
        attachments = data.get("attachments", [])
        if not isinstance(attachments, list) or not all(
            isinstance(a, str) and _ATTACHMENT_ID.match(a) for a in attachments
        ):
            raise FrameError(
                "bad_frame", "attachments must be a list of attachment ids", client_msg_id
            )
        return SendMessage(client_msg_id, data.get("text", ""), tuple(attachments))
    if kind == "typing":
        return TypingFrame(bool(data.get("typing")))
    if kind == "read":
        return Read(_seq(data.get("last_read_seq", 0), "last_read_seq"))
    if kind == "ping":
        return Ping()
    raise FrameError("unknown_type", "unknown frame type")
