"""A chat with the bot that reads like the chat: the customer says something through the
real intake (web chat, the in-memory channel), the real bot worker takes its turn,
the test reads what the bot answered and what it recorded."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from bot.engines.builtin import BuiltinEngine
from bot.models import BotConversation, BotReply
from bot.runtime import BotRuntime
from bot.worker import BotWorker, ServingBot
from channels.base import InboundMessage
from conversations.models import Conversation, Inbox, Message
from conversations.service import do_intake
from knowledge_base.commands import import_file
from switchboard.inboxes import do_ensure_default_inboxes
from switchboard.tx import Database

DEMO_KB = Path(__file__).resolve().parents[2] / "knowledge_base" / "demo_kb.json"
_ids = itertools.count(1)


@dataclass
class BotSaid:
    text: str
    html: str | None
    message_id: int
    explanation: BotReply


class Chat:
    def __init__(self, db: Database, inbox_id: int, worker: BotWorker, visitor: str) -> None:
        self.db = db
        self.inbox_id = inbox_id
        self.worker = worker
        self.visitor = visitor
        self.conversation_id = 0

    async def say(self, text: str) -> int:
        """The customer's message, stored by intake; its message id."""
        message = InboundMessage(
            channel="webchat",
            inbox_id=self.inbox_id,
            sender_id=self.visitor,
            external_id=f"{self.visitor}:{next(_ids)}",
            thread_key=self.visitor,
            text=text,
        )
        result = await self.db.run(lambda s: do_intake(s, message))
        self.conversation_id = result.conversation_id
        return result.message_id

    async def ask(self, text: str) -> BotSaid:
        """Say something and let the bot take its turn; what the bot answered."""
        await self.say(text)
        await self.worker.run_once()
        replies = await self.bot_messages()
        assert replies, "the bot did not answer"
        return replies[-1]

    async def bot_messages(self) -> list[BotSaid]:
        async with self.db.reading() as session:
            rows = (
                await session.execute(
                    select(Message, BotReply)
                    .join(BotReply, BotReply.message_id == Message.id)
                    .where(Message.conversation_id == self.conversation_id)
                    .order_by(Message.seq)
                )
            ).all()
        return [BotSaid(m.text, m.html, m.id, r) for m, r in rows]

    async def state(self) -> BotConversation:
        async with self.db.reading() as session:
            state = await session.get(BotConversation, self.conversation_id)
        assert state is not None
        return state

    async def messages(self) -> list[Message]:
        async with self.db.reading() as session:
            return list(
                (
                    await session.execute(
                        select(Message)
                        .where(Message.conversation_id == self.conversation_id)
                        .order_by(Message.seq)
                    )
                ).scalars()
            )


async def webchat_with_bot(db: Database) -> int:
    """The default web-chat inbox, with the bot switched on; its id."""
    await db.run(lambda s: do_ensure_default_inboxes(s))

    async def switch_on(session: Any) -> int:
        inbox = (await session.execute(select(Inbox).where(Inbox.kind == "webchat"))).scalar_one()
        await session.execute(update(Inbox).where(Inbox.id == inbox.id).values(bot_enabled=True))
        return int(inbox.id)

    return await db.run(switch_on)


async def demo_bot(db: Database) -> BotRuntime:
    """The demo knowledge base, published, and a runtime serving the builtin engine."""
    await import_file(db, DEMO_KB, note="tests")
    return BotRuntime(db, BuiltinEngine())


def chat_with(db: Database, inbox_id: int, runtime: ServingBot, visitor: str = "v_") -> Chat:
    visitor = f"{visitor}{next(_ids):06d}"
    return Chat(db, inbox_id, BotWorker(db, runtime), visitor)


async def conversation_of(db: Database, conversation_id: int) -> Conversation:
    async with db.reading() as session:
        found = await session.get(Conversation, conversation_id)
    assert found is not None
    return found
