"""A channel adapter for an outside channel that records every send and does as scripted.

Script the outcome of the next sends with `script(...)`: an exception instance is raised
(`DeliveryFailed(..., retry_after=30)`, `ConnectionResetError()`), `None` succeeds. Once
the script runs out, sends succeed. `sends` holds every attempt that reached the adapter;
`delivered` only those that the channel accepted (what reached the customer).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from channels.base import DeliveryReceipt, InboundMessage, OutboundMessage, RawInbound

FAKE_KIND = "fakechan"


@dataclass(frozen=True)
class SendAttempt:
    message: OutboundMessage
    accepted: bool
    by: str  # the adapter (one per worker) that made the attempt


class RecordingAdapter:
    """Not idempotent: two sends of one reply show the customer two messages."""

    kind: ClassVar[str] = FAKE_KIND
    idempotent: ClassVar[bool] = False
    accepts_webhooks: ClassVar[bool] = False

    def __init__(
        self, *, delay: float = 0.0, name: str = "fake", log: list[SendAttempt] | None = None
    ) -> None:
        self.delay = delay
        self.name = name
        # Pass one list to several adapters to see the order the channel received sends in.
        self.sends: list[SendAttempt] = log if log is not None else []
        self._script: deque[BaseException | None] = deque()

    def script(self, *outcomes: BaseException | None) -> None:
        """Outcomes of the next sends, in order (None: accepted)."""
        self._script.extend(outcomes)

    @property
    def delivered(self) -> list[OutboundMessage]:
        return [attempt.message for attempt in self.sends if attempt.accepted]

    def verify(self, raw: RawInbound, now: datetime) -> None:
        return None

    def parse(self, raw: RawInbound) -> Sequence[InboundMessage]:
        return ()

    async def send(self, msg: OutboundMessage) -> DeliveryReceipt:
        if self.delay:
            await asyncio.sleep(self.delay)
        outcome = self._script.popleft() if self._script else None
        self.sends.append(SendAttempt(msg, accepted=outcome is None, by=self.name))
        if outcome is not None:
            raise outcome
        return DeliveryReceipt(external_id=f"{FAKE_KIND}-{len(self.sends)}")


class IdempotentRecordingAdapter(RecordingAdapter):
    """Dedupes by idempotency key, as a channel with such a key does."""

    idempotent: ClassVar[bool] = True

    @property
    def shown_to_customer(self) -> list[OutboundMessage]:
        seen: set[str] = set()
        shown: list[OutboundMessage] = []
        for msg in self.delivered:
            if msg.idempotency_key not in seen:
                seen.add(msg.idempotency_key)
                shown.append(msg)
        return shown
