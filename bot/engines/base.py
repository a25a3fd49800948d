"""The contract every NLU engine meets (builtin, rasa), so the dialogue policy and
`switchboard bot eval` never care which one runs.

Labels are plain strings:

- an article key from the knowledge base (e.g. ``"opening_hours"``);
- a built-in intent: ``greeting``, ``thanks``, ``goodbye``, ``request_human``;
- ``oos``: out of scope — the engine is not sure, the policy hands off.

Contract
--------
1. ``train(examples)`` builds a new model from the given examples and returns it;
   it never mutates a model already serving (retraining swaps the returned object
   in). Engines add their own built-in intents and generic out-of-scope examples;
   callers pass only the knowledge base's phrasings (and any ``oos`` rows).
2. ``predict(text)`` on a :class:`TrainedModel` is synchronous, pure CPU, and fast
   (builtin: milliseconds). It never raises on odd input (empty string, emoji,
   another script): it returns ``oos`` instead.
3. Engines behind a network (Rasa) implement :class:`AsyncTrainedModel`:
   ``async predict``. :func:`predict_within` runs either kind with a timeout and
   turns a timeout or an :class:`EngineUnavailable` into an ``oos`` prediction
   flagged ``fallback=True``, so an outage means a hand-off, never silence.
4. One label per meaning, not per locale: engines normalise traditional to
   simplified Chinese, so a ``_zh_hans`` and a ``_zh_hant`` article with the same
   phrasings are indistinguishable and would split the confidence between them
   (measured on the demo knowledge base: 0.14 + 0.14 instead of 0.76). Callers
   train on a topic label shared by an article's locale variants and pick the
   variant in the customer's locale after prediction.
5. A :class:`Prediction`'s ``label`` is ``oos`` when the engine's own threshold
   and margin rules say it is unsure; ``ranking`` still lists the best real
   candidates (labels other than ``oos``) with confidences in [0, 1], best first,
   so the agent can see the bot's guesses and the policy can offer choices.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

OOS = "oos"
GREETING = "greeting"
THANKS = "thanks"
GOODBYE = "goodbye"
REQUEST_HUMAN = "request_human"
BUILTIN_INTENTS: frozenset[str] = frozenset({GREETING, THANKS, GOODBYE, REQUEST_HUMAN})


@dataclass(frozen=True, slots=True)
class TrainingExample:
    """One phrasing and what it means (an article key, a built-in intent or ``oos``)."""

    text: str
    label: str


@dataclass(frozen=True, slots=True)
class Prediction:
    """What the engine thinks a message means.

    ``label`` is the decision (``oos`` when unsure); ``confidence`` is the top
    candidate's score; ``ranking`` lists candidates best first (never ``oos``),
    at most a handful. ``fallback`` is true when the engine did not answer at all
    (timeout, outage) and ``reason`` then says why.
    """

    label: str
    confidence: float
    ranking: Sequence[tuple[str, float]] = ()
    fallback: bool = False
    reason: str = ""

    @property
    def is_oos(self) -> bool:
        return self.label == OOS

    @property
    def margin(self) -> float:
        """Top-1 minus top-2 confidence (1.0 with fewer than two candidates)."""
        if len(self.ranking) < 2:
            return 1.0
        return self.ranking[0][1] - self.ranking[1][1]


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Hand-off rules applied on top of the ranking: below ``confidence`` or with
    top-1 minus top-2 below ``margin`` the answer is ``oos``. Engines pick defaults
    on validation data; the policy may override them per inbox."""

    confidence: float = 0.0
    margin: float = 0.0


class EngineUnavailable(Exception):
    """The engine cannot answer now (not installed, server down, no model yet)."""


@runtime_checkable
class TrainedModel(Protocol):
    """A trained, immutable, in-process model."""

    def predict(self, text: str) -> Prediction: ...


@runtime_checkable
class AsyncTrainedModel(Protocol):
    """A model behind a network call (e.g. a Rasa server)."""

    async def predict(self, text: str) -> Prediction: ...


class Engine(Protocol):
    """Builds models. ``train`` may be sync (builtin) or async (rasa: export, upload,
    wait for the server); use :func:`train_model` to call either."""

    name: str

    def train(
        self, examples: Sequence[TrainingExample]
    ) -> TrainedModel | AsyncTrainedModel | Awaitable[TrainedModel | AsyncTrainedModel]: ...


def unavailable(reason: str) -> Prediction:
    """The prediction used when the engine did not answer: hand off, say why."""
    return Prediction(label=OOS, confidence=0.0, ranking=(), fallback=True, reason=reason)


def apply_thresholds(ranking: Sequence[tuple[str, float]], thresholds: Thresholds) -> Prediction:
    """Decide from a best-first ranking (without ``oos``) and the hand-off rules."""
    if not ranking:
        return Prediction(label=OOS, confidence=0.0, ranking=())
    top_label, top = ranking[0]
    second = ranking[1][1] if len(ranking) > 1 else 0.0
    if top < thresholds.confidence or top - second < thresholds.margin:
        return Prediction(label=OOS, confidence=top, ranking=tuple(ranking))
    return Prediction(label=top_label, confidence=top, ranking=tuple(ranking))


async def train_model(
    engine: Engine,
    examples: Sequence[TrainingExample],
    executor: Executor | None = None,
) -> TrainedModel | AsyncTrainedModel:
    """Train with either a sync or an async engine. A sync ``train`` runs in
    ``executor`` (default: the loop's thread pool) so message handling goes on
    meanwhile. The builtin engine's vectorising is pure Python and holds the GIL,
    so a server retraining a large knowledge base should pass a
    ``ProcessPoolExecutor`` (engine, examples and model are picklable)."""
    loop = asyncio.get_running_loop()
    result = await loop.run_in_executor(executor, engine.train, examples)
    if isinstance(result, Awaitable):
        return await result
    return result


async def predict_within(
    model: TrainedModel | AsyncTrainedModel,
    text: str,
    timeout: float,  # noqa: ASYNC109 (a per-call deadline is the point)
) -> Prediction:
    """Predict with a deadline. Sync models are called inline (they are fast and
    CPU-bound); async ones are awaited under ``timeout``. A timeout or an
    :class:`EngineUnavailable` becomes :func:`unavailable`, so the policy hands off."""
    try:
        result = model.predict(text)
        if isinstance(result, Prediction):
            return result
        return await asyncio.wait_for(result, timeout)
    except TimeoutError:
        return unavailable(f"engine timed out after {timeout:g} s")
    except EngineUnavailable as exc:
        return unavailable(f"engine unavailable: {exc}")
