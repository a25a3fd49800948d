"""Which conversation an inbound mail belongs to, and the threading context of our replies.

Inbound, in this order (CHANNELS.md §3, Chatwoot's order):
1. a reply token in To/Cc/Delivered-To (`support+<token>@…`), matched at full length:
   32+ random characters only the recipients of our mail have seen;
2. a Message-ID we know (In-Reply-To, then References, newest first), but only into a
   conversation whose customer *is* this sender — Message-IDs are not secret, so a
   forged In-Reply-To must never put a stranger's mail into someone else's conversation
   (FreeScout GHSA-8vm3-wwq4-ggfx);
3. our subject tag `[#C-<id>]`, with the same sender check (ids are guessable);
4. otherwise a new conversation, keyed by the mail's own Message-ID.
A delivery report first looks for the mail it bounces among the Message-IDs *we* sent;
one that matches nothing joins a single "delivery reports" conversation instead of
opening one per bounce.

Outbound, the hooks supply subject, reply token, In-Reply-To and References, record our
Message-ID once sent, and hold back automatic mail (bot or system) that would answer an
automatic mail or repeat an automatic reply to the same customer within the window.
"""

from __future__ import annotations

import dataclasses
import hmac
import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import DeliveryReceipt, InboundMessage, OutboundMessage
from channels.email.compose import reply_subject
from channels.email.models import EmailMessageId
from channels.email.parse import message_id_digest, normalise_message_id
from conversations.hooks import ChannelHooks
from conversations.models import AuthorKind, Conversation, DeliveryStatus, Direction, Message
from customers.models import Identity
from switchboard.db import utcnow
from switchboard.upsert import insert_ignoring_conflict

BOUNCES_THREAD = "email:delivery-reports"
_SUBJECT_TAG = re.compile(r"\[#C-(\d{1,10})\]")
# Row ids are 32-bit: a bigger number names nothing, and asking the database about it
# would fail the whole intake (asyncpg refuses to bind it).
_MAX_ROW_ID = 2**31 - 1
_MIN_TOKEN = 32  # secrets.token_urlsafe(24): 192 random bits
_AUTOMATIC_AUTHORS = (AuthorKind.SYSTEM.value, AuthorKind.BOT.value)


def subject_tag(conversation_id: int) -> str:
    return f"[#C-{conversation_id}]"


def new_reply_token() -> str:
    return secrets.token_urlsafe(24)


