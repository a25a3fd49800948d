"""An email inbox wired like the app wires it — the real adapter, the real threading
hooks, the inbound processor and the outbox — sending to an aiosmtpd peer. Mail comes
in the way the transports file it: `do_accept` with the adapter's delivery key."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from sqlalchemy import select

from channels.base import InboxSetup, RawInbound
from channels.email.adapter import EmailAdapter
from conversations.inbound import InboundProcessor, do_accept
from conversations.models import (
    AuthorKind,
    Conversation,
    InboundEvent,
    Message,
)
from conversations.outbox import OutboxPolicy, OutboxWorker
from conversations.service import do_reply
from switchboard.adapters import StaticAdapters
from switchboard.crypto import CredentialBox
from switchboard.db import utcnow
from switchboard.inboxes import do_ensure_inbox
from switchboard.tx import Database
from switchboard.wiring import channel_hooks
from tests.channels.email.conftest import Received, SmtpPeer
from tests.conftest import SECRET

SUPPORT = "support@example.com"


def customer_mail(
    body: str = "Hello, my printer is on fire.",
    *,
    sender: str = "Ann Example <ann@customer.example>",
    to: str = SUPPORT,
    subject: str = "Printer is on fire",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    """A plain mail as a mail client sends it."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = message_id or make_msgid(domain="customer.example")
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg.as_bytes()


@dataclass
class EmailHub:
    db: Database
    peer: SmtpPeer
    adapter: EmailAdapter
    inbox_id: int
    inbound: InboundProcessor
    outbox: OutboxWorker

    @classmethod
    async def start(cls, db: Database, peer: SmtpPeer, **config: Any) -> EmailHub:
        settings = dict(peer.config(SUPPORT), **config)
        inbox = await db.run(
            lambda s: do_ensure_inbox(
                s,
                key="default",
                kind="email",
                name="ACME Support",
                config=settings,
                credentials=peer.credentials(),
                box=CredentialBox(SECRET),
            )
        )
        adapter = EmailAdapter(
            InboxSetup(
                id=inbox.id,
                key="default",
                kind="email",
                name="ACME Support",
                config=settings,
                credentials=peer.credentials(),
                public_url="http://hub.test",
            )
        )
        adapters = StaticAdapters({"email": adapter})
        hooks = channel_hooks()
        return cls(
            db=db,
            peer=peer,
            adapter=adapter,
            inbox_id=inbox.id,
            inbound=InboundProcessor(db, adapters, hooks=hooks),
            outbox=OutboxWorker(db, adapters, OutboxPolicy(max_attempts=2), hooks=hooks),
        )

    async def receive(self, eml: bytes) -> None:
        """File the mail as the SMTP ingress or the IMAP poller does, then process it."""
        raw = RawInbound(headers={}, query={}, body=eml)
        delivery = self.adapter.delivery(raw)
        await self.db.run(
            lambda s: do_accept(
                s, inbox_id=self.inbox_id, channel="email", delivery=delivery, raw=raw
            )
        )
        await self.inbound.run_once()

    async def reply(
        self, conversation_id: int, text: str, author: AuthorKind = AuthorKind.AGENT
    ) -> Message:
        """Store a reply and let the outbox try it once."""
        message = await self.db.run(
            lambda s: do_reply(s, conversation_id=conversation_id, text=text, author_kind=author)
        )
        await self.outbox.run_once()
        return message

    async def sent(self, count: int) -> list[Received]:
        return await self.peer.wait_for(count)

    async def conversations(self) -> list[Conversation]:
        async with self.db.reading() as session:
            rows = await session.execute(select(Conversation).order_by(Conversation.id))
            return list(rows.scalars())

    async def messages(self, conversation_id: int) -> list[Message]:
        async with self.db.reading() as session:
            rows = await session.execute(
                select(Message)
                .where(Message.conversation_id == conversation_id)
                .order_by(Message.seq)
            )
            return list(rows.scalars())

    async def message(self, message_id: int) -> Message:
        async with self.db.reading() as session:
            found = await session.get(Message, message_id)
            assert found is not None
            return found

    async def events(self) -> list[InboundEvent]:
        async with self.db.reading() as session:
            rows = await session.execute(select(InboundEvent).order_by(InboundEvent.id))
            return list(rows.scalars())
