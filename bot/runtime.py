"""The model the bot answers with, kept in step with the published knowledge base.

`BotRuntime.current()` hands out an immutable `LoadedBot`: the trained model, the
articles behind its labels, and the fingerprint of the training set. Swapping in a new
one is one assignment, so a bot turn sees the old bot or the new one, never a mix.

When the runtime retrains (every process does so on its own; docs/architecture.md,
"Bot runtime", says why):

- on `PublishedArticlesChanged` from the bus (any process's commit, through Redis);
- when a poll of `training.change_token` (one aggregate query every few seconds) sees a
  save it has not looked at: `switchboard kb import` without Redis publishes on an
  in-process bus no server hears, and events are lost while Redis is down;
- on `Resync` from the bus (it missed events), and on a timer after a failed training.

A request only sets a flag; one task trains. While it trains, any number of further
requests leave one more run queued, so a burst of publishes costs at most two trainings.
Training that fails keeps the serving model and logs why; before any model exists, a
stand-in answers every message with a hand-off that says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.engines import create_engine
from bot.engines.base import (
    AsyncTrainedModel,
    Engine,
    Prediction,
    TrainedModel,
    TrainingExample,
    train_model,
    unavailable,
)
from bot.training import (
    by_topic,
    change_token,
    content_key,
    examples_from,
    fingerprint,
    train_columns,
    training_pool,
)
from conversations.models import Inbox
from knowledge_base.events import TOPIC as KB_TOPIC
from knowledge_base.events import PublishedArticlesChanged
from knowledge_base.service import TrainingArticle, published_training_set
from switchboard.bus import Resync
from switchboard.settings import Settings
from switchboard.tx import Database

log = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL = 5.0
# After a failed training: retry on our own, doubling the pause up to the cap.
RETRY_FIRST = 10.0
RETRY_MAX = 600.0
# A swapped-out model that holds a connection (Rasa's client) is closed this long after
# the swap, so predictions already under way finish on it.
RETIRE_AFTER = 30.0
# English and Chinese, so every lazily loaded table a prediction needs is loaded.
WARM_UP_TEXT = "where is my order 我的订单在哪里"


@dataclass(frozen=True)
class LoadedBot:
    model: TrainedModel | AsyncTrainedModel
    # topic (the model's label) → locale → article
    articles: Mapping[str, Mapping[str, TrainingArticle]]
    fingerprint: str


@dataclass(frozen=True)
class RuntimeStatus:
    """What an operator (or a test) may ask: which set is serving and how training went."""

    fingerprint: str | None  # None: nothing trained yet
    trainings: int  # engine runs started (a model reused for identical data is not one)
    failures: int
    last_error: str | None
    training: bool


class NoModel:
    """Serves before any training has succeeded: every message is a hand-off with why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def predict(self, text: str) -> Prediction:
        return unavailable(self.reason)


class _ModelCache:
    """The last model trained in a worker process, by what it learned from.

    Several runtimes in one process (test apps, an app and its tools) with the same
    training data get the same model without training again; different content is a
    different key, so a cached model is never served for data it did not see. One
    entry: in a hub it is the model serving anyway, so it costs no memory."""

    def __init__(self, size: int = 1) -> None:
        self._size = size
        self._models: OrderedDict[str, TrainedModel | AsyncTrainedModel] = OrderedDict()

    def get(self, key: str) -> TrainedModel | AsyncTrainedModel | None:
        model = self._models.get(key)
        if model is not None:
            self._models.move_to_end(key)
        return model

    def put(self, key: str, model: TrainedModel | AsyncTrainedModel) -> None:
        self._models[key] = model
        self._models.move_to_end(key)
        while len(self._models) > self._size:
            self._models.popitem(last=False)


_pool_models = _ModelCache()


