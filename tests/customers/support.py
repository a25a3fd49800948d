"""Helpers for the customer tests: inboxes, messages from a sender, signed visitors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import func, select, text

from channels.base import InboundMessage
from conversations.models import Conversation, Inbox, Message
from conversations.service import IntakeResult, do_intake
from customers.identify import do_ensure_identity_secret, email_hash, identifier_hash
from customers.models import Customer, Identity
from switchboard.crypto import CredentialBox
from switchboard.inboxes import do_ensure_default_inboxes, do_ensure_inbox
from switchboard.tx import Database
from tests.conftest import SECRET, AppClient, Backend


async def email_inbox(db: Database, key: str = "default") -> int:
    async def make(session: Any) -> int:
        inbox = await do_ensure_inbox(
            session, key=key, kind="email", name=f"Email {key}", config={"address": "help@x.test"}
        )
        return inbox.id

    return await db.run(make)


async def webchat_inbox(db: Database) -> Inbox:
    inboxes = await db.run(lambda s: do_ensure_default_inboxes(s))
    return next(i for i in inboxes if i.kind == "webchat")


async def identity_secret(db: Database) -> str:
    """The default web-chat inbox's secret, as an admin would get it from the CLI."""
    await webchat_inbox(db)
    box = CredentialBox(SECRET)
    return await db.run(lambda s: do_ensure_identity_secret(s, "default", box))


def email_from(
    inbox_id: int, address: str, *, verified: bool, n: int = 1, name: str | None = None
) -> InboundMessage:
    """A mail from `address`; `verified`: our MTA's checks vouched for the sender."""
    return InboundMessage(
        channel="email",
        inbox_id=inbox_id,
        sender_id=address.lower(),
        external_id=f"<{n}.{address}@mail.test>",
        thread_key=f"mail-thread-{address}-{n}",
        text=f"mail {n} from {address}",
        sender_name=name,
        verified_email=address if verified else None,
    )


async def intake(db: Database, message: InboundMessage) -> IntakeResult:
    return await db.run(lambda s: do_intake(s, message))


def signed_claims(
    secret: str, user_id: str, email: str | None = None, name: str | None = None
) -> dict[str, Any]:
    """What the site's server puts in the page for its logged-in user."""
    claims: dict[str, Any] = {
        "user_id": user_id,
        "identifier_hash": identifier_hash(secret, user_id),
    }
    if email is not None:
        claims["email"] = email
        claims["email_hash"] = email_hash(secret, user_id, email)
    if name is not None:
        claims["name"] = name
    return claims


async def start_session(
    client: AppClient, public_key: str, claims: dict[str, Any] | None = None, token: str = ""
) -> dict[str, Any]:
    body: dict[str, Any] = {"inbox": public_key, **(claims or {})}
    if token:
        body["token"] = token
    response = await client.post("/widget/session", json=body)
    assert response.status == 200, await response.text()
    data: dict[str, Any] = await response.json()
    return data


async def count(db: Database, model: Any) -> int:
    async with db.reading() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


async def customers(db: Database) -> list[Customer]:
    async with db.reading() as session:
        return list((await session.execute(select(Customer).order_by(Customer.id))).scalars())


async def identities(db: Database) -> list[Identity]:
    async with db.reading() as session:
        return list((await session.execute(select(Identity).order_by(Identity.id))).scalars())


async def identity(db: Database, external_id: str) -> Identity | None:
    async with db.reading() as session:
        return (
            await session.execute(select(Identity).where(Identity.external_id == external_id))
        ).scalar_one_or_none()


async def ownership(db: Database) -> dict[str, dict[Any, int]]:
    """Who owns every identity, conversation and message: the whole picture a merge moves."""
    async with db.reading() as session:
        queries = {
            "identities": select(Identity.id, Identity.customer_id),
            "conversations": select(Conversation.id, Conversation.customer_id),
            "messages": select(Message.id, Conversation.customer_id).join(
                Conversation, Conversation.id == Message.conversation_id
            ),
        }
        return {
            kind: {row[0]: row[1] for row in (await session.execute(query)).all()}
            for kind, query in queries.items()
        }


async def until(check: Callable[[], Awaitable[bool]], within: float = 10) -> None:
    """Wait for a condition (never a fixed sleep)."""
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def wait_until_blocked_on_a_lock(db: Database, backend: Backend) -> None:
    """PostgreSQL: until some transaction of this database waits for a row or index lock.
    SQLite has one writer at a time: the second simply queues for the write lock."""
    if backend.name != "postgres":
        return

    async def blocked() -> bool:
        async with db.reading() as session:
            waiting = await session.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            return bool(waiting.scalar_one())

    await until(blocked)
