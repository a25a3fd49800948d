"""Inboxes created from settings at start-up (inbox key `default`)."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.models import ChannelKind, Inbox

DEFAULT_KEY = "default"


async def do_ensure_inbox(
    session: AsyncSession, *, key: str, kind: str, name: str, public_key: str | None = None
) -> Inbox:
    """Create the inbox with this key, or return it unchanged if it exists."""
    inbox = (
        await session.execute(select(Inbox).where(Inbox.kind == kind, Inbox.key == key))
    ).scalar_one_or_none()
    if inbox is None:
        inbox = Inbox(
            key=key,
            kind=kind,
            name=name,
            public_key=public_key or ("wc_" + secrets.token_urlsafe(18)),
            config={},
        )
        session.add(inbox)
        await session.flush()
    return inbox


async def do_ensure_default_inboxes(session: AsyncSession) -> list[Inbox]:
    # Web chat needs no credentials, so the hub always has one widget inbox.
    webchat = await do_ensure_inbox(
        session, key=DEFAULT_KEY, kind=ChannelKind.WEBCHAT, name="Website chat"
    )
    return [webchat]
