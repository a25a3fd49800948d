"""The demo knowledge base through the builtin engine and the policy at the default
thresholds: paraphrases that are not in the knowledge base, in English, simplified and
traditional Chinese. A wrong answer is the worst outcome, so none is allowed; a miss
(rephrase, clarify) is allowed for a few."""

from __future__ import annotations

import json

import pytest

from bot.engines.builtin import BuiltinEngine
from bot.policy import (
    Answer,
    BotMemory,
    BotSettings,
    CustomerFacts,
    Decision,
    decide,
    detect_locale,
)
from bot.training import by_topic, examples_from
from knowledge_base.service import TrainingArticle
from tests.bot.dialogue_support import DEMO_KB

# (paraphrase, topic): none of these texts is a question or phrasing in demo_kb.json.
PARAPHRASES = [
    ("are you open on sunday", "opening_hours"),
    ("what are your hours on saturday", "opening_hours"),
    ("你们周日上班吗", "opening_hours"),
    ("你們週日有上班嗎", "opening_hours"),
    ("do you charge for delivery", "shipping_cost"),
    ("is shipping free", "shipping_cost"),
    ("邮费怎么算", "shipping_cost"),
    ("郵費怎麼算", "shipping_cost"),
    ("when will my parcel arrive", "delivery_time"),
    ("how many days for delivery", "delivery_time"),
    ("多久能到货", "delivery_time"),
    ("多久能到貨", "delivery_time"),
    ("can I send it back", "return_policy"),
    ("how do I return an item", "return_policy"),
    ("可以退货吗", "return_policy"),
    ("可以退貨嗎", "return_policy"),
    ("when will I get my money back", "refund_time"),
    ("退款什么时候到账", "refund_time"),
    ("退款什麼時候到帳", "refund_time"),
    ("track my order", "order_tracking"),
    ("where is my parcel", "order_tracking"),
    ("我的包裹在哪里", "order_tracking"),
    ("我的包裹在哪裡", "order_tracking"),
    ("I want to cancel my order", "cancel_order"),
    ("取消订单", "cancel_order"),
    ("取消訂單", "cancel_order"),
    ("can I change my delivery address", "change_address"),
    ("修改收货地址", "change_address"),
    ("修改收貨地址", "change_address"),
    ("do you accept credit cards", "payment_methods"),
    ("可以用支付宝吗", "payment_methods"),
    ("可以用支付寶嗎", "payment_methods"),
    ("I can't log in, forgot password", "reset_password"),
    ("怎么重置密码", "reset_password"),
    ("怎麼重設密碼", "reset_password"),
    ("is there a warranty", "warranty"),
    ("保修多久", "warranty"),
    ("保固多久", "warranty"),
    ("how can I contact you", "contact_us"),
    ("你们的电话是多少", "contact_us"),
    ("你們的電話是多少", "contact_us"),
]


@pytest.fixture(scope="module")
def decisions() -> dict[str, Decision]:
    rows = json.loads(DEMO_KB.read_text("utf-8"))
    articles = [
        TrainingArticle(
            r["key"], n, 1, r["locale"], r["question"], tuple(r["phrasings"]), r["answer_markdown"]
        )
        for n, r in enumerate(rows, 1)
    ]
    model = BuiltinEngine().train(examples_from(articles))
    topics = by_topic(articles)
    return {
        text: decide(
            model.predict(text),
            text=text,
            memory=BotMemory(),
            customer=CustomerFacts(),
            settings=BotSettings(),
            articles=topics,
        ).decision
        for text, _topic in PARAPHRASES
    }


def test_no_paraphrase_gets_a_wrong_answer(decisions: dict[str, Decision]) -> None:
    wrong = [
        (text, d.topic)
        for text, topic in PARAPHRASES
        if isinstance(d := decisions[text], Answer) and d.topic != topic
    ]
    assert wrong == []


def test_most_paraphrases_are_answered_in_each_script(decisions: dict[str, Decision]) -> None:
    # Measured with the word-vector builtin engine: 39 of 41 answered (English 17/17,
    # simplified 12/13, traditional 10/11; 保固 and 保修 share every character, so both
    # read as simplified); 我的包裹在哪里/哪裡 is handed off, never answered wrongly. With
    # the earlier TF-IDF-only engine it was 33 of 41, the rest asked to rephrase.
    answered: dict[str, int] = {}
    asked: dict[str, int] = {}
    for text, _topic in PARAPHRASES:
        locale = detect_locale(text)
        asked[locale] = asked.get(locale, 0) + 1
        decision = decisions[text]
        if isinstance(decision, Answer):
            assert decision.article.locale == locale, text  # the reply's script is the question's
            answered[locale] = answered.get(locale, 0) + 1
    assert sum(answered.values()) >= 35
    minimum = {"en": 0.9, "zh-Hans": 0.8, "zh-Hant": 0.8}
    for locale, share in minimum.items():
        assert answered[locale] >= asked[locale] * share, (locale, answered, asked)
