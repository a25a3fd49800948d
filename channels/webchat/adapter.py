"""Delivery to the widget: the reply is already stored, and the socket replays by seq.

Marking the row sent publishes `MessageUpdated` on the conversation's topic, which
wakes every widget socket of that conversation on any process; a visitor who is offline
gets it on reconnect. The widget shows each seq once, so repeating a send is harmless.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar

from channels.base import (
    ChannelEvent,
    Delivery,
    DeliveryReceipt,
    InboundFile,
    InboxSetup,
    OutboundMessage,
    RawInbound,
    WebhookRejected,
)


class WebchatAdapter:
    kind: ClassVar[str] = "webchat"
    idempotent: ClassVar[bool] = True
    accepts_webhooks: ClassVar[bool] = False

    def __init__(self, setup: InboxSetup | None = None) -> None:
        self.setup = setup

    def delivery(self, raw: RawInbound) -> Delivery:
        raise WebhookRejected(404, "web chat has no webhook")

    async def fetch(self, file: InboundFile) -> bytes:
        raise NotImplementedError("widget uploads are stored when they arrive")

    async def aclose(self) -> None:
        return None

    def verify(self, raw: RawInbound, now: datetime) -> None:
        # Widget frames are verified by the visitor token at the socket handshake.
        return None

    def parse(self, raw: RawInbound) -> Sequence[ChannelEvent]:
        return ()

    async def send(self, msg: OutboundMessage) -> DeliveryReceipt:
        return DeliveryReceipt(external_id=f"seq:{msg.seq}")
