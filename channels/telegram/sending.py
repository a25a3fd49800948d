"""How one stored reply becomes Telegram messages, and what the Bot API's errors mean.

A reply is one or more *parts*: text longer than Telegram's 4096-character limit is split,
and each file is a message of its own (the reply's text rides along as the first file's
caption when it fits). Errors are sorted by what we know about the send: Telegram refused
it (DeliveryFailed: retry later, or never), it never left (DeliveryFailed: retry), or it
may have been delivered (OutcomeUnknown: the outbox asks an agent instead of repeating).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import httpx
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from channels.base import DeliveryFailed, OutboundFile

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
# sendPhoto takes these up to 10 MB and recompresses them; anything else (GIF, SVG, a
# huge PNG) goes as a document, which Telegram delivers byte for byte.
PHOTO_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
PHOTO_MAX_BYTES = 10 * 1024 * 1024
# Errors from httpx that mean the request never reached Telegram.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class OutcomeUnknown(Exception):
    """The request may have reached Telegram (a read timeout, a dropped connection).

    Deliberately not a DeliveryFailed: Telegram has no idempotency key, so a retry could
    show the customer the reply twice. The outbox marks the row unconfirmed for an agent
    to check, which is the lesser evil."""


@dataclass(frozen=True)
class Part:
    """One Telegram message: a text, or a file with an optional caption."""

    text: str | None = None
    file: OutboundFile | None = None

    @property
    def as_photo(self) -> bool:
        f = self.file
        return f is not None and f.content_type in PHOTO_TYPES and len(f.data) <= PHOTO_MAX_BYTES


def plan(text: str, files: Sequence[OutboundFile]) -> list[Part]:
    if files and text.strip() and utf16_len(text) <= CAPTION_LIMIT:
        return [Part(text, files[0]), *(Part(None, f) for f in files[1:])]
    parts = [Part(chunk) for chunk in split_text(text, TEXT_LIMIT)] if text.strip() else []
    return parts + [Part(None, f) for f in files]


def utf16_len(text: str) -> int:
    """Telegram counts message length in UTF-16 code units (an emoji can be two)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int) -> list[str]:
    """Chunks of at most `limit` UTF-16 units, cut at a line break or space if one is
    reasonably near the end."""
    chunks: list[str] = []
    rest = text
    while utf16_len(rest) > limit:
        fits = _fitting_prefix(rest, limit)
        cut = max(rest.rfind("\n", 0, fits), rest.rfind(" ", 0, fits))
        if cut > fits // 2:
            chunks.append(rest[:cut])
            rest = rest[cut + 1 :]
        else:
            chunks.append(rest[:fits])
            rest = rest[fits:]
    chunks.append(rest)
    return chunks


def _fitting_prefix(text: str, limit: int) -> int:
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def retry_seconds(exc: RetryAfter) -> float:
    # PTB 22 returns an int with a deprecation warning unless PTB_TIMEDELTA is set, then
    # a timedelta; accept both without the noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def failure(exc: TelegramError, token: str) -> Exception:
    """The outbox's view of a Bot API error: DeliveryFailed, or OutcomeUnknown."""
    reason = scrub(exc.message, token)
    if isinstance(exc, RetryAfter):
        seconds = retry_seconds(exc)
        return DeliveryFailed(
            f"Telegram flood control: retry after {seconds:g} s", retry_after=seconds
        )
    if isinstance(exc, Forbidden):
        # "bot was blocked by the user", "user is deactivated", "bot was kicked".
        return DeliveryFailed(f"Telegram refused: {reason}", recipient_unreachable=True)
    if isinstance(exc, ChatMigrated):
        return DeliveryFailed(
            f"the group became supergroup {exc.new_chat_id}; the customer must write again",
            permanent=True,
        )
    if isinstance(exc, BadRequest):
        return DeliveryFailed(f"Telegram refused: {reason}", permanent=True)
    if isinstance(exc, InvalidToken):
        # PTB's own message repeats the token. Retryable: an admin can fix the inbox.
        return DeliveryFailed("Telegram rejected the bot token")
    if isinstance(exc, NetworkError):
        cause = exc.__cause__
        if cause is None and not isinstance(exc, TimedOut):
            return DeliveryFailed(f"Telegram error: {reason}")  # it answered, e.g. a 5xx
        if isinstance(cause, _NOT_SENT):
            return DeliveryFailed(f"Telegram not reachable: {reason}")
        what = type(cause).__name__ if cause is not None else "timed out"
        return OutcomeUnknown(f"no answer from Telegram ({what}): {reason}")
    return OutcomeUnknown(f"unexpected answer from Telegram: {reason}")


def scrub(text: str, token: str) -> str:
    """Error texts end up in logs and on the outbox row; the bot token must not."""
    return text.replace(token, "<bot token>") if token else text
