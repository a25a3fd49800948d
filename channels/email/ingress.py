"""The embedded SMTP ingress: mail for our inboxes, filed like a webhook delivery.

An aiosmtpd server on the app's own event loop (so it uses the async database directly).
Recipients are checked at RCPT: only an email inbox's address, or that address with a
`+tag` (the reply tokens in our Reply-To), is accepted; anything else gets 550 and
nothing is stored. At the end of DATA the raw bytes are filed in `inbound_events`
under the adapter's dedupe key, and the sender gets 250 only after the commit. If the
database cannot take the message the answer is 451, so the sending MTA keeps it and
tries again: a 250 always means the mail is stored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from email.utils import parseaddr
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import Delivery, RawInbound, WebhookRejected
from conversations.inbound import do_accept
from conversations.models import ChannelKind, Inbox
from switchboard.adapters import AdapterSource
from switchboard.tx import Database

log = logging.getLogger(__name__)

EMAIL = ChannelKind.EMAIL.value
# Big enough for the attachments people mail in; aiosmtpd stops buffering past it (552).
DEFAULT_MAX_BYTES = 25 * 1024 * 1024
# Sessions at once; with the size limit above, a bound on the memory mail can take.
DEFAULT_MAX_CONNECTIONS = 40
# RFC 5321 asks servers to take at least 100 recipients; we never need more.
MAX_RECIPIENTS = 100

OK = "250 2.0.0 OK: stored"
TRY_LATER = "451 4.3.0 Temporary failure, please try again later"


def mailbox_key(address: str) -> str | None:
    """`local@domain` in lower case with any `+tag` dropped: the inbox an address names."""
    _, addr = parseaddr(address)
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain:
        return None
    base = local.split("+", 1)[0]
    if not base:
        return None
    return f"{base}@{domain}".lower()


class NoEmailAdapter(Exception):
    """The inbox has no email adapter (removed, or not an email inbox any more)."""


async def delivery_of(adapters: AdapterSource, inbox_id: int, raw: RawInbound) -> Delivery:
    """The inbox's adapter decides the dedupe key (the Message-ID; pure, no I/O)."""
    adapter = await adapters.for_inbox(inbox_id, EMAIL)
    if adapter is None:
        raise NoEmailAdapter(f"no email adapter for inbox {inbox_id}")
    return adapter.delivery(raw)


class RecipientBook:
    """Which inbox each support address belongs to, read from the inbox rows and kept for
    a few seconds, so an admin's new inbox is reachable without a restart."""

    RECHECK_SECONDS = 5.0

    def __init__(self, db: Database) -> None:
        self.db = db
        self._book: dict[str, int] = {}
        self._read_at: float | None = None
        self._lock = asyncio.Lock()

    async def inbox_for(self, address: str) -> int | None:
        key = mailbox_key(address)
        if key is None:
            return None
        return (await self._current()).get(key)

    async def _current(self) -> Mapping[str, int]:
        now = time.monotonic()
        if self._read_at is not None and now - self._read_at < self.RECHECK_SECONDS:
            return self._book
        async with self._lock:
            if self._read_at is None or now - self._read_at >= self.RECHECK_SECONDS:
                async with self.db.reading() as session:
                    self._book = await _support_addresses(session)
                self._read_at = time.monotonic()
        return self._book


async def _support_addresses(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(Inbox.id, Inbox.config).where(Inbox.kind == EMAIL))
    book: dict[str, int] = {}
    for inbox_id, config in rows:
        config = config or {}
        # An inbox that only reads a mailbox over IMAP says so; every other one takes mail.
        if config.get("ingress") is False:
            continue
        key = mailbox_key(str(config.get("address") or ""))
        if key is not None:
            book.setdefault(key, inbox_id)
    return book


