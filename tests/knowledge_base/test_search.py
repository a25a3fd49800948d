"""Search finds articles the way customers and agents type: partial English words,
Chinese without spaces, traditional characters for an article written in simplified."""

from __future__ import annotations

from knowledge_base.search import SearchIndex, index_terms

DOCS = [
    (1, "开门时间是几点？", ["你们几点营业", "营业时间"], "我们 **9:00-18:00** 营业。"),
    (2, "How do I get a refund?", ["refund my order", "money back"], "Refunds take 5 days."),
    (3, "運費多少？", ["送貨要錢嗎", "运费怎么算"], "滿 100 元免運費。"),
    (
        4,
        "Shipping costs",
        ["how much is delivery"],
        "Shipping is free over $50; see [rates](https://x.example).",
    ),
    (5, "Change my password", ["reset password", "forgot my password"], "Use *Forgot password*."),
]
INDEX = SearchIndex.build(DOCS)


def ids(query: str) -> list[int]:
    return [hit.article_id for hit in INDEX.search(query)]


def test_traditional_query_finds_simplified_article() -> None:
    assert ids("開門時間") == [1]
    assert ids("營業") == [1]


def test_simplified_query_finds_traditional_article() -> None:
    assert ids("运费") == [3]
    assert ids("送货要钱吗")[0] == 3


def test_english_partial_words_and_case() -> None:
    assert ids("refun") == [2]
    assert ids("REFUND") == [2]
    assert ids("passw")[0] == 5
    assert ids("ship")[0] == 4


def test_answers_are_searched_too() -> None:
    assert ids("free") == [4]
    assert ids("免运费") == [3]


def test_ranking_prefers_the_better_match() -> None:
    # "password" is in article 5's question and phrasings; a question match outranks
    # a passing mention.
    index = SearchIndex.build([*DOCS, (6, "Account security", [], "Never share your password.")])
    assert [hit.article_id for hit in index.search("password")] == [5, 6]


def test_nothing_matches_nonsense_or_empty_queries() -> None:
    assert ids("xyzzy") == []
    assert ids("") == []
    assert ids("?!") == []


def test_full_width_and_mixed_text_tokenise() -> None:
    assert index_terms("Ｒｅｆｕｎｄ 開門abc") == ["refund", "开", "门", "开门", "abc"]
