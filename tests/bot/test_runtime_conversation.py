"""Conversation-level: an admin edits a published article, and the bot's next answer in
a running conversation has the new text, through the real intake and bot worker and a
runtime training in its worker process, with no restart."""

from __future__ import annotations

import json
from pathlib import Path

from bot.engines.builtin import BuiltinEngine
from bot.runtime import BotRuntime
from bot.training import training_pool
from knowledge_base.commands import DEMO_KB
from switchboard.tx import Database
from tests.bot.dialogue_support import chat_with, webchat_with_bot
from tests.bot.test_runtime import LOCKER, LOCKER_PHRASINGS, edit, seed_demo, wait_until
from tests.conftest import create_user

NEW_ANSWER = "Track your parcel at track.example.com with the number in your confirmation mail."


def _demo_answer(key: str) -> str:
    rows = json.loads(Path(DEMO_KB).read_text())
    answer: str = next(row["answer_markdown"] for row in rows if row["key"] == key)
    return answer


async def test_admin_edits_an_article_and_the_next_answer_has_the_new_text(db: Database) -> None:
    await seed_demo(db)
    inbox_id = await webchat_with_bot(db)
    runtime = BotRuntime(db, BuiltinEngine(), executor_factory=training_pool, poll_interval=3600)
    await runtime.start()
    try:
        chat = chat_with(db, inbox_id, runtime)
        before = await chat.ask("where is my order?")
        assert before.explanation.topic == "order_tracking"
        assert before.explanation.article_version == 1
        old_words = "the tracking link appears as soon as it ships"
        assert old_words in _demo_answer("order_tracking_en")
        assert old_words in before.text
        serving = (await runtime.current()).fingerprint

        admin_id = await create_user(db, "ada@example.com", role="admin")
        await edit(
            db,
            "order_tracking_en",
            author=admin_id,
            phrasings=["where is my package", "track my order", *LOCKER_PHRASINGS],
            answer_markdown=NEW_ANSWER,
        )

        async def retrained() -> bool:
            return (await runtime.current()).fingerprint != serving

        await wait_until(retrained, "the runtime serves the edited article")

        after = await chat.ask("where is my order?")
        assert after.explanation.topic == "order_tracking"
        assert after.explanation.article_version == 2
        assert NEW_ANSWER in after.text
        assert old_words not in after.text
        # A phrasing that only the edit taught is understood too.
        locker = await chat.ask(LOCKER)
        assert locker.explanation.topic == "order_tracking"
        assert NEW_ANSWER in locker.text
    finally:
        await runtime.close()
