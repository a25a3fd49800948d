"""Conversation-level: a customer writes through the real intake, the real bot worker
answers from the demo knowledge base, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import update

from bot.engines.base import Prediction
from bot.models import BotMode
from bot.policy import HandoffReason
from bot.runtime import BotRuntime, LoadedBot
from customers.models import Customer
from switchboard.tx import Database
from tests.bot.dialogue_support import Chat, chat_with, demo_bot, webchat_with_bot
from tickets.service import open_ticket_for


@pytest.fixture
async def runtime(db: Database) -> BotRuntime:
    return await demo_bot(db)


@pytest.fixture
async def inbox_id(db: Database) -> int:
    return await webchat_with_bot(db)


@pytest.fixture
def chat(db: Database, inbox_id: int, runtime: BotRuntime) -> Chat:
    return chat_with(db, inbox_id, runtime)


async def test_a_confident_answer_records_article_version_and_confidence(chat: Chat) -> None:
    said = await chat.ask("how much is shipping?")
    assert "Shipping" in said.text or "shipping" in said.text
    assert said.explanation.kind == "answer"
    assert said.explanation.topic == "shipping_cost"
    assert said.explanation.article_id is not None
    assert said.explanation.article_version == 1
    assert said.explanation.confidence is not None and said.explanation.confidence > 0.5
    assert said.explanation.locale == "en"
    assert (await chat.state()).mode == BotMode.BOT


@pytest.mark.parametrize(
    ("text", "topic", "script_marker"),
    [
        ("what time do you open", "opening_hours", "Monday"),
        ("运费多少钱", "shipping_cost", "运"),
        ("運費多少", "shipping_cost", "運"),
        ("我忘记密码了", "reset_password", "密码"),
        ("忘記密碼了", "reset_password", "密碼"),
        ("can i pay with paypal", "payment_methods", "PayPal"),
    ],
)
async def test_demo_kb_answers_paraphrases_in_the_customers_script(
    chat: Chat, text: str, topic: str, script_marker: str
) -> None:
    said = await chat.ask(text)
    assert said.explanation.kind == "answer", said.text
    assert said.explanation.topic == topic
    assert script_marker in said.text


async def test_answer_text_is_plain_for_channels_and_html_is_sanitised(
    db: Database, inbox_id: int
) -> None:
    hostile = (
        "Read **this** <script>alert(1)</script> [x](javascript:alert(1)) [ok](https://ex.example)"
    )
    loaded = LoadedBot(
        model=_Fixed(Prediction("hostile", 0.99, (("hostile", 0.99),))),
        articles={"hostile": {"en": _article("hostile_en", hostile)}},
        fingerprint="fixed",
    )
    chat = chat_with(db, inbox_id, _Serving(loaded))
    said = await chat.ask("tell me")
    assert "<script>" not in (said.html or "")
    assert 'href="javascript' not in (said.html or "")  # left as inert text
    assert "<strong>this</strong>" in (said.html or "")
    assert "**" not in said.text and "<strong>" not in said.text
    assert "ok (https://ex.example)" in said.text


async def test_an_answer_longer_than_a_message_is_cut_not_lost(db: Database, inbox_id: int) -> None:
    long_answer = "Step. " * 3_000  # 18,000 characters: a valid article, too long a message
    loaded = LoadedBot(
        model=_Fixed(Prediction("long", 0.99, (("long", 0.99),))),
        articles={"long": {"en": _article("long_en", long_answer)}},
        fingerprint="fixed",
    )
    chat = chat_with(db, inbox_id, _Serving(loaded))
    said = await chat.ask("tell me everything")
    assert len(said.text) == 10_000 and said.text.endswith("…")
    assert (said.html or "").count("Step.") == 3_000  # the page can still show it all


async def test_a_reply_that_cannot_be_stored_becomes_a_handoff(db: Database, inbox_id: int) -> None:
    # A lone surrogate cannot be encoded: the sanitiser refuses the answer outright.
    loaded = LoadedBot(
        model=_Fixed(Prediction("broken", 0.99, (("broken", 0.99),))),
        articles={"broken": {"en": _article("broken_en", "half an emoji \ud83d")}},
        fingerprint="fixed",
    )
    chat = chat_with(db, inbox_id, _Serving(loaded))
    said = await chat.ask("tell me")
    assert said.explanation.kind == "handoff"
    assert said.explanation.reason == HandoffReason.ENGINE_UNAVAILABLE
    assert "passing you to a person" in said.text
    assert "could not be stored" in ((await chat.state()).handoff_detail or "")


async def test_clarify_then_pick_by_number(chat: Chat) -> None:
    said = await chat.ask("退货退款")
    assert said.explanation.kind == "clarify", said.text
    assert "1. " in said.text and "2. " in said.text
    options = (await chat.state()).pending_choices or []
    picked = await chat.ask("2")
    assert picked.explanation.kind == "answer"
    assert picked.explanation.topic == options[1]["topic"]
    assert picked.explanation.locale == "zh-Hans"
    assert (await chat.state()).pending_choices is None


async def test_clarify_then_pick_by_the_options_text(chat: Chat) -> None:
    await chat.ask("退货退款")
    options = (await chat.state()).pending_choices or []
    picked = await chat.ask(options[0]["title"])
    assert picked.explanation.kind == "answer"
    assert picked.explanation.topic == options[0]["topic"]


@pytest.mark.parametrize("text", ["I want to talk to a human", "转人工", "轉人工", "真人客服"])
async def test_asking_for_a_person_hands_off_and_says_what_happens(chat: Chat, text: str) -> None:
    said = await chat.ask(text)
    assert said.explanation.kind == "handoff"
    assert said.explanation.reason == HandoffReason.CUSTOMER_ASKED
    assert ("person" in said.text) or ("客服" in said.text)
    if text == "轉人工":
        assert "轉接" in said.text  # traditional script for a traditional request
    state = await chat.state()
    assert state.mode == BotMode.HUMAN
    assert state.handoff_reason == HandoffReason.CUSTOMER_ASKED
    # the agent sees why, as an internal note nobody sends to the customer
    notes = [m for m in await chat.messages() if m.private]
    assert notes and "customer_asked" in notes[-1].text
    # and a ticket is open for the conversation, opened by the hand-off
    async with chat.db.reading() as session:
        ticket = await open_ticket_for(session, chat.conversation_id)
    assert ticket is not None
    assert ticket.source == "bot_handoff"
    assert (ticket.reason or "").startswith("customer_asked")
    # in human mode the bot stays quiet
    await chat.say("hello?")
    await chat.worker.run_once()
    assert len(await chat.bot_messages()) == 1


async def test_out_of_scope_hands_off_with_guesses(chat: Chat) -> None:
    said = await chat.ask("what is the weather in paris")
    assert said.explanation.reason == HandoffReason.OUT_OF_SCOPE
    state = await chat.state()
    assert state.mode == BotMode.HUMAN and state.handoff_guesses is not None


async def test_frustration_hands_off(chat: Chat) -> None:
    said = await chat.ask("this is useless")
    assert said.explanation.reason == HandoffReason.FRUSTRATION
    chinese = chat_with(chat.db, chat.inbox_id, chat.worker.runtime)
    said = await chinese.ask("垃圾，没用")
    assert said.explanation.reason == HandoffReason.FRUSTRATION
    assert "客服" in said.text


async def test_a_second_miss_in_a_row_hands_off(chat: Chat) -> None:
    first = await chat.ask("退货退款")
    assert first.explanation.kind == "clarify"
    second = await chat.ask("退货退款")
    assert second.explanation.kind == "handoff"
    assert second.explanation.reason == HandoffReason.SECOND_MISS


def _vip_customer(chat: Chat, **address: str) -> Any:
    conversation_id = chat.conversation_id

    async def arrange(session: Any) -> None:
        from bot.inbox_settings import do_update_settings
        from conversations.models import Conversation

        conversation = await session.get(Conversation, conversation_id)
        await session.execute(
            update(Customer).where(Customer.id == conversation.customer_id).values(**address)
        )
        rules = [{"field": "email_domain", "value": "bigcorp.example", "reason": "VIP account"}]
        await do_update_settings(session, chat.inbox_id, {"rules": rules}, user_id=None)  # type: ignore[arg-type]

    return arrange


async def test_a_vip_rule_hands_off_at_once(db: Database, chat: Chat) -> None:
    await chat.say("hi")
    await chat.worker.run_once()  # the greeting
    await db.run(_vip_customer(chat, verified_email="ceo@bigcorp.example"))
    said = await chat.ask("how much is shipping")
    assert said.explanation.reason == HandoffReason.RULE
    assert (await chat.state()).handoff_detail == "VIP account"


async def test_a_vip_rule_ignores_an_address_nobody_verified(db: Database, chat: Chat) -> None:
    # A From: header or a widget form can claim any address.
    await chat.say("hi")
    await chat.worker.run_once()  # the greeting
    await db.run(_vip_customer(chat, email="ceo@bigcorp.example"))
    said = await chat.ask("how much is shipping")
    assert said.explanation.reason != HandoffReason.RULE


async def test_engine_outage_hands_off_with_the_reason(db: Database, inbox_id: int) -> None:
    loaded = LoadedBot(model=_Hanging(), articles={}, fingerprint="down")
    chat = chat_with(db, inbox_id, _Serving(loaded))
    chat.worker.policy = type(chat.worker.policy)(engine_timeout=0.2)
    said = await chat.ask("how much is shipping")
    assert said.explanation.reason == HandoffReason.ENGINE_UNAVAILABLE
    assert "timed out" in ((await chat.state()).handoff_detail or "")
    assert "passing you to a person" in said.text


async def test_an_agents_reply_takes_the_conversation_over(chat: Chat, db: Database) -> None:
    from conversations.models import AuthorKind
    from conversations.service import do_reply

    await chat.ask("hello")
    await chat.say("where is my order")
    await db.run(
        lambda s: do_reply(
            s,
            conversation_id=chat.conversation_id,
            text="Let me check.",
            author_kind=AuthorKind.AGENT,
        )
    )
    await chat.worker.run_once()
    assert len(await chat.bot_messages()) == 1  # only the greeting
    state = await chat.state()
    assert (state.mode, state.handoff_reason) == (BotMode.HUMAN, "agent_replied")


async def test_one_bot_turn_per_customer_message(chat: Chat) -> None:
    await chat.ask("hello")
    assert await chat.worker.run_once() == 0
    assert len(await chat.bot_messages()) == 1


# --- doubles for the engine ----------------------------------------------------------------


def _article(key: str, answer: str) -> Any:
    from knowledge_base.service import TrainingArticle

    return TrainingArticle(key, 1, 1, "en", "Hostile?", (), answer)


class _Fixed:
    def __init__(self, prediction: Prediction) -> None:
        self.prediction = prediction

    def predict(self, text: str) -> Prediction:
        return self.prediction


class _Hanging:
    """A Rasa server that never answers."""

    async def predict(self, text: str) -> Prediction:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")


class _Serving:
    def __init__(self, loaded: LoadedBot) -> None:
        self.loaded = loaded

    async def current(self) -> LoadedBot:
        return self.loaded
