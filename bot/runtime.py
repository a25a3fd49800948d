"""The model the bot answers with, kept in step with the published knowledge base.

`BotRuntime.current()` hands out an immutable `LoadedBot`: the trained model, the
articles behind its labels, and the fingerprint of the training set. `refresh()`
reads the published set and, when its fingerprint changed, trains a new model and
swaps it in; the model serving meanwhile keeps answering.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass

from bot.engines.base import AsyncTrainedModel, Engine, TrainedModel, train_model
from bot.training import by_topic, examples_from, fingerprint
from knowledge_base.service import TrainingArticle, published_training_set
from switchboard.tx import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedBot:
    model: TrainedModel | AsyncTrainedModel
    # topic (the model's label) → locale → article
    articles: Mapping[str, Mapping[str, TrainingArticle]]
    fingerprint: str


class BotRuntime:
    def __init__(self, db: Database, engine: Engine, executor: Executor | None = None) -> None:
        self._db = db
        self._engine = engine
        self._executor = executor
        self._loaded: LoadedBot | None = None
        self._ready = asyncio.Event()
        self._lock = asyncio.Lock()

    async def current(self) -> LoadedBot:
        """The model serving now; waits for the first one to be trained."""
        if self._loaded is None:
            await self.refresh()
        await self._ready.wait()
        assert self._loaded is not None
        return self._loaded

    async def refresh(self) -> bool:
        """Retrain if the published set changed since the serving model; True if swapped."""
        async with self._lock:
            async with self._db.reading() as session:
                articles = await published_training_set(session)
            print_ = fingerprint(articles, self._engine.name)
            if self._loaded is not None and self._loaded.fingerprint == print_:
                return False
            model = await train_model(self._engine, examples_from(articles), self._executor)
            self._loaded = LoadedBot(model=model, articles=by_topic(articles), fingerprint=print_)
            self._ready.set()
            log.info("bot model %s trained on %d articles", print_, len(articles))
            return True
