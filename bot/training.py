"""From the published knowledge base to the engine's training examples.

An article's locale variants (``refund_time_en``, ``refund_time_zh_hans``, …) share one
label, their *topic*, because engines normalise traditional to simplified Chinese and
would otherwise split their confidence between twins (`bot.engines.base`, point 4).
The policy picks the variant in the customer's locale after prediction.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import pickle
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.engines.base import Engine, TrainingExample
from knowledge_base.models import Article
from knowledge_base.service import TrainingArticle

# Imported once by the fork server, so each training worker starts without importing
# scikit-learn again (seconds of CPU on a small machine).
_PRELOAD = ["bot.engines.builtin"]


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


async def change_token(session: AsyncSession) -> tuple[Any, ...]:
    """A cheap stand-in for the fingerprint, for polling: one aggregate query over the
    articles table, not the articles. Every save of any article (create, edit, publish,
    unpublish) appends a version, so it raises ``sum(version)`` or ``count``; an equal
    token therefore means no article was saved since, and the training set is the same.
    A different token only says "look": the fingerprint decides whether to retrain
    (a draft's edit changes the token, not the training set)."""
    row = (
        await session.execute(
            select(func.count(Article.id), func.sum(Article.version), func.max(Article.updated_at))
        )
    ).one()
    count, versions, latest = row
    return (int(count), int(versions or 0), str(latest))


def content_key(engine: Engine, examples: Sequence[TrainingExample]) -> str:
    """Names a training run by what it learns from: the engine's settings and every
    example in order. Equal keys give equal models, whatever database they came from."""
    digest = hashlib.sha256(pickle.dumps(engine))
    for example in examples:
        digest.update(f"\x00{example.label}\x01{example.text}".encode())
    return digest.hexdigest()


def train_columns(engine: Engine, texts: Sequence[str], labels: Sequence[str]) -> Any:
    """``engine.train`` in a worker process, from the examples sent as two lists of
    strings: pickling 10,000 example objects costs the hub's process ~80 ms of CPU next
    to its event loop, two lists of strings ~5 ms."""
    return engine.train(
        [TrainingExample(text, label) for text, label in zip(texts, labels, strict=True)]
    )


def training_pool() -> ProcessPoolExecutor:
    """One worker process for CPU-bound training, so the event loop keeps the GIL.

    Workers come from a fork server (the default start method from Python 3.14): forking
    the hub itself would copy its event loop, threads and held locks into the child; a
    fresh interpreter per worker would import scikit-learn again each time."""
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if context.get_start_method() == "forkserver":
        context.set_forkserver_preload(_PRELOAD)
    return ProcessPoolExecutor(max_workers=1, mp_context=context)
