"""`switchboard kb export-rasa DIR`: the published knowledge base as Rasa 3.x training
data — `nlu.yml` (a retrieval intent `faq/<key>` per article, its question and phrasings
as examples, plus asking for a human and out-of-scope examples in English and Chinese),
`domain.yml` (an `utter_faq/<key>` response per article, as plain text) and `rules.yml`
(intent faq → action utter_faq). The Rasa engine trains on these files."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from knowledge_base.markdown import plain_text
from knowledge_base.service import TrainingArticle

RASA_FORMAT = "3.1"

REQUEST_HUMAN = (
    "I want to talk to a person",
    "can I speak to a human",
    "human please",
    "agent",
    "connect me to a real person",
    "transfer me to customer service",
    "I need to talk to someone",
    "let me speak to an agent",
    "转人工",
    "人工客服",
    "我要找真人",
    "真人客服",
    "我想和客服说话",
    "轉人工",
    "我要找真人客服",
    "請幫我轉接客服人員",
)

OUT_OF_SCOPE = (
    "what's the weather on mars",
    "tell me a joke",
    "who won the football game last night",
    "what is the meaning of life",
    "can you book me a flight to paris",
    "how tall is mount everest",
    "recommend a good movie",
    "what is 17 times 23",
    "今天天气怎么样",
    "给我讲个笑话",
    "你会做饭吗",
    "帮我订一张去北京的机票",
    "世界上最高的山是哪座",
    "今天天氣如何",
    "推薦一部好看的電影",
    "你喜歡什麼音樂",
)

_ENTITY_SYNTAX = str.maketrans({"[": "(", "]": ")", "{": "(", "}": ")"})


class _Block(str):
    """A string YAML writes as a literal block (`examples: |`), the way Rasa's docs do."""


def _block(dumper: Any, data: _Block) -> Any:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(data), style="|")


# A private dumper, so the representer does not leak into every yaml.safe_dump.
_Dumper: Any = type("_Dumper", (yaml.SafeDumper,), {})

_Dumper.add_representer(_Block, _block)


def example_text(text: str) -> str:
    """One example line: whitespace collapsed, and no brackets or braces, which Rasa
    would read as entity annotations ("[Paris](city)")."""
    return re.sub(r"\s+", " ", text.translate(_ENTITY_SYNTAX)).strip()


def _examples(texts: Iterable[str]) -> _Block:
    lines = dict.fromkeys(line for line in map(example_text, texts) if line)
    return _Block("".join(f"- {line}\n" for line in lines))


def _text(answer: str) -> str:
    return _Block(answer) if "\n" in answer else answer


def nlu(articles: Sequence[TrainingArticle]) -> dict[str, Any]:
    intents: list[dict[str, Any]] = [
        {"intent": "request_human", "examples": _examples(REQUEST_HUMAN)},
        {"intent": "out_of_scope", "examples": _examples(OUT_OF_SCOPE)},
    ]
    for article in articles:
        examples = _examples([article.question, *article.phrasings])
        intents.append({"intent": f"faq/{article.key}", "examples": examples})
    return {"version": RASA_FORMAT, "nlu": intents}


def domain(articles: Sequence[TrainingArticle]) -> dict[str, Any]:
    return {
        "version": RASA_FORMAT,
        "intents": ["request_human", "faq", "out_of_scope", "nlu_fallback"],
        "responses": {
            f"utter_faq/{article.key}": [{"text": _text(plain_text(article.answer))}]
            for article in articles
        },
    }


def rules() -> dict[str, Any]:
    return {
        "version": RASA_FORMAT,
        "rules": [{"rule": "answer FAQs", "steps": [{"intent": "faq"}, {"action": "utter_faq"}]}],
    }


def dump(data: dict[str, Any]) -> str:
    text: str = yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=10**6)
    return text


def write_rasa_project(directory: Path, articles: Sequence[TrainingArticle]) -> list[Path]:
    """Write nlu.yml, domain.yml and rules.yml into `directory` (made if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "nlu.yml": dump(nlu(articles)),
        "domain.yml": dump(domain(articles)),
        "rules.yml": dump(rules()),
    }
    written = []
    for name, text in files.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
