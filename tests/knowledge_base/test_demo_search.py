"""On the demo knowledge base, questions worded unlike any phrasing still find the right
topic, in every language and script."""

from __future__ import annotations

import json

import pytest

from knowledge_base.commands import DEMO_KB
from knowledge_base.search import SearchIndex

ARTICLES = json.loads(DEMO_KB.read_text(encoding="utf-8"))
INDEX = SearchIndex.build(
    (n, a["question"], a["phrasings"], a["answer_markdown"]) for n, a in enumerate(ARTICLES)
)


@pytest.mark.parametrize(
    ("query", "topic"),
    [
        ("are you open on saturday", "opening_hours"),
        ("deliv charges", "shipping_cost"),
        ("refund take", "refund_time"),
        ("forgot passw", "reset_password"),
        ("退款要多久", "refund_time"),
        ("運費怎麼計算", "shipping_cost"),
        ("忘记密码", "reset_password"),
        ("保固", "warranty"),
        ("取消訂單", "cancel_order"),
    ],
)
def test_unseen_wording_finds_the_topic(query: str, topic: str) -> None:
    best = ARTICLES[INDEX.search(query)[0].article_id]["key"]
    assert best.startswith(topic), (query, best)


def test_chinese_in_either_script_finds_both_chinese_articles() -> None:
    keys = [ARTICLES[hit.article_id]["key"] for hit in INDEX.search("退貨政策")[:2]]
    assert sorted(keys) == ["return_policy_zh_hans", "return_policy_zh_hant"]
