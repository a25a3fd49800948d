"""Conversation-level: an admin edits a published article, and the bot's next answer in
a running conversation has the new text, through the real intake and bot worker and a
runtime training in its worker process, with no restart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse

from bot.engines.builtin import BuiltinEngine
from bot.runtime import BotRuntime
from bot.training import training_pool
from knowledge_base.commands import DEMO_KB
from knowledge_base.service import get_article_by_key
from switchboard.appkeys import BOT_RUNTIME
from switchboard.tx import Database
from tests.bot.dialogue_support import chat_with, webchat_with_bot
from tests.bot.test_runtime import LOCKER, LOCKER_PHRASINGS, edit, seed_demo, wait_until
from tests.conftest import ClientFactory, create_user, widget_session
from tests.security.support import (
    bearer,
    receive,
    staff_token,
    use_cheap_password_hashing,
)

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


async def _bot_says(widget: ClientWebSocketResponse, n: int, text: str) -> str:
    await widget.send_json({"type": "message", "client_msg_id": f"m-{n:04d}-edit", "text": text})
    while True:
        frame: dict[str, Any] = await receive(widget, "message", within=30)
        if frame["message"]["author_kind"] == "bot":
            return str(frame["message"]["text"])


async def test_in_the_running_hub_an_admins_rest_edit_reaches_the_widget(
    db: Database, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_cheap_password_hashing(monkeypatch)
    await seed_demo(db)
    await webchat_with_bot(db)
    _admin_id, token = await staff_token(db, "ada@example.com", "admin")
    client = await make_client()
    runtime: BotRuntime = client.app[BOT_RUNTIME]

    async def demo_serving() -> bool:
        return "order_tracking" in (await runtime.current()).articles

    await wait_until(demo_serving, "the hub's bot serves the demo knowledge base")
    _, visitor = await widget_session(client)
    widget = await client.ws_connect(f"/widget/ws?token={visitor}")
    await receive(widget, "hello")
    await widget.send_json({"type": "resume", "last_seq": 0})
    before = await _bot_says(widget, 1, "where is my order?")
    assert "the tracking link appears as soon as it ships" in before

    async with db.reading() as session:
        article = await get_article_by_key(session, "order_tracking_en")
    assert article is not None
    patched = await client.patch(
        f"/api/v1/kb/articles/{article.id}",
        json={"answer_markdown": NEW_ANSWER, "change_note": "new tracking site"},
        headers=bearer(token),
    )
    assert patched.status == 200, await patched.text()

    async def edit_serving() -> bool:
        variants = (await runtime.current()).articles["order_tracking"]
        return variants["en"].answer == NEW_ANSWER

    await wait_until(edit_serving, "the hub's bot serves the edited answer")
    after = await _bot_says(widget, 2, "where is my order?")
    assert NEW_ANSWER in after
    await widget.close()
