"""The ``rasa`` engine: a client of a real Rasa 3.x server's HTTP API.

Rasa runs as its own server (``scripts/rasa_server.py`` builds, trains and starts it);
this module asks ``POST {url}/model/parse`` what a message means and maps the answer onto
:mod:`bot.engines.base` labels:

- intent ``faq`` with the ``faq`` response selector's ``intent_response_key``
  ``faq/<key>`` → the article ``<key>`` (``kb export-rasa`` names articles that way);
- ``request_human``, ``greeting``, ``thanks``, ``goodbye`` → the built-in intents;
- ``out_of_scope``, ``nlu_fallback`` (Rasa's FallbackClassifier) → ``oos``.

An article's confidence is P(faq) × P(article | faq): the intent classifier's belief
that this is a FAQ at all times the selector's belief in the article. That keeps every
entry of the ranking on one scale, and it errs toward hand-off, which is the cheap mistake.
Rasa's FallbackClassifier only judges the intent, so gibberish can come back as a
confident ``faq`` with the selector spread thin over every article: an article under
``ARTICLE_THRESHOLD`` is ``oos`` too. It is 0.15, not the FallbackClassifier's 0.3,
because one article written in simplified and traditional Chinese is two articles to the
selector, which splits a sure answer between them (measured on the 36-article demo
knowledge base: gibberish 0.06, "我忘了密码" 0.23 with its traditional twin second).

The server being slow, down, answering 5xx or garbage is never an exception: predict
returns :func:`base.unavailable` (``oos`` with ``fallback=True`` and the reason), so the
policy hands off instead of leaving the customer in silence.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from bot.engines.base import (
    GOODBYE,
    GREETING,
    OOS,
    REQUEST_HUMAN,
    THANKS,
    Prediction,
    TrainingExample,
    unavailable,
)

DEFAULT_TIMEOUT = 2.0  # seconds; a parse takes ~10 ms, so 2 s means the server is in trouble
RETRIEVAL_INTENT = "faq"
RANKING_SIZE = 5
ARTICLE_THRESHOLD = 0.15
# Rasa's names for "not sure": its out-of-scope intent and FallbackClassifier's verdict.
_OOS_INTENTS = frozenset({"out_of_scope", "nlu_fallback", OOS})
# Common Rasa spellings of the built-in intents, for models not trained by kb export-rasa.
_ALIASES = {
    "greet": GREETING,
    "thankyou": THANKS,
    "thank_you": THANKS,
    "bye": GOODBYE,
    "human_handoff": REQUEST_HUMAN,
}


class MalformedParse(ValueError):
    """Rasa answered /model/parse with something that is not a parse result."""


def _label(intent: str) -> str:
    if intent in _OOS_INTENTS:
        return OOS
    return _ALIASES.get(intent, intent)


def _confidence(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedParse(f"confidence {value!r} is not a number")
    return min(max(float(value), 0.0), 1.0)


def _article_key(intent_response_key: Any) -> str:
    if not isinstance(intent_response_key, str) or "/" not in intent_response_key:
        raise MalformedParse(f"intent_response_key {intent_response_key!r} is not faq/<key>")
    return intent_response_key.split("/", 1)[1]


def _selector_ranking(body: Mapping[str, Any]) -> list[tuple[str, float]]:
    """The ``faq`` response selector's articles with P(article | faq), best first."""
    selectors = body.get("response_selector") or {}
    if not isinstance(selectors, Mapping):
        raise MalformedParse("response_selector is not an object")
    # The selector's key is `default` when the pipeline sets no retrieval_intent.
    selector = selectors.get(RETRIEVAL_INTENT) or selectors.get("default")
    if not isinstance(selector, Mapping):
        return []
    ranking = selector.get("ranking") or []
    if not isinstance(ranking, list):
        raise MalformedParse("response selector ranking is not a list")
    articles = [
        (_article_key(entry.get("intent_response_key")), _confidence(entry.get("confidence")))
        for entry in ranking
        if isinstance(entry, Mapping)
    ]
    if not articles:
        response = selector.get("response")
        if isinstance(response, Mapping) and response.get("intent_response_key"):
            key = _article_key(response["intent_response_key"])
            articles = [(key, _confidence(response.get("confidence", 0.0)))]
    return articles