class EmailThreading(ChannelHooks):
    def __init__(self, auto_reply_window: timedelta = timedelta(hours=1)) -> None:
        # At most one automatic reply per customer per window (SECURITY §4 item 14).
        self.auto_reply_window = auto_reply_window

    # --- inbound -------------------------------------------------------------------------

    async def before_intake(self, session: AsyncSession, msg: InboundMessage) -> InboundMessage:
        found = await self.find_conversation(session, msg)
        if found is not None:
            return dataclasses.replace(msg, thread_key=found.thread_key)
        if (msg.raw or {}).get("bounce"):
            return dataclasses.replace(msg, thread_key=BOUNCES_THREAD)
        return msg

    async def find_conversation(
        self, session: AsyncSession, msg: InboundMessage
    ) -> Conversation | None:
        raw = msg.raw or {}
        if raw.get("bounce"):
            bounced = await self._by_our_message_ids(session, msg, raw)
            if bounced is not None:
                return bounced
        by_token = await self._by_reply_token(session, msg, _strings(raw.get("reply_tokens")))
        if by_token is not None:
            return by_token
        known = [*_strings(raw.get("in_reply_to")), *reversed(_strings(raw.get("references")))]
        by_id = await self._by_message_ids(session, msg, known)
        if by_id is not None:
            return by_id
        return await self._by_subject_tag(session, msg)

    async def _by_reply_token(
        self, session: AsyncSession, msg: InboundMessage, tokens: Sequence[str]
    ) -> Conversation | None:
        for token in tokens:
            if not _MIN_TOKEN <= len(token) <= 64:
                continue
            found = (
                await session.execute(
                    select(Conversation).where(
                        Conversation.inbox_id == msg.inbox_id, Conversation.reply_token == token
                    )
                )
            ).scalar_one_or_none()
            # The database found it; compare again in constant time and at full length,
            # whatever the column's collation does with case or trailing spaces.
            if found is not None and hmac.compare_digest(
                (found.reply_token or "").encode(), token.encode()
            ):
                return found
        return None

    async def _conversations_by_ids(
        self, session: AsyncSession, inbox_id: int, ids: Sequence[str], direction: str | None
    ) -> list[int]:
        """Conversation ids of the known Message-IDs among `ids`, in the order of `ids`."""
        digests = [message_id_digest(i) for i in ids]
        if not digests:
            return []
        query = select(EmailMessageId.digest, EmailMessageId.conversation_id).where(
            EmailMessageId.inbox_id == inbox_id, EmailMessageId.digest.in_(digests)
        )
        if direction is not None:
            query = query.where(EmailMessageId.direction == direction)
        rows = {digest: conversation for digest, conversation in await session.execute(query)}
        return list(dict.fromkeys(rows[d] for d in digests if d in rows))

    async def _by_message_ids(
        self, session: AsyncSession, msg: InboundMessage, ids: Sequence[str]
    ) -> Conversation | None:
        # From: is not identity. For a sender nobody vouched for, only Message-IDs we
        # generated count (only our recipients have seen them); the customer's own
        # Message-IDs travel in every Cc and forward, so anyone could quote them.
        direction = None if _verified(msg) else Direction.OUTBOUND.value
        found = await self._conversations_by_ids(session, msg.inbox_id, ids, direction)
        for conversation_id in found:
            conversation = await session.get(Conversation, conversation_id)
            if conversation is not None and await _is_customer_of(session, msg, conversation):
                return conversation
        return None

    async def _by_our_message_ids(
        self, session: AsyncSession, msg: InboundMessage, raw: Mapping[str, Any]
    ) -> Conversation | None:
        # A bounce comes from MAILER-DAEMON, never from the customer, so there is no
        # sender check: only a Message-ID we generated, which the reporting MTA quotes
        # back, leads into a conversation.
        ids = [*_strings(raw.get("bounced_message_ids")), *_strings(raw.get("in_reply_to"))]
        found = await self._conversations_by_ids(
            session, msg.inbox_id, ids, Direction.OUTBOUND.value
        )
        return await session.get(Conversation, found[0]) if found else None

    async def _by_subject_tag(
        self, session: AsyncSession, msg: InboundMessage
    ) -> Conversation | None:
        # Conversation ids are sequential: a tag is guessable, so it counts only for a
        # sender whose address the channel verified.
        if not _verified(msg):
            return None
        for match in _SUBJECT_TAG.finditer(msg.subject or ""):
            tagged = int(match.group(1))
            if not 0 < tagged <= _MAX_ROW_ID:
                continue
            conversation = await session.get(Conversation, tagged)
            if (
                conversation is not None
                and conversation.inbox_id == msg.inbox_id
                and await _is_customer_of(session, msg, conversation)
            ):
                return conversation
        return None

    async def after_intake(
        self, session: AsyncSession, msg: InboundMessage, conversation_id: int, message_id: int
    ) -> None:
        raw = msg.raw or {}
        await record_message_id(
            session,
            msg.inbox_id,
            conversation_id,
            raw.get("message_id_header") or raw.get("message_id"),
            Direction.INBOUND.value,
        )
        # The conversation's reply token and subject are set once, by its first mail.
        await session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id, Conversation.reply_token.is_(None))
            .values(reply_token=new_reply_token())
        )
        if msg.subject:
            await session.execute(
                update(Conversation)
                .where(Conversation.id == conversation_id, Conversation.subject.is_(None))
                .values(subject=msg.subject[:500])
            )

    # --- outbound ------------------------------------------------------------------------

    async def before_send(self, session: AsyncSession, msg: OutboundMessage) -> OutboundMessage:
        conversation = (
            await session.execute(
                select(
                    Conversation.subject, Conversation.reply_token, Conversation.customer_id
                ).where(Conversation.id == msg.conversation_id)
            )
        ).one()
        known = (
            await session.execute(
                select(EmailMessageId.message_id_header, EmailMessageId.direction)
                .where(EmailMessageId.conversation_id == msg.conversation_id)
                .order_by(EmailMessageId.id)
            )
        ).all()
        inbound = [header for header, direction in known if direction == Direction.INBOUND]
        extra: dict[str, Any] = dict(msg.extra)
        extra.update(
            subject=reply_subject(conversation.subject, subject_tag(msg.conversation_id)),
            in_reply_to=inbound[-1] if inbound else None,
            references=[header for header, _ in known],
        )
        if conversation.reply_token:
            extra["reply_token"] = conversation.reply_token
        else:
            # Read-only here; after_send stores it with the sent mail.
            extra["reply_token"] = new_reply_token()
            extra["new_reply_token"] = True
        if msg.author_kind in _AUTOMATIC_AUTHORS:
            reason = await self._hold_back(session, msg, conversation.customer_id)
            if reason:
                extra["suppressed"] = reason
        return dataclasses.replace(msg, extra=extra)

    async def _hold_back(
        self, session: AsyncSession, msg: OutboundMessage, customer_id: int
    ) -> str | None:
        """Why an automatic reply must not go out, if it must not."""
        last_inbound = (
            await session.execute(
                select(Message.automatic)
                .where(
                    Message.conversation_id == msg.conversation_id,
                    Message.direction == Direction.INBOUND.value,
                )
                .order_by(Message.seq.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        if last_inbound:
            return "not sent: automatic replies never answer automatic mail (RFC 3834)"
        since = utcnow() - self.auto_reply_window
        recent = (
            await session.execute(
                select(func.count())
                .select_from(Message)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(
                    Conversation.customer_id == customer_id,
                    Conversation.inbox_id == msg.inbox_id,
                    Message.id != msg.message_id,
                    Message.direction == Direction.OUTBOUND.value,
                    Message.author_kind.in_(_AUTOMATIC_AUTHORS),
                    Message.delivery_status == DeliveryStatus.SENT.value,
                    Message.sent_at >= since,
                )
            )
        ).scalar_one()
        if recent:
            minutes = int(self.auto_reply_window.total_seconds() // 60)
            return (
                "not sent: this customer already got an automatic reply "
                f"in the last {minutes} minutes"
            )
        return None

    async def after_send(
        self, session: AsyncSession, msg: OutboundMessage, receipt: DeliveryReceipt
    ) -> None:
        await record_message_id(
            session,
            msg.inbox_id,
            msg.conversation_id,
            receipt.external_id,
            Direction.OUTBOUND.value,
        )
        token = msg.extra.get("reply_token")
        if msg.extra.get("new_reply_token") and token:
            await session.execute(
                update(Conversation)
                .where(Conversation.id == msg.conversation_id, Conversation.reply_token.is_(None))
                .values(reply_token=token)
            )


def _verified(msg: InboundMessage) -> bool:
    return msg.verified_email is not None and msg.verified_email == msg.sender_id


async def _is_customer_of(
    session: AsyncSession, msg: InboundMessage, conversation: Conversation
) -> bool:
    """Whether this mail's sender address is an identity of the conversation's customer."""
    customer_id = (
        await session.execute(
            select(Identity.customer_id).where(
                Identity.inbox_id == msg.inbox_id, Identity.external_id == msg.sender_id
            )
        )
    ).scalar_one_or_none()
    return customer_id is not None and customer_id == conversation.customer_id


async def record_message_id(
    session: AsyncSession,
    inbox_id: int,
    conversation_id: int,
    header: str | None,
    direction: str,
) -> None:
    normalised = normalise_message_id(header)
    if normalised is None or header is None:
        return
    await insert_ignoring_conflict(
        session,
        EmailMessageId.__table__,  # type: ignore[arg-type]
        {
            "inbox_id": inbox_id,
            "conversation_id": conversation_id,
            "digest": message_id_digest(normalised),
            "message_id_header": header.strip()[:2000],
            "direction": direction,
            "created_at": utcnow(),
        },
        ("inbox_id", "digest"),
    )


def _strings(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
