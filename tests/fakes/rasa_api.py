"""A fake Rasa server: `POST /model/parse` answers as scripted and records each text.

`answer(body)` sets what every parse returns until changed: a JSON-able dict, or a
`Misbehaviour` (an HTTP status, a delay longer than the client waits, bytes that are
not JSON). Serve it with pytest-aiohttp's `aiohttp_server(fake.app)` on port 0.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Misbehaviour:
    status: int = 200
    delay: float = 0.0
    raw: bytes | None = None


class FakeRasa:
    def __init__(self) -> None:
        self.texts: list[str] = []
        self._answer: dict[str, Any] | Misbehaviour = parse_result("out_of_scope", 0.9)
        self.app = web.Application()
        self.app.router.add_post("/model/parse", self._parse)

    def answer(self, body: dict[str, Any] | Misbehaviour) -> None:
        self._answer = body

    async def _parse(self, request: web.Request) -> web.StreamResponse:
        payload = await request.json()
        self.texts.append(payload["text"])
        answer = self._answer
        if isinstance(answer, Misbehaviour):
            if answer.delay:
                await asyncio.sleep(answer.delay)
            if answer.raw is not None:
                return web.Response(body=answer.raw, status=answer.status)
            return web.json_response({"error": "scripted"}, status=answer.status)
        return web.json_response(answer)


def parse_result(
    intent: str,
    confidence: float,
    others: list[tuple[str, float]] | None = None,
    articles: list[tuple[str, float]] | None = None,
) -> dict[str, Any]:
    """A `/model/parse` answer in Rasa 3.6's shape (see /work/shared/BOT.md)."""
    ranking = [{"name": intent, "confidence": confidence}] + [
        {"name": name, "confidence": p} for name, p in others or []
    ]
    body: dict[str, Any] = {
        "text": "…",
        "intent": {"name": intent, "confidence": confidence},
        "entities": [],
        "intent_ranking": ranking,
        "response_selector": {"all_retrieval_intents": ["faq"]},
    }
    if articles:
        top_key, top_p = articles[0]
        body["response_selector"]["faq"] = {
            "response": {
                "responses": [{"text": f"answer of {top_key}"}],
                "confidence": top_p,
                "intent_response_key": f"faq/{top_key}",
                "utter_action": f"utter_faq/{top_key}",
            },
            "ranking": [
                {"id": i, "confidence": p, "intent_response_key": f"faq/{key}"}
                for i, (key, p) in enumerate(articles)
            ],
        }
    return body
