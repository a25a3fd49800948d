"""The audit log: who did what to which thing, when, from which address.

Every admin write and every security-relevant event calls `record(session, ...)` inside
the transaction that makes the change, so an entry exists exactly when the change does
(a rolled-back write leaves no entry, and no committed write lacks one). Details are a
small JSON object describing the change; secrets (passwords, tokens) never go in it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.db import Base, UTCDateTime, utcnow
from switchboard.models import User

MAX_DETAILS = 4000  # characters of JSON; a bigger object is cut down to its keys
MAX_LABEL = 300
SECRET_KEYS = frozenset({"password", "password_hash", "token", "secret", "api_key", "credentials"})


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_created_at", "created_at"),
        Index("ix_audit_log_actor_user_id_id", "actor_user_id", "id"),
        Index("ix_audit_log_action_id", "action", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The account is kept as a label too: it outlives a deleted user (SET NULL).
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_label: Mapped[str] = mapped_column(String(320), default="")
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(40), default="")
    target_id: Mapped[str] = mapped_column(String(64), default="")
    target_label: Mapped[str] = mapped_column(String(MAX_LABEL), default="")
    address: Mapped[str] = mapped_column(String(64), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


def _text(value: str) -> str:
    # PostgreSQL refuses NUL in text; a login form or a body may carry one.
    return value.replace("\x00", "")


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, dict):
        return {
            _text(str(k)): "[hidden]" if str(k).lower() in SECRET_KEYS else _scrub(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return _text(str(value))


def _bounded(details: dict[str, Any] | None) -> dict[str, Any]:
    clean = _scrub(details or {})
    if len(json.dumps(clean, ensure_ascii=False, default=str)) <= MAX_DETAILS:
        return dict(clean)
    return {"fields": sorted(clean)[:50], "truncated": True}


async def record(
    session: AsyncSession,
    action: str,
    *,
    actor: User | None = None,
    actor_label: str | None = None,
    address: str | None = None,
    target_type: str = "",
    target_id: object = None,
    target_label: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add one entry to the log in the caller's transaction (flushed, not committed).

    ``action`` is a dotted name such as ``user.role_changed`` or ``kb.article.published``;
    ``actor`` the signed-in user (None for the system, or an anonymous login attempt
    named by ``actor_label``); ``address`` the client address the request came from.
    """
    label = actor_label if actor_label is not None else (actor.email if actor else "system")
    entry = AuditEntry(
        created_at=utcnow(),
        actor_user_id=actor.id if actor is not None else None,
        actor_label=_text(label)[:320],
        action=_text(action)[:64],
        target_type=_text(target_type)[:40],
        target_id="" if target_id is None else _text(str(target_id))[:64],
        target_label=_text(target_label or "")[:MAX_LABEL],
        address=_text(address or "")[:64],
        details=_bounded(details),
    )
    session.add(entry)
    await session.flush()
    return entry


def entry_view(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "created_at": entry.created_at.isoformat(),
        "actor_user_id": entry.actor_user_id,
        "actor": entry.actor_label,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "target": entry.target_label,
        "address": entry.address,
        "details": entry.details,
    }


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search_entries(
    session: AsyncSession,
    *,
    q: str = "",
    actor: str = "",
    action: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[AuditEntry]:
    """Entries newest first. ``q`` matches the action, actor, target or address (a
    substring, case-insensitive); ``actor`` the actor's email (substring); ``action`` an
    action or a prefix of one ending in a dot (``kb.`` for every knowledge-base action).
    ``before_id`` is the cursor: the last id of the previous page."""
    query = select(AuditEntry)
    if q:
        pattern = _like(q.lower())
        query = query.where(
            or_(
                AuditEntry.action.ilike(pattern, escape="\\"),
                AuditEntry.actor_label.ilike(pattern, escape="\\"),
                AuditEntry.target_label.ilike(pattern, escape="\\"),
                AuditEntry.target_id == q,
                AuditEntry.address.ilike(pattern, escape="\\"),
            )
        )
    if actor:
        query = query.where(AuditEntry.actor_label.ilike(_like(actor.lower()), escape="\\"))
    if action:
        if action.endswith("."):
            query = query.where(AuditEntry.action.startswith(action, autoescape=True))
        else:
            query = query.where(AuditEntry.action == action)
    if since is not None:
        query = query.where(AuditEntry.created_at >= since)
    if until is not None:
        query = query.where(AuditEntry.created_at < until)
    if before_id is not None:
        query = query.where(and_(AuditEntry.id < before_id))
    query = query.order_by(AuditEntry.id.desc()).limit(limit)
    return list((await session.execute(query)).scalars())
