"""From the published knowledge base to the engine's training examples.

An article's locale variants (``refund_time_en``, ``refund_time_zh_hans``, …) share one
label, their *topic*, because engines normalise traditional to simplified Chinese and
would otherwise split their confidence between twins (`bot.engines.base`, point 4).
The policy picks the variant in the customer's locale after prediction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

from bot.engines.base import TrainingExample
from knowledge_base.service import TrainingArticle


def topic_of(article: TrainingArticle) -> str:
    """The label an article trains under: its key without a trailing locale suffix
    (``_en``, ``_zh_hans``, ``_zh_hant`` for locale ``zh-Hant``), else the key."""
    suffix = "_" + article.locale.lower().replace("-", "_")
    if article.key.endswith(suffix) and len(article.key) > len(suffix):
        return article.key[: -len(suffix)]
    return article.key


def examples_from(articles: Iterable[TrainingArticle]) -> list[TrainingExample]:
    """Each article's question and phrasings, labelled with its topic."""
    examples: list[TrainingExample] = []
    for article in articles:
        label = topic_of(article)
        for text in (article.question, *article.phrasings):
            if text.strip():
                examples.append(TrainingExample(text=text, label=label))
    return examples


def by_topic(articles: Iterable[TrainingArticle]) -> dict[str, dict[str, TrainingArticle]]:
    """topic → locale → article."""
    grouped: dict[str, dict[str, TrainingArticle]] = {}
    for article in articles:
        grouped.setdefault(topic_of(article), {})[article.locale] = article
    return grouped


def fingerprint(articles: Sequence[TrainingArticle], engine_name: str) -> str:
    """Names one training set: the engine and every published article at its version.
    Equal fingerprints mean the model would be the same, so nothing to retrain."""
    digest = hashlib.sha256(engine_name.encode())
    for article in sorted(articles, key=lambda a: a.article_id):
        digest.update(f"|{article.article_id}:{article.version}".encode())
    return digest.hexdigest()[:16]


def pick_variant(variants: Mapping[str, TrainingArticle], locale: str | None) -> TrainingArticle:
    """The variant for ``locale``: exact, then same language (``zh-Hant`` → ``zh-Hans``),
    then English, then any."""
    if locale and locale in variants:
        return variants[locale]
    if locale:
        language = locale.split("-")[0].lower()
        for key, article in variants.items():
            if key.split("-")[0].lower() == language:
                return article
    if "en" in variants:
        return variants["en"]
    return next(iter(variants.values()))