def prediction_from_parse(body: Any, article_threshold: float = ARTICLE_THRESHOLD) -> Prediction:
    """Map one ``/model/parse`` answer to a Prediction (raises MalformedParse)."""
    if not isinstance(body, Mapping):
        raise MalformedParse("the answer is not a JSON object")
    intent = body.get("intent")
    if not isinstance(intent, Mapping) or not isinstance(intent.get("name"), str):
        raise MalformedParse("the answer has no intent name")
    intent_ranking = body.get("intent_ranking") or [intent]
    if not isinstance(intent_ranking, list):
        raise MalformedParse("intent_ranking is not a list")

    ranking: list[tuple[str, float]] = []
    faq_confidence = 0.0
    for entry in intent_ranking:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            raise MalformedParse("an intent_ranking entry has no name")
        name, confidence = entry["name"], _confidence(entry.get("confidence"))
        if name == RETRIEVAL_INTENT:
            faq_confidence = confidence
        elif _label(name) != OOS:
            ranking.append((_label(name), confidence))
    ranking.extend((key, faq_confidence * p) for key, p in _selector_ranking(body))
    ranking.sort(key=lambda candidate: candidate[1], reverse=True)
    ranking = ranking[:RANKING_SIZE]

    name = intent["name"]
    if name == RETRIEVAL_INTENT:
        articles = _selector_ranking(body)
        if not articles:  # a FAQ with no article picked: nothing to answer with
            return Prediction(label=OOS, confidence=0.0, ranking=tuple(ranking))
        key, p = articles[0]
        confidence = _confidence(intent.get("confidence")) * p
        if confidence < article_threshold:
            return Prediction(label=OOS, confidence=confidence, ranking=tuple(ranking))
        return Prediction(label=key, confidence=confidence, ranking=tuple(ranking))
    label = _label(name)
    confidence = _confidence(intent.get("confidence", 0.0))
    if label == OOS:
        # Rasa's fallback confidence is its threshold, not a belief: report the best guess.
        top = ranking[0][1] if ranking else 0.0
        return Prediction(label=OOS, confidence=top, ranking=tuple(ranking))
    return Prediction(label=label, confidence=confidence, ranking=tuple(ranking))


class RasaModel:
    """The model a Rasa server is serving, asked over HTTP (an AsyncTrainedModel).

    Holds one aiohttp session, made on first use; call :meth:`close` when done. For
    scripts and `bot eval` outside an event loop, :meth:`predict_sync` uses the
    standard library instead.
    """

    def __init__(
        self,
        url: str,
        timeout: float = DEFAULT_TIMEOUT,
        article_threshold: float = ARTICLE_THRESHOLD,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.article_threshold = article_threshold
        self._session: aiohttp.ClientSession | None = None

    @property
    def parse_url(self) -> str:
        return f"{self.url}/model/parse"

    def _session_for_loop(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session

    async def predict(self, text: str) -> Prediction:
        try:
            session = self._session_for_loop()
            async with session.post(self.parse_url, json={"text": text}) as response:
                if response.status != 200:
                    return unavailable(f"rasa answered HTTP {response.status}")
                body = await response.json(content_type=None)
            return prediction_from_parse(body, self.article_threshold)
        except TimeoutError:
            return unavailable(f"rasa did not answer within {self.timeout:g} s")
        except aiohttp.ClientError as exc:
            return unavailable(f"rasa unreachable: {exc.__class__.__name__}: {exc}")
        except (ValueError, MalformedParse) as exc:  # JSONDecodeError is a ValueError
            return unavailable(f"rasa answered garbage: {exc}")

    def predict_sync(self, text: str) -> Prediction:
        request = urllib.request.Request(  # noqa: S310 (the URL is the admin's setting)
            self.parse_url,
            data=json.dumps({"text": text}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                body = json.loads(response.read())
            return prediction_from_parse(body, self.article_threshold)
        except urllib.error.HTTPError as exc:
            return unavailable(f"rasa answered HTTP {exc.code}")
        except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
            return unavailable(f"rasa unreachable: {exc}")
        except (ValueError, MalformedParse) as exc:
            return unavailable(f"rasa answered garbage: {exc}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class RasaEngine:
    """The ``rasa`` engine. Rasa trains in its own environment (``scripts/rasa_server.py
    train`` on ``switchboard kb export-rasa`` output), so ``train`` does not fit anything
    here: it returns a client of the model the server is serving."""

    name = "rasa"

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        if not url:
            raise ValueError("the rasa engine needs the server's URL (SWITCHBOARD_RASA_URL)")
        self.url = url
        self.timeout = timeout

    def train(self, examples: Sequence[TrainingExample]) -> RasaModel:
        return RasaModel(self.url, self.timeout)


def create_engine(url: str = "", timeout: float = DEFAULT_TIMEOUT) -> RasaEngine:
    return RasaEngine(url, timeout)


__all__ = [
    "ARTICLE_THRESHOLD",
    "DEFAULT_TIMEOUT",
    "MalformedParse",
    "RasaEngine",
    "RasaModel",
    "create_engine",
    "prediction_from_parse",
]
