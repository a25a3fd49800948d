"""Helpers for the knowledge-base tests: staff with API tokens, an article to start from."""

from __future__ import annotations

from typing import Any

from tests.security.support import bearer, staff_token

HOURS: dict[str, Any] = {
    "key": "opening_hours",
    "question": "When are you open?",
    "phrasings": ["opening hours", "what time do you open", "are you open on sunday"],
    "answer_markdown": "We are open **9:00-18:00**, Monday to Friday.",
    "locale": "en",
    "category": "store",
    "tags": ["hours"],
}

__all__ = ["bearer", "staff_token"]
