"""The rasa engine against a fake Rasa server: how answers map to articles and built-in
intents, and that every way the server can fail becomes a hand-off, never an exception."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bot.engines import create_engine
from bot.engines.base import OOS, REQUEST_HUMAN, TrainingExample, predict_within, train_model
from bot.engines.rasa import RasaModel, prediction_from_parse
from tests.fakes.rasa_api import FakeRasa, Misbehaviour, parse_result


@pytest.fixture
async def rasa(aiohttp_server: Callable[..., Any]) -> AsyncIterator[tuple[FakeRasa, RasaModel]]:
    fake = FakeRasa()
    server = await aiohttp_server(fake.app)
    model = RasaModel(str(server.make_url("")), timeout=0.5)
    yield fake, model
    await model.close()


async def test_a_faq_answer_names_the_article_from_the_response_selector(
    rasa: tuple[FakeRasa, RasaModel],
) -> None:
    fake, model = rasa
    fake.answer(
        parse_result(
            "faq",
            0.9,
            others=[("request_human", 0.06), ("out_of_scope", 0.04)],
            articles=[("opening_hours", 0.8), ("shipping_cost", 0.2)],
        )
    )
    prediction = await model.predict("when do you open")
    assert fake.texts == ["when do you open"]
    assert prediction.label == "opening_hours"
    assert prediction.confidence == pytest.approx(0.72)  # P(faq) x P(article | faq)
    assert [label for label, _ in prediction.ranking] == [
        "opening_hours",
        "shipping_cost",
        REQUEST_HUMAN,
    ]
    assert not prediction.fallback


async def test_asking_for_a_person_is_request_human(rasa: tuple[FakeRasa, RasaModel]) -> None:
    fake, model = rasa
    fake.answer(parse_result("request_human", 0.97, others=[("faq", 0.03)]))
    prediction = await model.predict("转人工")
    assert prediction.label == REQUEST_HUMAN
    assert prediction.confidence == pytest.approx(0.97)


@pytest.mark.parametrize("intent", ["out_of_scope", "nlu_fallback"])
async def test_out_of_scope_and_rasa_fallback_hand_off_but_keep_the_guesses(
    rasa: tuple[FakeRasa, RasaModel], intent: str
) -> None:
    fake, model = rasa
    fake.answer(parse_result(intent, 0.3, others=[("faq", 0.28)], articles=[("cancel_order", 0.5)]))
    prediction = await model.predict("what's the weather on mars")
    assert prediction.label == OOS
    assert not prediction.fallback  # Rasa did answer: it was just not sure
    label, confidence = prediction.ranking[0]
    assert label == "cancel_order"
    assert confidence == pytest.approx(0.14)


async def test_a_sure_faq_with_no_clear_article_hands_off(
    rasa: tuple[FakeRasa, RasaModel],
) -> None:
    # What Rasa makes of gibberish: certainly a FAQ, but the selector is spread thin.
    fake, model = rasa
    fake.answer(parse_result("faq", 0.99, articles=[("delivery_time", 0.06), ("warranty", 0.05)]))
    prediction = await model.predict("zxqv blorp wibble")
    assert prediction.label == OOS
    assert not prediction.fallback
    assert prediction.ranking[0][0] == "delivery_time"


async def test_faq_without_a_selected_article_hands_off(rasa: tuple[FakeRasa, RasaModel]) -> None:
    fake, model = rasa
    fake.answer(parse_result("faq", 0.9))
    assert (await model.predict("hm")).label == OOS


@pytest.mark.parametrize(
    ("misbehaviour", "reason"),
    [
        (Misbehaviour(status=500), "HTTP 500"),
        (Misbehaviour(status=404), "HTTP 404"),
        (Misbehaviour(delay=2.0), "did not answer within"),
        (Misbehaviour(raw=b"<html>proxy error</html>"), "garbage"),
        (Misbehaviour(raw=b'{"intent": "faq"}'), "garbage"),
        (Misbehaviour(raw=b'{"intent": {"name": "faq", "confidence": "high"}}'), "garbage"),
    ],
)
async def test_a_misbehaving_server_means_hand_off_with_the_reason(
    rasa: tuple[FakeRasa, RasaModel], misbehaviour: Misbehaviour, reason: str
) -> None:
    fake, model = rasa
    fake.answer(misbehaviour)
    prediction = await model.predict("when do you open")
    assert prediction.label == OOS
    assert prediction.fallback
    assert reason in prediction.reason


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens once the socket is closed


async def test_a_server_that_is_down_means_hand_off() -> None:
    model = RasaModel(f"http://127.0.0.1:{_closed_port()}", timeout=0.5)
    try:
        prediction = await model.predict("when do you open")
    finally:
        await model.close()
    assert prediction.label == OOS
    assert prediction.fallback
    assert "unreachable" in prediction.reason


def test_the_sync_client_also_hands_off_when_the_server_is_down() -> None:
    prediction = RasaModel(f"http://127.0.0.1:{_closed_port()}", 0.5).predict_sync("hi")
    assert prediction.label == OOS
    assert prediction.fallback


async def test_the_sync_client_maps_like_the_async_one(
    rasa: tuple[FakeRasa, RasaModel],
) -> None:
    import asyncio

    fake, model = rasa
    fake.answer(parse_result("faq", 1.0, articles=[("reset_password", 0.9)]))
    prediction = await asyncio.to_thread(model.predict_sync, "I forgot my password")
    assert prediction.label == "reset_password"
    assert prediction.confidence == pytest.approx(0.9)


async def test_the_engine_is_chosen_by_name_and_works_through_predict_within(
    rasa: tuple[FakeRasa, RasaModel],
) -> None:
    fake, model = rasa
    fake.answer(parse_result("request_human", 0.99))
    engine = create_engine("rasa", url=model.url, timeout=0.5)
    served = await train_model(engine, [TrainingExample("human please", REQUEST_HUMAN)])
    try:
        prediction = await predict_within(served, "human please", timeout=1.0)
    finally:
        await served.close()  # type: ignore[union-attr]
    assert prediction.label == REQUEST_HUMAN


def test_a_bare_parse_result_without_selector_or_ranking_still_maps() -> None:
    prediction = prediction_from_parse({"intent": {"name": "greet", "confidence": 0.8}})
    assert prediction.label == "greeting"
    assert list(prediction.ranking) == [("greeting", 0.8)]
