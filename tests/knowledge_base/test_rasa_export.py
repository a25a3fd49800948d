"""The Rasa export loads back as the Rasa 3.x structure the Rasa engine trains on."""

from __future__ import annotations

from pathlib import Path

import yaml

from knowledge_base.rasa_export import write_rasa_project
from knowledge_base.service import TrainingArticle

ARTICLES = [
    TrainingArticle(
        key="opening_hours",
        article_id=1,
        version=3,
        locale="en",
        question="When are you open?",
        phrasings=("opening hours", "open on [sunday]?", "what time\ndo you open", "- yes: no"),
        answer="We are open **9:00-18:00**.\n\nSee [hours](https://x.example).",
    ),
    TrainingArticle(
        key="shipping_cost",
        article_id=2,
        version=1,
        locale="zh-Hant",
        question="運費多少？",
        phrasings=("送貨要錢嗎", "运费怎么算"),
        answer="滿 100 元免運費。",
    ),
]


def _examples(block: str) -> list[str]:
    lines = block.splitlines()
    assert all(line.startswith("- ") for line in lines)
    return [line[2:] for line in lines]


def test_nlu_domain_and_rules_have_rasa_structure(tmp_path: Path) -> None:
    written = write_rasa_project(tmp_path / "rasa", ARTICLES)
    assert [p.name for p in written] == ["nlu.yml", "domain.yml", "rules.yml"]
    nlu = yaml.safe_load((tmp_path / "rasa" / "nlu.yml").read_text(encoding="utf-8"))
    domain = yaml.safe_load((tmp_path / "rasa" / "domain.yml").read_text(encoding="utf-8"))
    rules = yaml.safe_load((tmp_path / "rasa" / "rules.yml").read_text(encoding="utf-8"))

    assert nlu["version"] == domain["version"] == rules["version"] == "3.1"
    intents = {item["intent"]: _examples(item["examples"]) for item in nlu["nlu"]}
    assert set(intents) == {
        "request_human",
        "out_of_scope",
        "faq/opening_hours",
        "faq/shipping_cost",
    }
    assert intents["faq/opening_hours"] == [
        "When are you open?",
        "opening hours",
        "open on (sunday)?",  # brackets would be read as an entity annotation
        "what time do you open",
        "- yes: no",
    ]
    assert intents["faq/shipping_cost"] == ["運費多少？", "送貨要錢嗎", "运费怎么算"]
    for builtin in ("request_human", "out_of_scope"):
        assert any(e.isascii() for e in intents[builtin])
        assert any(not e.isascii() for e in intents[builtin])
    assert "转人工" in intents["request_human"] and "轉人工" in intents["request_human"]

    assert domain["intents"] == ["request_human", "faq", "out_of_scope", "nlu_fallback"]
    assert domain["responses"] == {
        "utter_faq/opening_hours": [
            {"text": "We are open 9:00-18:00.\nSee hours (https://x.example)."}
        ],
        "utter_faq/shipping_cost": [{"text": "滿 100 元免運費。"}],
    }
    assert rules["rules"] == [
        {"rule": "answer FAQs", "steps": [{"intent": "faq"}, {"action": "utter_faq"}]}
    ]


def test_an_empty_knowledge_base_still_writes_valid_files(tmp_path: Path) -> None:
    write_rasa_project(tmp_path, [])
    nlu = yaml.safe_load((tmp_path / "nlu.yml").read_text(encoding="utf-8"))
    domain = yaml.safe_load((tmp_path / "domain.yml").read_text(encoding="utf-8"))
    assert [i["intent"] for i in nlu["nlu"]] == ["request_human", "out_of_scope"]
    assert domain["responses"] == {}
