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
class RawInbound:
    """A request as it arrived, free of any web framework's types."""

    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class InboundAttachment:
    attachment_id: str  # already stored (see conversations.attachments)


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
    extra: Mapping[str, Any] = field(default_factory=dict)


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

    def __init__(self, reason: str, *, retry_after: float | None = None, permanent: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.permanent = permanent


class ChannelAdapter(Protocol):
    kind: ClassVar[str]
    # True when sending the same idempotency_key twice shows the customer one message.
    # Then a send whose outcome was never recorded is safe to repeat.
    idempotent: ClassVar[bool]

    def verify(self, raw: RawInbound, now: datetime) -> None: ...
    def parse(self, raw: RawInbound) -> Sequence[InboundMessage]: ...
    async def send(self, msg: OutboundMessage) -> DeliveryReceipt: ...
