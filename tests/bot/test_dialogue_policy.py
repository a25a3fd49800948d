"""The dialogue policy on its own: pure decisions from a prediction and the context."""

from __future__ import annotations

import pytest

from bot.engines.base import OOS, REQUEST_HUMAN, Prediction, unavailable
from bot.policy import (
    Answer,
    BotMemory,
    BotSettings,
    Choice,
    Clarify,
    CustomerFacts,
    Handoff,
    HandoffReason,
    Rephrase,
    Rule,
    SmallTalk,
    asks_for_human,
    decide,
    detect_locale,
    is_frustrated,
    picked,
)
from knowledge_base.service import TrainingArticle


def _article(key: str, locale: str, question: str, answer: str, n: int) -> TrainingArticle:
    return TrainingArticle(key, n, 3, locale, question, (), answer)


ARTICLES = {
    "refund_time": {
        "en": _article("refund_time_en", "en", "How long does a refund take?", "5 days", 1),
        "zh-Hans": _article("refund_time_zh_hans", "zh-Hans", "退款要多久？", "5天", 2),
        "zh-Hant": _article("refund_time_zh_hant", "zh-Hant", "退款要多久？", "5天（繁）", 3),
    },
    "delivery_time": {
        "en": _article("delivery_time_en", "en", "How long is delivery?", "2 days", 4),
        "zh-Hans": _article("delivery_time_zh_hans", "zh-Hans", "送货要多久？", "2天", 5),
    },
}


def _decide(
    prediction: Prediction,
    text: str,
    memory: BotMemory | None = None,
    customer: CustomerFacts | None = None,
    settings: BotSettings | None = None,
) -> object:
    return decide(
        prediction,
        text=text,
        memory=memory or BotMemory(),
        customer=customer or CustomerFacts(),
        settings=settings or BotSettings(),
        articles=ARTICLES,
    ).decision


def confident(label: str, conf: float = 0.9) -> Prediction:
    return Prediction(label, conf, ((label, conf), ("delivery_time", 0.02)))


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("how long does a refund take", "en"),
        ("退款要多久才到账", "zh-Hans"),
        ("退款要多久才到帳", "zh-Hant"),
        ("2", "en"),
    ],
)
def test_locale_follows_the_script_of_the_message(text: str, locale: str) -> None:
    assert detect_locale(text) == locale


def test_shared_characters_and_digits_keep_the_conversation_language() -> None:
    assert detect_locale("你好", previous="zh-Hant") == "zh-Hant"
    assert detect_locale("2", previous="zh-Hans") == "zh-Hans"


def test_confident_answer_uses_the_variant_in_the_customers_script() -> None:
    decision = _decide(confident("refund_time"), "退款要多久才到帳")
    assert isinstance(decision, Answer)
    assert decision.article.key == "refund_time_zh_hant"
    assert decision.article.version == 3
    assert decision.text == "5天（繁）"


def test_close_candidates_are_offered_as_choices_in_the_customers_language() -> None:
    prediction = Prediction(OOS, 0.46, (("delivery_time", 0.46), ("refund_time", 0.26)))
    turn = decide(
        prediction,
        text="退款要多久",
        memory=BotMemory(),
        customer=CustomerFacts(),
        settings=BotSettings(),
        articles=ARTICLES,
    )
    assert isinstance(turn.decision, Clarify)
    assert [c.title for c in turn.decision.choices] == ["送货要多久？", "退款要多久？"]
    assert "1. 送货要多久？" in turn.decision.text
    assert turn.memory.pending == turn.decision.choices
    assert turn.memory.misses == 1


PENDING = (
    Choice("delivery_time", "How long is delivery?", 0.46),
    Choice("refund_time", "How long does a refund take?", 0.26),
)


@pytest.mark.parametrize(
    "text", ["2", "２", "option 2", "How long does a refund take?", "choice:refund_time"]
)
def test_the_customers_pick_after_a_clarify_is_answered(text: str) -> None:
    decision = _decide(
        Prediction(OOS, 0.0), text, BotMemory(misses=1, locale="en", pending=PENDING)
    )
    assert isinstance(decision, Answer)
    assert decision.topic == "refund_time"


def test_a_number_outside_the_choices_is_no_pick() -> None:
    assert picked("7", PENDING) is None
    assert picked("第二个", PENDING) == PENDING[1]