class IngressHandler:
    """aiosmtpd hooks: check each recipient, file the message, answer after the commit."""

    def __init__(self, db: Database, adapters: AdapterSource, book: RecipientBook) -> None:
        self.db = db
        self.adapters = adapters
        self.book = book

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        try:
            inbox_id = await self.book.inbox_for(address)
        except Exception:
            log.exception("SMTP ingress cannot read the inboxes; deferring RCPT %s", address)
            return TRY_LATER
        if inbox_id is None:
            # Any +tag of a known address is taken: answering for unknown reply tokens
            # here would let a stranger test tokens one RCPT at a time.
            log.info("SMTP ingress refused recipient %s from %s", address, session.peer)
            return "550 5.1.1 No such recipient here"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        eml = envelope.original_content or b""  # the bytes as sent, never decoded
        try:
            per_inbox = await self._recipients_by_inbox(envelope.rcpt_tos)
            if not per_inbox:
                return "554 5.5.1 No valid recipients"
            deliveries = []
            for inbox_id, recipients in per_inbox.items():
                raw = RawInbound(
                    headers={
                        "x-envelope-from": envelope.mail_from or "",
                        "x-envelope-to": ", ".join(recipients),
                        "x-received-via": "smtp",
                    },
                    query={},
                    body=eml,
                )
                deliveries.append((inbox_id, raw, await delivery_of(self.adapters, inbox_id, raw)))
        except WebhookRejected as rejected:
            log.info("SMTP ingress refused a message from %s: %s", session.peer, rejected.reason)
            return f"554 5.6.0 {rejected.reason}"[:200]
        except Exception:
            log.exception("SMTP ingress could not read a message from %s", session.peer)
            return TRY_LATER
        try:
            # One transaction for every inbox addressed: the answer covers them all.
            filed = await self.db.run(lambda s: _file_all(s, deliveries))
        except Exception:
            log.exception("SMTP ingress could not store a message from %s", session.peer)
            return TRY_LATER
        for (inbox_id, _, delivery), new in zip(deliveries, filed, strict=True):
            log.info(
                "SMTP ingress %s message %s for inbox %s",
                "stored" if new else "already had",
                delivery.dedupe_key,
                inbox_id,
            )
        return OK

    async def _recipients_by_inbox(self, recipients: Sequence[str]) -> dict[int, list[str]]:
        per_inbox: dict[int, list[str]] = {}
        for address in recipients:
            inbox_id = await self.book.inbox_for(address)
            if inbox_id is not None:
                per_inbox.setdefault(inbox_id, []).append(address)
        return per_inbox


async def _file_all(
    session: AsyncSession, deliveries: Sequence[tuple[int, RawInbound, Delivery]]
) -> list[bool]:
    return [
        await do_accept(session, inbox_id=inbox_id, channel=EMAIL, delivery=delivery, raw=raw)
        for inbox_id, raw, delivery in deliveries
    ]


class _CappedSMTP(SMTP):
    """aiosmtpd's protocol, refusing connections past the ingress's cap with a 421
    (a sending MTA retries later): each session may buffer a message of up to
    `max_bytes`, so their number bounds the memory the ingress can be made to use."""

    def __init__(self, *args: Any, ingress: SmtpIngress, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ingress = ingress
        self._counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._ingress.open_connections >= self._ingress.max_connections:
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(b"421 4.7.0 Too many connections, try again later\r\n")
            transport.close()
            return
        self._ingress.open_connections += 1
        self._counted = True
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._counted:
            return  # refused before aiosmtpd set anything up
        self._counted = False
        self._ingress.open_connections -= 1
        super().connection_lost(exc)


class SmtpIngress:
    """The listening server; `start` binds (port 0 picks a free one), `stop` closes."""

    def __init__(
        self,
        db: Database,
        adapters: AdapterSource,
        *,
        host: str,
        port: int,
        server_name: str = "switchboard",
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout: float = 300,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self.handler = IngressHandler(db, adapters, RecipientBook(db))
        self.host = host
        self.port = port
        self.server_name = server_name
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.max_connections = max_connections
        self.open_connections = 0
        self._server: asyncio.Server | None = None

    def _protocol(self) -> SMTP:
        return _CappedSMTP(
            self.handler,
            ingress=self,
            data_size_limit=self.max_bytes,
            enable_SMTPUTF8=True,
            # Naming ourselves avoids aiosmtpd's getfqdn(), a DNS lookup per connection.
            hostname=self.server_name,
            ident="Switchboard ESMTP",
            timeout=self.timeout,
            loop=asyncio.get_running_loop(),
        )

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, self.host, self.port)
        sockets: Sequence[Any] = self._server.sockets
        self.port = int(sockets[0].getsockname()[1])
        log.info("SMTP ingress listening on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
