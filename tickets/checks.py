"""What a ticket's fields may hold, checked before anything is written.

Each `check_*` takes what a caller sent (any JSON value) and returns the value to store
or raises `InvalidInput` naming the field, so a bad request stores nothing at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conversations.text import check_message_text
from switchboard.errors import InvalidInput
from tickets.lifecycle import parse_status
from tickets.models import TicketPriority, TicketStatus

MAX_SUBJECT = 500
MAX_TAG = 50
MAX_TAGS = 20
MAX_REASON = 500
# Letters and digits of any script, and - _ . : / — no spaces, quotes, angle brackets or
# controls, so a tag is safe in a URL query and in any page that shows it.
_TAG = re.compile(r"^[\w\-.:/]+$")
# Any C0/C1 control or a lone surrogate: refused in short single-line fields.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def check_subject(raw: object) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise InvalidInput("subject must be a string or null", code="invalid_subject")
    if _CONTROL.search(raw):
        raise InvalidInput("subject must not contain control characters", code="invalid_subject")
    value = raw.strip()
    if len(value) > MAX_SUBJECT:
        raise InvalidInput(
            f"subject is longer than {MAX_SUBJECT} characters", code="invalid_subject"
        )
    return value or None


def subject_from(text: str, limit: int = 120) -> str | None:
    """A subject made from text we did not check as one (an email subject, a message):
    controls dropped, whitespace folded, shortened with an ellipsis."""
    flat = " ".join(_CONTROL.sub(" ", text).split())
    return (flat if len(flat) <= limit else flat[: limit - 1] + "…") or None


def check_priority(raw: object) -> TicketPriority:
    if not isinstance(raw, str) or raw not in TicketPriority.__members__.values():
        allowed = ", ".join(p.value for p in TicketPriority)
        raise InvalidInput(f"priority must be one of {allowed}", code="invalid_priority")
    return TicketPriority(raw)


def check_tag(raw: object) -> str:
    if not isinstance(raw, str):
        raise InvalidInput("each tag must be a string", code="invalid_tags")
    tag = raw.strip().lower()
    if not tag or len(tag) > MAX_TAG or not _TAG.match(tag):
        raise InvalidInput(
            f"a tag is 1 to {MAX_TAG} letters, digits or - _ . : / (got {raw[:60]!r})",
            code="invalid_tags",
        )
    return tag


def check_tags(raw: object) -> tuple[str, ...]:
    """Distinct tags, lowercased, sorted."""
    if not isinstance(raw, list):
        raise InvalidInput("tags must be a list of strings", code="invalid_tags")
    # Counted before the work per item: a huge list is refused at once.
    if len(raw) > MAX_TAGS:
        raise InvalidInput(f"at most {MAX_TAGS} tags", code="invalid_tags")
    return tuple(sorted({check_tag(item) for item in raw}))


def check_reason(raw: object) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise InvalidInput("reason must be a string", code="invalid_reason")
    value = _CONTROL.sub("", raw).strip()
    return value[:MAX_REASON] or None


def check_note_body(raw: object) -> str:
    return check_message_text(raw)


def check_row_id(raw: object, name: str) -> int:
    """A positive 32-bit id given in a body (booleans and strings are not ids)."""
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 < raw <= 2**31 - 1:
        raise InvalidInput(f"{name} must be a positive whole number", code=f"invalid_{name}")
    return raw


_UNSET: Any = object()


@dataclass(frozen=True)
class TicketChanges:
    """What an update asks for; a field left at `UNSET` is not touched."""

    status: TicketStatus | None = None
    priority: TicketPriority | None = None
    tags: tuple[str, ...] | None = None
    subject: str | None = _UNSET
    assignee_user_id: int | None = _UNSET


UNSET = _UNSET
# What a caller may set through the API; anything else in a body (id, customer_id,
# queue_id, merged_into_id, timestamps…) is ignored, never applied.
EDITABLE = ("status", "priority", "tags", "subject", "assignee_id")


def check_changes(data: Mapping[str, Any]) -> TicketChanges:
    """The editable fields of a request body, every one checked; others are ignored."""
    assignee: int | None = UNSET
    if "assignee_id" in data:
        raw = data["assignee_id"]
        assignee = None if raw is None else check_row_id(raw, "assignee_id")
    return TicketChanges(
        status=parse_status(data["status"]) if "status" in data else None,
        priority=check_priority(data["priority"]) if "priority" in data else None,
        tags=check_tags(data["tags"]) if "tags" in data else None,
        subject=check_subject(data["subject"]) if "subject" in data else UNSET,
        assignee_user_id=assignee,
    )
