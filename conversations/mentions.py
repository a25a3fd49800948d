"""Internal notes that name teammates: each named person gets a `mentions` row and a
live `MentionCreated` on their own topic (every tab of theirs, on any process).

Who may be named is the caller's decision (`web.conversation_api` checks that each
person is active staff who may see the conversation): a note's text must not reach
someone who could not open it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.assist_models import Mention
from conversations.models import AuthorKind, Conversation, Message
from conversations.service import do_reply, message_view
from switchboard.db import utcnow
from switchboard.events import Event, register, user_topic
from switchboard.models import User
from switchboard.tx import emit

MAX_MENTIONS = 20
EXCERPT = 140


@register
@dataclasses.dataclass(frozen=True)
class MentionCreated(Event):
    """Someone named this user in an internal note."""

    type_name: ClassVar[str] = "mention.created"

    mention_id: int
    mentioned_user_id: int
    conversation_id: int
    inbox_id: int
    message_id: int
    author_name: str
    excerpt: str

    def topics(self) -> tuple[str, ...]:
        return (user_topic(self.mentioned_user_id),)


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= EXCERPT else flat[: EXCERPT - 1] + "…"


async def do_add_note(
    session: AsyncSession,
    *,
    conversation: Conversation,
    author: User,
    text: str,
    mentioned: Sequence[User],
    attachment_ids: Sequence[str] = (),
) -> tuple[Message, list[Mention]]:
    """Store an internal note (never sent to the customer) and its mentions."""
    message = await do_reply(
        session,
        conversation_id=conversation.id,
        text=text,
        author_kind=AuthorKind.AGENT,
        author_user_id=author.id,
        private=True,
        attachment_ids=attachment_ids,
    )
    now = utcnow()
    rows = [
        Mention(
            message_id=message.id,
            conversation_id=conversation.id,
            mentioned_user_id=person.id,
            author_user_id=author.id,
            created_at=now,
        )
        for person in {p.id: p for p in mentioned if p.id != author.id}.values()
    ]
    session.add_all(rows)
    await session.flush()
    for row in rows:
        emit(
            session,
            MentionCreated(
                actor=f"agent:{author.id}",
                mention_id=row.id,
                mentioned_user_id=row.mentioned_user_id,
                conversation_id=conversation.id,
                inbox_id=conversation.inbox_id,
                message_id=message.id,
                author_name=author.name,
                excerpt=_excerpt(message.text),
            ),
        )
    return message, rows


async def list_mentions(
    session: AsyncSession,
    user_id: int,
    *,
    visible: ColumnElement[bool],
    unread_only: bool,
    limit: int,
) -> list[dict[str, Any]]:
    """The user's mentions, newest first, in conversations they may still see."""
    query = (
        select(Mention, Message, User.name)
        .join(Message, Message.id == Mention.message_id)
        .join(Conversation, Conversation.id == Mention.conversation_id)
        .outerjoin(User, User.id == Mention.author_user_id)
        .where(Mention.mentioned_user_id == user_id, visible)
        .order_by(Mention.id.desc())
        .limit(limit)
    )
    if unread_only:
        query = query.where(Mention.read_at.is_(None))
    return [
        {
            "id": mention.id,
            "conversation_id": mention.conversation_id,
            "message": message_view(message),
            "author_name": author_name,
            "created_at": mention.created_at.isoformat(),
            "read_at": mention.read_at.isoformat() if mention.read_at else None,
        }
        for mention, message, author_name in (await session.execute(query)).all()
    ]


async def do_mark_mentions_read(
    session: AsyncSession, user_id: int, *, conversation_id: int | None = None
) -> int:
    """Mark the user's unread mentions read (those of one conversation, or all)."""
    query = update(Mention).where(Mention.mentioned_user_id == user_id, Mention.read_at.is_(None))
    if conversation_id is not None:
        query = query.where(Mention.conversation_id == conversation_id)
    result = await session.execute(query.values(read_at=utcnow()))
    return int(getattr(result, "rowcount", 0) or 0)
