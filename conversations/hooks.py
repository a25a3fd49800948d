"""Per-channel steps around intake and delivery that need the database.

Adapters are pure at the edge and hold no session; a channel whose threading lives in
our tables (email: reply tokens and Message-IDs) supplies these hooks, which run inside
the intake or delivery transaction.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import DeliveryReceipt, InboundMessage, OutboundMessage


class ChannelHooks:
    """Does nothing; a channel overrides what it needs."""

    async def before_intake(self, session: AsyncSession, msg: InboundMessage) -> InboundMessage:
        """Rewrite the message before it is stored (e.g. pick its thread)."""
        return msg

    async def after_intake(
        self, session: AsyncSession, msg: InboundMessage, conversation_id: int, message_id: int
    ) -> None:
        """Remember what later messages need (e.g. the Message-ID and its conversation)."""

    async def before_send(self, session: AsyncSession, msg: OutboundMessage) -> OutboundMessage:
        """Add channel context to an outbound message (`extra`)."""
        return msg

    async def after_send(
        self, session: AsyncSession, msg: OutboundMessage, receipt: DeliveryReceipt
    ) -> None:
        """Record what the send produced, in the transaction that marks it sent."""
