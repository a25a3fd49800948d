"""Inboxes: rows in the database, several per kind; the settings make one per kind.

The `SWITCHBOARD_*` variables of a channel create (or update, when they change) the
inbox with the key `default` at start-up. Admins add more inboxes as rows. Secrets go in
`credentials`, encrypted with the secret key; everything an admin may read goes in
`config`.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.models import ChannelKind, Inbox
from switchboard.crypto import CredentialBox
from switchboard.db import utcnow
from switchboard.settings import Settings

DEFAULT_KEY = "default"


@dataclass(frozen=True)
class InboxSpec:
    kind: str
    name: str
    config: Mapping[str, Any]
    credentials: Mapping[str, str]


async def do_ensure_inbox(
    session: AsyncSession,
    *,
    key: str,
    kind: str,
    name: str,
    public_key: str | None = None,
    config: Mapping[str, Any] | None = None,
    credentials: Mapping[str, str] | None = None,
    box: CredentialBox | None = None,
) -> Inbox:
    """Create the inbox with this key; if it exists, update config and credentials when
    given and different (so a changed variable takes effect at the next start)."""
    inbox = (
        await session.execute(select(Inbox).where(Inbox.kind == kind, Inbox.key == key))
    ).scalar_one_or_none()
    sealed = None
    if credentials is not None:
        if box is None:
            raise ValueError("credentials need a CredentialBox to be sealed")
        sealed = box.seal(credentials)
    if inbox is None:
        inbox = Inbox(
            key=key,
            kind=kind,
            name=name,
            public_key=public_key or ("wc_" + secrets.token_urlsafe(18)),
            config=dict(config or {}),
            credentials=sealed,
            updated_at=utcnow(),
        )
        session.add(inbox)
        await session.flush()
        return inbox
    changed = False
    if config is not None and dict(config) != dict(inbox.config or {}):
        inbox.config = dict(config)
        changed = True
    if (
        credentials is not None
        and box is not None
        and box.open(inbox.credentials) != dict(credentials)
    ):
        inbox.credentials = sealed
        changed = True
    if changed:
        inbox.updated_at = utcnow()
        await session.flush()
    return inbox


def inbox_specs(settings: Settings) -> list[InboxSpec]:
    """The inboxes the settings describe, web chat always among them."""
    specs = [InboxSpec(ChannelKind.WEBCHAT, "Website chat", {}, {})]
    if settings.telegram_bot_token:
        specs.append(
            InboxSpec(
                ChannelKind.TELEGRAM,
                "Telegram",
                {"api_url": settings.telegram_api_url},
                {
                    "bot_token": settings.telegram_bot_token,
                    "webhook_secret": settings.telegram_webhook_secret or "",
                },
            )
        )
    if settings.slack_bot_token:
        specs.append(
            InboxSpec(
                ChannelKind.SLACK,
                "Slack",
                {"api_url": settings.slack_api_url},
                {
                    "bot_token": settings.slack_bot_token,
                    "signing_secret": settings.slack_signing_secret or "",
                },
            )
        )
    if settings.email_address:
        specs.append(
            InboxSpec(
                ChannelKind.EMAIL,
                "Email",
                {
                    "address": settings.email_address,
                    "authserv_id": settings.email_authserv_id,
                    "smtp_host": settings.smtp_host,
                    "smtp_port": settings.smtp_port,
                    "smtp_username": settings.smtp_username,
                    "smtp_tls": settings.smtp_tls,
                    "ingress": settings.smtp_ingress_port is not None,
                    "imap_host": settings.imap_host,
                    "imap_port": settings.imap_port,
                    "imap_username": settings.imap_username,
                    "imap_folder": settings.imap_folder,
                    "imap_tls": settings.imap_tls,
                },
                {
                    "smtp_password": settings.smtp_password or "",
                    "imap_password": settings.imap_password or "",
                },
            )
        )
    return specs


async def do_ensure_default_inboxes(
    session: AsyncSession, settings: Settings | None = None, box: CredentialBox | None = None
) -> list[Inbox]:
    # Web chat needs no credentials, so the hub always has one widget inbox.
    if settings is None:
        webchat = await do_ensure_inbox(
            session, key=DEFAULT_KEY, kind=ChannelKind.WEBCHAT, name="Website chat"
        )
        return [webchat]
    box = box or CredentialBox(settings.secret_key)
    inboxes = []
    for spec in inbox_specs(settings):
        inboxes.append(
            await do_ensure_inbox(
                session,
                key=DEFAULT_KEY,
                kind=spec.kind,
                name=spec.name,
                config=spec.config if spec.kind != ChannelKind.WEBCHAT else None,
                credentials=spec.credentials if spec.kind != ChannelKind.WEBCHAT else None,
                box=box,
            )
        )
    return inboxes


# What an admin may read of an inbox's config; credentials are never shown.
_VISIBLE_CONFIG = ("address", "api_url", "smtp_host", "smtp_port", "imap_host", "imap_folder")


def inbox_view(inbox: Inbox, public_url: str) -> dict[str, Any]:
    """An inbox as admins see it: where its channel reaches us, never its secrets."""
    config = inbox.config or {}
    webhook = None
    if inbox.kind in (ChannelKind.TELEGRAM, ChannelKind.SLACK):
        webhook = f"{public_url.rstrip('/')}/webhooks/{inbox.kind}/{inbox.key}"
    return {
        "id": inbox.id,
        "key": inbox.key,
        "kind": inbox.kind,
        "name": inbox.name,
        "webhook_url": webhook,
        "widget_key": inbox.public_key if inbox.kind == ChannelKind.WEBCHAT else None,
        "bot_enabled": inbox.bot_enabled,
        "config": {k: config[k] for k in _VISIBLE_CONFIG if config.get(k) is not None},
        "has_credentials": bool(inbox.credentials),
    }


async def list_inboxes(session: AsyncSession, public_url: str) -> list[dict[str, Any]]:
    rows = (await session.execute(select(Inbox).order_by(Inbox.kind, Inbox.key))).scalars()
    return [inbox_view(inbox, public_url) for inbox in rows]
