"""What message text may contain, checked once at every edge."""

from __future__ import annotations

import re

from switchboard.errors import InvalidInput

MAX_TEXT_CHARS = 10_000
# C0 controls other than tab, newline and carriage return carry no meaning in a chat and
# PostgreSQL refuses NUL outright; dropping them keeps the rest of the message.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_message_text(text: object, *, allow_empty: bool = False) -> str:
    """Return the text to store, or raise `InvalidInput` saying what is wrong."""
    if not isinstance(text, str):
        raise InvalidInput("text must be a string", code="invalid_text")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates (legal in JSON escapes, illegal in UTF-8) cannot be stored exactly.
        raise InvalidInput("text is not valid Unicode", code="invalid_text") from None
    cleaned = _CONTROL.sub("", text)
    if len(cleaned) > MAX_TEXT_CHARS:
        raise InvalidInput(f"text is longer than {MAX_TEXT_CHARS} characters", code="text_too_long")
    if not allow_empty and not cleaned.strip():
        raise InvalidInput("text is empty", code="empty_text")
    return cleaned


def preview(text: str, limit: int = 140) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
