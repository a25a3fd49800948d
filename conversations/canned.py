"""Canned replies: admins keep them, agents insert them with the customer's details filled.

Placeholders are `{{customer.name}}`-style names looked up in a flat table of strings
(`placeholder_values`); an unknown name is left as written so the agent sees it, and
nothing in a body is ever evaluated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.assist_models import CannedReply
from conversations.text import check_message_text
from switchboard.db import utcnow
from switchboard.errors import Conflict, InvalidInput, NotFound

SHORTCUT = re.compile(r"[a-z0-9][a-z0-9_-]{0,49}")
PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+(?:\.[a-z_]+)?)\s*\}\}")
MAX_TITLE = 200
MAX_CANNED = 1000
FIELDS = frozenset({"shortcut", "title", "body"})


def check_canned_fields(data: Mapping[str, Any], *, creating: bool) -> dict[str, str]:
    """The fields of a canned reply from a request body, each checked; nothing else read."""
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0][:40]!r}", code="unknown_field")
    fields: dict[str, str] = {}
    if "shortcut" in data or creating:
        shortcut = data.get("shortcut")
        if not isinstance(shortcut, str) or not SHORTCUT.fullmatch(shortcut.strip().lower()):
            raise InvalidInput(
                "shortcut must be 1-50 letters, digits, '-' or '_'", code="invalid_shortcut"
            )
        fields["shortcut"] = shortcut.strip().lower()
    if "title" in data or creating:
        title = data.get("title")
        if not isinstance(title, str) or not title.strip() or len(title) > MAX_TITLE:
            raise InvalidInput(f"title must be 1-{MAX_TITLE} characters", code="invalid_title")
        fields["title"] = check_message_text(title.strip())
    if "body" in data or creating:
        body = data.get("body")
        if not isinstance(body, str):
            raise InvalidInput("body must be text", code="invalid_body")
        fields["body"] = check_message_text(body)
    if not fields:
        raise InvalidInput("nothing to change", code="empty_change")
    return fields


def canned_view(reply: CannedReply) -> dict[str, Any]:
    return {
        "id": reply.id,
        "shortcut": reply.shortcut,
        "title": reply.title,
        "body": reply.body,
        "created_at": reply.created_at.isoformat(),
        "updated_at": reply.updated_at.isoformat(),
    }


async def list_canned(session: AsyncSession) -> list[CannedReply]:
    found = await session.execute(
        select(CannedReply).order_by(CannedReply.shortcut).limit(MAX_CANNED)
    )
    return list(found.scalars())


async def get_canned(session: AsyncSession, reply_id: int) -> CannedReply:
    reply = await session.get(CannedReply, reply_id)
    if reply is None:
        raise NotFound("canned reply not found")
    return reply


async def _shortcut_taken(session: AsyncSession, shortcut: str, but: int | None) -> bool:
    query = select(CannedReply.id).where(CannedReply.shortcut == shortcut)
    if but is not None:
        query = query.where(CannedReply.id != but)
    return (await session.execute(query)).first() is not None


async def do_create_canned(
    session: AsyncSession, fields: Mapping[str, str], *, user_id: int
) -> CannedReply:
    if await _shortcut_taken(session, fields["shortcut"], None):
        raise Conflict("a canned reply already has this shortcut", code="shortcut_taken")
    now = utcnow()
    reply = CannedReply(
        shortcut=fields["shortcut"],
        title=fields["title"],
        body=fields["body"],
        created_by_user_id=user_id,
        updated_by_user_id=user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(reply)
    await session.flush()
    return reply


async def do_update_canned(
    session: AsyncSession, reply_id: int, fields: Mapping[str, str], *, user_id: int
) -> CannedReply:
    reply = await get_canned(session, reply_id)
    if "shortcut" in fields and await _shortcut_taken(session, fields["shortcut"], reply.id):
        raise Conflict("a canned reply already has this shortcut", code="shortcut_taken")
    for name, value in fields.items():
        setattr(reply, name, value)
    reply.updated_by_user_id = user_id
    reply.updated_at = utcnow()
    await session.flush()
    return reply


async def do_delete_canned(session: AsyncSession, reply_id: int) -> None:
    await session.delete(await get_canned(session, reply_id))
    await session.flush()


def fill_placeholders(body: str, values: Mapping[str, str]) -> str:
    """`{{name}}` replaced by its value; unknown names (and empty values' names) kept."""

    def one(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        return value if value else match.group(0)

    return PLACEHOLDER.sub(one, body)


def placeholder_values(
    *,
    customer: Any,
    agent: Any,
    conversation: Any,
    ticket_id: int | None,
) -> dict[str, str]:
    """What placeholders may name: plain strings only, never objects to walk."""
    name = (getattr(customer, "name", None) or "").strip()
    values = {
        "customer.name": name,
        "customer.first_name": name.split()[0] if name else "",
        "customer.email": getattr(customer, "email", None) or "",
        "customer.phone": getattr(customer, "phone", None) or "",
        "customer.tier": getattr(customer, "tier", None) or "",
        "agent.name": agent.name,
        "agent.first_name": agent.name.split()[0] if agent.name.strip() else "",
        "agent.email": agent.email,
        "conversation.id": str(conversation.id),
        "conversation.subject": conversation.subject or "",
        "ticket.id": str(ticket_id) if ticket_id is not None else "",
    }
    return {k: str(v) for k, v in values.items()}
