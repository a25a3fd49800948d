"""Missed questions: customer messages the bot could not answer, kept as a query over
the bot's explanations (`bot_replies`) so admins can turn them into new phrasings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import BotReply
from bot.policy import HandoffReason
from conversations.models import Message
from switchboard.db import utcnow
from switchboard.errors import NotFound

# Reasons that mean "the bot did not know": these make the missed-questions list.
MISSED_REASONS = (
    HandoffReason.OUT_OF_SCOPE,
    HandoffReason.SECOND_MISS,
    HandoffReason.FRUSTRATION,
)


def _missed() -> Any:
    return or_(
        BotReply.kind.in_(["clarify", "rephrase"]),
        and_(BotReply.kind == "handoff", BotReply.reason.in_([r.value for r in MISSED_REASONS])),
    )


async def missed_questions(
    session: AsyncSession, *, inbox_ids: Sequence[int] | None, limit: int = 100
) -> list[dict[str, Any]]:
    """Customer messages the bot could not answer (out of scope, unsure, clarify, hand-off
    for a miss), newest first, with its best guesses: material for new phrasings."""
    question = Message.__table__.alias("question")
    query = (
        select(BotReply, question.c.text)
        .join(question, question.c.id == BotReply.question_message_id)
        .where(_missed(), BotReply.dismissed_at.is_(None))
        .order_by(BotReply.created_at.desc(), BotReply.message_id.desc())
        .limit(limit)
    )
    if inbox_ids is not None:
        query = query.where(BotReply.inbox_id.in_(list(inbox_ids)))
    rows = (await session.execute(query)).all()
    return [
        {
            "id": reply.message_id,
            "conversation_id": reply.conversation_id,
            "inbox_id": reply.inbox_id,
            "question": text,
            "kind": reply.kind,
            "reason": reply.reason,
            "locale": reply.locale,
            "guesses": [{"topic": label, "confidence": conf} for label, conf in reply.guesses],
            "created_at": reply.created_at.isoformat(),
        }
        for reply, text in rows
    ]


async def do_dismiss_missed(
    session: AsyncSession, reply_message_id: int, *, user_id: int, inbox_ids: Sequence[int] | None
) -> None:
    reply = await session.get(BotReply, reply_message_id)
    if reply is None or (inbox_ids is not None and reply.inbox_id not in inbox_ids):
        raise NotFound("missed question not found")
    if reply.dismissed_at is None:
        reply.dismissed_at = utcnow()
        reply.dismissed_by_user_id = user_id
