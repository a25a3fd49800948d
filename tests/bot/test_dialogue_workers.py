"""The bot inside the running hub: a widget visitor gets the bot's answer over the
socket from the app's own worker; two workers on one database take each turn once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.models import BotReply
from bot.runtime import BotRuntime
from bot.service import (
    TurnLost,
    TurnPolicy,
    claim_turns,
    do_complete_turn,
    find_pending_turns,
    load_turn,
)
from bot.worker import BotWorker
from conversations.models import Message
from knowledge_base.service import do_update_article
from switchboard.appkeys import BOT_RUNTIME
from switchboard.db import create_engine, create_sessionmaker, utcnow
from switchboard.settings import Settings
from switchboard.tx import Database
from tests.bot.dialogue_support import chat_with, demo_bot, webchat_with_bot
from tests.conftest import ClientFactory, create_user, login, widget_session
from tests.security.support import receive, use_cheap_password_hashing


@pytest.fixture(autouse=True)
def _cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    use_cheap_password_hashing(monkeypatch)


async def test_a_widget_visitor_gets_the_bots_answer_live(
    db: Database, make_client: ClientFactory
) -> None:
    await webchat_with_bot(db)
    await demo_bot(db)
    client = await make_client()
    # Served once the first training is done: before that (5 s at most) the bot hands
    # off, saying it has no model yet.
    await client.app[BOT_RUNTIME].current()
    _, token = await widget_session(client)
    widget = await client.ws_connect(f"/widget/ws?token={token}")
    await receive(widget, "hello")
    await widget.send_json({"type": "resume", "last_seq": 0})
    await widget.send_json(
        {"type": "message", "client_msg_id": "m-0001-abcd", "text": "运费多少钱"}
    )
    await receive(widget, "ack")
    first = await _next_bot_message(widget)
    assert "运费" in first["text"]  # the simplified-Chinese article
    assert first["choices"] == []

    # "did you mean" comes with buttons; a press sends the option's text
    await widget.send_json({"type": "message", "client_msg_id": "m-0002-abcd", "text": "退货退款"})
    clarify = await _next_bot_message(widget)
    choices = clarify["choices"]
    assert len(choices) >= 2 and f"2. {choices[1]}" in clarify["text"]
    await widget.send_json({"type": "message", "client_msg_id": "m-0003-abcd", "text": choices[1]})
    answer = await _next_bot_message(widget)
    assert answer["choices"] == [] and answer["text"] != clarify["text"]
    await widget.close()


async def _next_bot_message(widget: Any) -> dict[str, Any]:
    while True:
        # The hub's first training (word vectors, in a worker process) may still be
        # running when the first message arrives; a loaded machine needs more than 5 s.
        frame = await receive(widget, "message", within=30)
        if frame["message"]["author_kind"] == "bot":
            return dict(frame["message"])


async def test_two_workers_take_each_turn_exactly_once(db: Database, settings: Settings) -> None:
    inbox_id = await webchat_with_bot(db)
    runtime: BotRuntime = await demo_bot(db)
    chats = [chat_with(db, inbox_id, runtime) for _ in range(8)]
    for chat in chats:
        await chat.say("how much is shipping")

    engines = [create_engine(settings.database_url) for _ in range(2)]
    try:
        workers = [
            BotWorker(Database(e, create_sessionmaker(e), db.bus), runtime, TurnPolicy(batch=3))
            for e in engines
        ]
        for _ in range(20):
            handled = await asyncio.gather(*(w.run_once() for w in workers))
            if not any(handled):
                break
    finally:
        for engine in engines:
            await engine.dispose()

    async with db.reading() as session:
        per_conversation = dict(
            (
                await session.execute(
                    select(Message.conversation_id, func.count())
                    .join(BotReply, BotReply.message_id == Message.id)
                    .group_by(Message.conversation_id)
                )
            ).all()
        )
    assert per_conversation == {chat.conversation_id: 1 for chat in chats}


async def test_a_turn_whose_worker_died_is_taken_again_and_the_late_worker_stores_nothing(
    db: Database,
) -> None:
    inbox_id = await webchat_with_bot(db)
    runtime = await demo_bot(db)
    chat = chat_with(db, inbox_id, runtime)
    await chat.say("how much is shipping")

    # A worker claimed the turn five minutes ago and died: its lease has run out.
    dead = BotWorker(db, runtime)
    then = utcnow() - timedelta(minutes=5)
    async with db.reading() as session:
        pending = await find_pending_turns(session, then, dead.policy)
    claimed = await db.run(lambda s: claim_turns(s, then, dead.owner, dead.policy, pending))
    assert claimed == [chat.conversation_id]
    async with db.reading() as session:
        stale = await load_turn(session, chat.conversation_id, dead.owner)
    assert stale is not None

    assert await chat.worker.run_once() == 1
    with pytest.raises(TurnLost):
        await db.run(lambda s: do_complete_turn(s, stale, None, owner=dead.owner))
    said = await chat.bot_messages()
    assert [s.explanation.topic for s in said] == ["shipping_cost"]


async def test_an_edited_answer_is_used_after_retraining(db: Database) -> None:
    inbox_id = await webchat_with_bot(db)
    runtime = await demo_bot(db)
    first = await chat_with(db, inbox_id, runtime).ask("how much is shipping")
    assert first.explanation.article_version == 1

    async def edit(session: Any) -> None:
        await do_update_article(
            session,
            first.explanation.article_id,
            {"answer_markdown": "Shipping is **free** this week."},
            author_user_id=None,
        )

    await db.run(edit)
    assert await runtime.refresh()
    again = await chat_with(db, inbox_id, runtime).ask("how much is shipping")
    assert again.text == "Shipping is free this week."
    assert again.explanation.article_id == first.explanation.article_id
    assert again.explanation.article_version == 2


async def test_the_agent_inbox_hears_the_handoff_live(
    db: Database, make_client: ClientFactory
) -> None:
    await webchat_with_bot(db)
    await demo_bot(db)
    client = await make_client()
    # Served once the first training is done: before that (5 s at most) the bot hands
    # off, saying it has no model yet.
    await client.app[BOT_RUNTIME].current()
    _, token = await widget_session(client)  # before the login: no session cookie yet
    await create_user(db, "alex@example.com")
    await login(client, "alex@example.com")
    inbox = await client.ws_connect("/inbox/ws")
    widget = await client.ws_connect(f"/widget/ws?token={token}")
    await receive(widget, "hello")
    await widget.send_json({"type": "message", "client_msg_id": "m-0001-abcd", "text": "轉人工"})
    changed = await receive(inbox, "bot.state_changed", within=30)
    handoff = changed["data"]["bot"]["handoff"]
    assert changed["data"]["bot"]["mode"] == "human"
    assert handoff["reason"] == "customer_asked"
    told = await _next_bot_message(widget)
    assert "轉接" in told["text"]  # told in traditional Chinese what happens next
    await widget.close()
    await inbox.close()


async def test_a_message_written_while_the_bot_thinks_gets_its_own_turn(db: Database) -> None:
    inbox_id = await webchat_with_bot(db)
    chat = chat_with(db, inbox_id, await demo_bot(db))
    worker = chat.worker
    await chat.say("how much is shipping")
    now = utcnow()
    async with db.reading() as session:
        pending = await find_pending_turns(session, now, worker.policy)
    await db.run(lambda s: claim_turns(s, now, worker.owner, worker.policy, pending))
    async with db.reading() as session:
        turn_input = await load_turn(session, chat.conversation_id, worker.owner)
    assert turn_input is not None
    turn, _fingerprint = await worker._decide(turn_input)
    await chat.say("and what payment methods do you take")  # before the bot's reply is stored
    await db.run(lambda s: do_complete_turn(s, turn_input, turn, owner=worker.owner))
    assert await worker.run_once() == 1
    assert [s.explanation.topic for s in await chat.bot_messages()] == [
        "shipping_cost",
        "payment_methods",
    ]


async def test_switchboard_demo_switches_the_bot_on_for_web_chat(
    db: Database, settings: Settings
) -> None:
    from sqlalchemy import select as select_

    from conversations.models import Inbox
    from switchboard.cli import _seed_demo

    await _seed_demo(settings)
    async with db.reading() as session:
        kinds = dict((await session.execute(select_(Inbox.kind, Inbox.bot_enabled))).all())
    assert kinds["webchat"] is True


async def test_only_a_customer_message_in_a_bot_inbox_wakes_the_worker(db: Database) -> None:
    """The worker hears every event on the inbox topic, in the publisher's turn; it wakes
    for a customer's message in an inbox with the bot on, not for other inboxes' or for
    agents' messages (each wake-up is a pass: a read of pending turns)."""
    from conversations.events import MessageCreated
    from switchboard.inboxes import do_ensure_inbox

    bot_inbox = await webchat_with_bot(db)
    other = await db.run(
        lambda s: do_ensure_inbox(s, key="email:other", kind="email", name="Other")
    )
    worker = BotWorker(db, await demo_bot(db))

    def message(inbox_id: int, author: str) -> MessageCreated:
        return MessageCreated(
            actor="test",
            conversation_id=1,
            inbox_id=inbox_id,
            message={"author_kind": author},
            conversation={},
        )

    # Before the worker has read which inboxes have the bot, any customer message wakes it.
    worker.heard(message(other.id, "customer"))
    assert worker._wake.is_set()
    await worker.run_once()  # a pass reads the bot inboxes
    for heard, wakes in [
        (message(other.id, "customer"), False),
        (message(bot_inbox, "agent"), False),
        (message(bot_inbox, "customer"), True),
    ]:
        worker._wake.clear()
        worker.heard(heard)
        assert worker._wake.is_set() is wakes, heard