class BotRuntime:
    """Trains the bot from the published knowledge base and keeps it current.

    ``executor_factory`` makes the executor CPU-bound training runs in (created on first
    use, replaced if its worker dies, shut down by :meth:`close`); ``executor`` is one
    the caller owns. With neither, ``train`` runs in the loop's default thread pool,
    which suits engines whose training is I/O or nothing (Rasa).
    """

    def __init__(
        self,
        db: Database,
        engine: Engine,
        executor: Executor | None = None,
        *,
        executor_factory: Callable[[], Executor] | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        retry_first: float = RETRY_FIRST,
    ) -> None:
        self._db = db
        self._engine = engine
        self._executor = executor
        self._executor_factory = executor_factory
        self._owned_executor: Executor | None = None
        self._poll_interval = poll_interval
        self._retry_first = retry_first
        self._loaded: LoadedBot | None = None
        self._ready = asyncio.Event()
        self._lock = asyncio.Lock()
        self._wanted = asyncio.Event()
        # Set once a model is wanted at all: an inbox has the bot on, or a turn asked.
        # Until then nothing trains, so a hub without the bot starts no training process.
        self._needed = asyncio.Event()
        self._seen_token: tuple[Any, ...] | None = None
        self._polled_token: tuple[Any, ...] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._retiring: dict[asyncio.Task[None], object] = {}
        self._trainings = 0
        self._failures = 0
        self._last_error: str | None = None

    @property
    def engine(self) -> Engine:
        return self._engine

    # --- serving ---------------------------------------------------------------------

    async def current(self) -> LoadedBot:
        """The model serving now; waits for the first one to be trained."""
        self._needed.set()
        if self._loaded is None and not self._tasks:
            # Not started: a script or a test asking directly. A failure is logged and
            # leaves the hand-off stand-in serving, as in the background.
            try:
                await self.refresh()
            except Exception:
                log.exception("bot training failed")
        await self._ready.wait()
        assert self._loaded is not None
        return self._loaded

    def status(self) -> RuntimeStatus:
        return RuntimeStatus(
            fingerprint=self._loaded.fingerprint if self._loaded else None,
            trainings=self._trainings,
            failures=self._failures,
            last_error=self._last_error,
            training=self._lock.locked(),
        )

    # --- lifecycle -------------------------------------------------------------------

    async def start(self, *, train_now: bool = True) -> None:
        """Start listening and polling. The first training begins in the background at
        once, or (``train_now`` false) when an inbox turns the bot on or a turn asks."""
        if self._tasks:
            return
        if train_now:
            self._needed.set()
        self._tasks = [
            asyncio.create_task(self._train_forever(), name="bot-training"),
            asyncio.create_task(self._listen(), name="bot-kb-listener"),
            asyncio.create_task(self._poll(), name="bot-kb-poller"),
        ]
        self.request_refresh()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:  # a loop that died earlier: say so, and still clean up
                log.exception("bot runtime task %s had failed", task.get_name())
        self._tasks = []
        for task, model in list(self._retiring.items()):
            task.cancel()
            await _close_model(model)
        self._retiring.clear()
        if self._loaded is not None:
            await _close_model(self._loaded.model)
        self._drop_executor(stop_training=True)

    def request_refresh(self) -> None:
        """Ask for a look at the published set; returns at once. Requests made while a
        training runs collapse into one more run after it."""
        self._wanted.set()

    # --- training --------------------------------------------------------------------

    async def refresh(self) -> bool:
        """Retrain if the published set changed since the serving model; True if swapped.
        Raises what the training raised (the serving model stays)."""
        async with self._lock:
            async with self._db.reading() as session:
                token = await change_token(session)
                if self._loaded is not None and token == self._seen_token:
                    return False
                articles = await published_training_set(session)
            print_ = fingerprint(articles, self._engine.name)
            if self._loaded is not None and self._loaded.fingerprint == print_:
                self._seen_token = token
                return False
            try:
                model = await self._train(examples_from(articles))
                await _warm_up(model)
            except Exception as exc:
                self._failed(articles, exc)
                raise
            self._swap(LoadedBot(model=model, articles=by_topic(articles), fingerprint=print_))
            self._seen_token = token
            self._last_error = None
            log.info(
                "bot model %s (%s) serving, trained on %d articles",
                print_,
                self._engine.name,
                len(articles),
            )
            return True

    async def _train(self, examples: Sequence[TrainingExample]) -> TrainedModel | AsyncTrainedModel:
        if self._executor is not None or self._executor_factory is None:
            self._trainings += 1
            return await train_model(self._engine, examples, self._executor)
        executor = self._pool()
        key = content_key(self._engine, examples)
        cached = _pool_models.get(key)
        if cached is not None:
            return cached
        self._trainings += 1
        texts = [example.text for example in examples]
        labels = [example.label for example in examples]
        loop = asyncio.get_running_loop()
        try:
            model: TrainedModel = await loop.run_in_executor(
                executor, train_columns, self._engine, texts, labels
            )
        except BrokenProcessPool:
            # The worker died (killed, out of memory): the next run gets a new one.
            self._drop_executor()
            raise
        _pool_models.put(key, model)
        return model

    def _pool(self) -> Executor:
        assert self._executor_factory is not None
        if self._owned_executor is None:
            self._owned_executor = self._executor_factory()
        return self._owned_executor

    def _drop_executor(self, *, stop_training: bool = False) -> None:
        executor, self._owned_executor = self._owned_executor, None
        if executor is None:
            return
        # Never waits. A dead pool has no worker left; at close, a training still running
        # is stopped too, or the interpreter's exit would wait for it (measured: a 20 s
        # training held a closed process's exit for 20 s).
        workers = _workers_of(executor) if stop_training else []
        executor.shutdown(wait=False, cancel_futures=True)
        for worker in workers:
            worker.terminate()

    def _swap(self, loaded: LoadedBot) -> None:
        old, self._loaded = self._loaded, loaded
        self._ready.set()
        if old is not None and old.model is not loaded.model and hasattr(old.model, "close"):
            task = asyncio.create_task(_close_later(old.model), name="bot-model-retire")
            self._retiring[task] = old.model
            task.add_done_callback(lambda done: self._retiring.pop(done, None))

    def _failed(self, articles: list[TrainingArticle], exc: Exception) -> None:
        self._failures += 1
        self._last_error = f"{type(exc).__name__}: {exc}"
        if self._loaded is None:
            # Nothing to keep serving: hand every message off, saying why, rather than
            # leave current() waiting forever. The empty fingerprint never matches, so
            # the next refresh trains again.
            reason = f"bot model not trained: {self._last_error}"
            self._swap(
                LoadedBot(model=NoModel(reason), articles=by_topic(articles), fingerprint="")
            )

    async def _train_forever(self) -> None:
        await self._needed.wait()
        pause = self._retry_first
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            try:
                await self.refresh()
                pause = self._retry_first
            except Exception:
                log.exception(
                    "bot training failed; still serving %s, retrying in %g s",
                    self._loaded.fingerprint if self._loaded else "no model",
                    pause,
                )
                # Retry on our own (a dead worker, Rasa restarting), sooner if asked.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wanted.wait(), pause)
                self._wanted.set()
                pause = min(pause * 2, RETRY_MAX)

    # --- noticing changes ------------------------------------------------------------

    async def _listen(self) -> None:
        async with self._db.bus.subscribe([KB_TOPIC]) as events:
            async for item in events:
                if isinstance(item, PublishedArticlesChanged | Resync):
                    self.request_refresh()

    async def _poll(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._poll_interval)
            try:
                async with self._db.reading() as session:
                    token = await change_token(session)
                    if not self._needed.is_set() and await bot_switched_on(session):
                        self._needed.set()
            except Exception as exc:
                if not failing:  # once per outage, not every few seconds
                    log.warning("bot cannot poll the knowledge base: %s", exc)
                failing = True
                continue
            failing = False
            # Compared with the last poll, not the serving set: after a failed training
            # the retry timer decides, so a broken set is not retrained every poll.
            if token != self._polled_token:
                self._polled_token = token
                if token != self._seen_token:
                    self.request_refresh()


