"""The adapter contract every channel implements, and the messages that cross it.

This module imports nothing from the rest of Switchboard: channels and the core meet
here, and only here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol


@dataclass(frozen=True)
class InboxSetup:
    """What an adapter is built from: one inbox row, credentials already decrypted."""

    id: int
    key: str
    kind: str
    name: str
    config: Mapping[str, Any]
    credentials: Mapping[str, str]
    public_url: str  # the hub's, for building webhook and link URLs

    @property
    def webhook_url(self) -> str:
        return f"{self.public_url.rstrip('/')}/webhooks/{self.kind}/{self.key}"


@dataclass(frozen=True)
class RawInbound:
    """A request as it arrived, free of any web framework's types."""

    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class InboundAttachment:
    attachment_id: str  # already stored (see conversations.attachments)


@dataclass(frozen=True)
class InboundFile:
    """A file that came with a message: the bytes in hand (email), or a reference the
    adapter's `fetch` downloads (a Telegram file_id, a Slack `url_private`)."""

    filename: str
    content_type: str | None = None
    size: int | None = None
    data: bytes | None = None
    ref: str | None = None


@dataclass(frozen=True)
class InboundMessage:
    """One customer message, parsed and verified, ready for intake."""

    channel: str
    inbox_id: int
    sender_id: str  # the customer's id on this channel
    external_id: str  # the dedupe key, unique within the inbox
    thread_key: str  # which conversation it belongs to
    text: str
    sent_at: datetime | None = None
    sender_name: str | None = None
    attachments: Sequence[InboundAttachment] = ()
    raw: Mapping[str, Any] | None = None
    # Files still to be stored; the inbound processor turns them into `attachments`.
    files: Sequence[InboundFile] = ()
    subject: str | None = None
    # Sanitised HTML for display (email); `text` is always the plain version.
    html: str | None = None
    # An auto-reply, bounce or list mail: stored, never answered automatically.
    automatic: bool = False
    # An address the channel vouches for (an identified visitor, a verified sender): the
    # customer record with this address is the same person on every channel.
    verified_email: str | None = None
    # The channel's "hello" (Telegram's /start): the hub answers with its greeting.
    wants_greeting: bool = False


@dataclass(frozen=True)
class MessageEdited:
    """The customer changed a message they sent: kept as a revision, shown as edited."""

    inbox_id: int
    external_id: str  # of the original message
    text: str
    edited_at: datetime | None = None
    raw: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class MessageDeleted:
    inbox_id: int
    external_id: str
    deleted_at: datetime | None = None


@dataclass(frozen=True)
class SenderUnreachable:
    """The customer blocked us or left: replies to them cannot be delivered."""

    inbox_id: int
    sender_id: str
    reason: str


@dataclass(frozen=True)
class Ignored:
    """A well-formed delivery with nothing to store (an unknown update type): logged."""

    reason: str


ChannelEvent = InboundMessage | MessageEdited | MessageDeleted | SenderUnreachable | Ignored


@dataclass(frozen=True)
class Delivery:
    """How the edge files one verified webhook delivery before answering it."""

    dedupe_key: str  # Telegram update_id, Slack event_id, an email's Message-ID
    order_key: int | None = None  # restores the channel's order (Telegram update_id)


@dataclass(frozen=True)
class OutboundFile:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class OutboundMessage:
    """One stored reply, handed to its channel for delivery."""

    outbox_id: int
    message_id: int
    conversation_id: int
    inbox_id: int
    seq: int
    thread_key: str
    recipient_id: str
    text: str
    author_kind: str
    attachment_ids: Sequence[str] = ()
    # The same key on every attempt, so a channel that can dedupe does.
    idempotency_key: str = ""
    # Channel context loaded with the row (email: subject, reply token, references).
    extra: Mapping[str, Any] = field(default_factory=dict)
    files: Sequence[OutboundFile] = ()


@dataclass(frozen=True)
class DeliveryReceipt:
    external_id: str | None = None


class WebhookRejected(Exception):
    """Verification failed; `status` is what the edge answers (401, 403)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class DeliveryFailed(Exception):
    """A send did not happen. `retry_after` is the channel's own requested delay, if any."""

    def __init__(
        self,
        reason: str,
        *,
        retry_after: float | None = None,
        permanent: bool = False,
        recipient_unreachable: bool = False,
    ):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.permanent = permanent or recipient_unreachable
        # The customer blocked us or is gone: their identity is marked unreachable.
        self.recipient_unreachable = recipient_unreachable


class ChannelAdapter(Protocol):
    """One inbox's connection to its channel. `verify`, `delivery` and `parse` are pure:
    no I/O, so they are tested on captured payloads. Raise `WebhookRejected` (401/403 for
    a failed check, 400 for a malformed body)."""

    kind: ClassVar[str]
    # True when sending the same idempotency_key twice shows the customer one message.
    # Then a send whose outcome was never recorded is safe to repeat.
    idempotent: ClassVar[bool]
    # Whether deliveries may arrive at /webhooks/<kind>/<key>. Web chat has its own
    # socket; email comes only through its transports, whose checks (a known recipient,
    # a mailbox login) a POST would skip.
    accepts_webhooks: ClassVar[bool]

    def verify(self, raw: RawInbound, now: datetime) -> None: ...
    def delivery(self, raw: RawInbound) -> Delivery: ...
    def parse(self, raw: RawInbound) -> Sequence[ChannelEvent]: ...
    async def fetch(self, file: InboundFile) -> bytes: ...
    async def send(self, msg: OutboundMessage) -> DeliveryReceipt: ...
    async def aclose(self) -> None: ...