@pytest.mark.parametrize(
    "text",
    [
        "human",
        "I want an agent",
        "can I talk to a real person",
        "人工",
        "转人工",
        "轉人工",
        "真人客服",
        "我要人工服務",
    ],
)
def test_an_explicit_request_hands_off_even_if_the_model_disagrees(text: str) -> None:
    assert asks_for_human(text)
    decision = _decide(confident("refund_time", 0.99), text)
    assert isinstance(decision, Handoff)
    assert decision.reason is HandoffReason.CUSTOMER_ASKED


def test_the_engines_request_human_label_hands_off_too() -> None:
    decision = _decide(Prediction(REQUEST_HUMAN, 0.9, ()), "could somebody else look at it")
    assert isinstance(decision, Handoff)
    assert decision.reason is HandoffReason.CUSTOMER_ASKED


def test_artificial_intelligence_is_not_a_request_for_a_person() -> None:
    assert not asks_for_human("你们用人工智能吗")


@pytest.mark.parametrize(
    "text",
    [
        "this is useless",
        "you're not helping",
        "垃圾",
        "没用",
        "沒用",
        "where is my order???",
        "hello!!!",
        "WHERE IS MY ORDER",
        "答非所問",
    ],
)
def test_frustration_is_detected_in_english_and_chinese(text: str) -> None:
    assert is_frustrated(text)


@pytest.mark.parametrize(
    "text", ["where is my order?", "I ordered a USB cable", "谢谢", "OK", "hi!"]
)
def test_calm_messages_are_not_frustration(text: str) -> None:
    assert not is_frustrated(text)


def test_frustration_hands_off_with_the_reason() -> None:
    decision = _decide(confident("refund_time"), "this is useless, how long does a refund take")
    assert isinstance(decision, Handoff)
    assert decision.reason is HandoffReason.FRUSTRATION


def test_out_of_scope_hands_off_with_best_guesses_and_says_what_happens_next() -> None:
    decision = _decide(Prediction(OOS, 0.04, (("refund_time", 0.04),)), "what's the weather")
    assert isinstance(decision, Handoff)
    assert decision.reason is HandoffReason.OUT_OF_SCOPE
    assert decision.guesses == (("refund_time", 0.04),)
    assert "passing you to a person" in decision.text


def test_unsure_asks_to_rephrase_once_then_hands_off() -> None:
    unsure = Prediction(OOS, 0.3, (("refund_time", 0.3), ("delivery_time", 0.01)))
    first = decide(
        unsure, text="money?", memory=BotMemory(), customer=CustomerFacts(),
        settings=BotSettings(), articles=ARTICLES,
    )  # fmt: skip
    assert isinstance(first.decision, Rephrase)
    second = _decide(unsure, "money??", first.memory)
    assert isinstance(second, Handoff)
    # "money??" is not frustration (two marks), so the reason is the second miss
    assert second.reason is HandoffReason.SECOND_MISS


def test_a_vip_rule_hands_off_before_anything_the_bot_knows() -> None:
    settings = BotSettings(rules=(Rule("email_domain", "bigcorp.example", "VIP account"),))
    customer = CustomerFacts(emails=("ceo@bigcorp.example",))
    decision = _decide(
        confident("refund_time"),
        "how long does a refund take",
        customer=customer,
        settings=settings,
    )
    assert isinstance(decision, Handoff)
    assert (decision.reason, decision.detail) == (HandoffReason.RULE, "VIP account")
    assert Rule("tier", "VIP").matches(CustomerFacts(tier="vip"))
    assert Rule("tag", "key-account").matches(CustomerFacts(tags=frozenset({"Key-Account"})))


def test_an_engine_outage_hands_off_with_its_reason() -> None:
    decision = _decide(unavailable("engine timed out after 5 s"), "退款要多久")
    assert isinstance(decision, Handoff)
    assert decision.reason is HandoffReason.ENGINE_UNAVAILABLE
    assert decision.detail == "engine timed out after 5 s"
    assert decision.text.endswith("客服人员会尽快在这里回复您。")


def test_greetings_are_small_talk_in_the_customers_script() -> None:
    decision = _decide(Prediction("greeting", 0.99, ()), "你們好")
    assert isinstance(decision, SmallTalk)
    assert "真人" in decision.text


def test_a_weak_request_human_guess_is_not_taken_for_a_request() -> None:
    weak = Prediction(REQUEST_HUMAN, 0.24, (("request_human", 0.24), ("refund_time", 0.13)))
    decision = _decide(weak, "I want to buy a laptop")
    assert isinstance(decision, Handoff)
    assert decision.reason is HandoffReason.OUT_OF_SCOPE