async def bot_switched_on(session: AsyncSession) -> bool:
    """Whether any inbox has the bot on (so a process should have a model ready)."""
    found = await session.execute(select(Inbox.id).where(Inbox.bot_enabled).limit(1))
    return found.first() is not None


async def start_for_hub(runtime: BotRuntime, db: Database) -> None:
    """Start a hub's runtime: training at once only if an inbox has the bot on."""
    async with db.reading() as session:
        wanted = await bot_switched_on(session)
    await runtime.start(train_now=wanted)


async def _warm_up(model: TrainedModel | AsyncTrainedModel) -> None:
    """One prediction in a thread before the model serves: what it loads on first use
    (word vectors, OpenCC's tables) loads here, not on the loop in a customer's turn, and
    a model that cannot predict is never swapped in. A model behind a network is not
    asked: its server may be down, which is not the model's fault."""
    if inspect.iscoroutinefunction(model.predict):
        return
    await asyncio.to_thread(model.predict, WARM_UP_TEXT)


def _workers_of(executor: Executor) -> list[Any]:
    """The worker processes of a ProcessPoolExecutor. Python 3.14 has
    ``terminate_workers()``; before it, the processes are only in ``_processes``."""
    processes = getattr(executor, "_processes", None) or {}
    return list(processes.values())


async def _close_model(model: object) -> None:
    close = getattr(model, "close", None)
    if close is not None:
        with contextlib.suppress(Exception):
            await close()


async def _close_later(model: object) -> None:
    await asyncio.sleep(RETIRE_AFTER)
    await _close_model(model)


def create_runtime(settings: Settings, db: Database) -> BotRuntime:
    """The runtime for ``SWITCHBOARD_BOT_ENGINE``. The builtin engine trains in a
    worker process; Rasa's ``train`` only makes a client (its server is trained by
    ``scripts/rasa_server.py``), so it needs none."""
    if settings.bot_engine == "rasa":
        engine = create_engine("rasa", url=settings.rasa_url or "")
        return BotRuntime(db, engine, poll_interval=settings.bot_poll_interval)
    return BotRuntime(
        db,
        create_engine(settings.bot_engine),
        executor_factory=training_pool,
        poll_interval=settings.bot_poll_interval,
    )
