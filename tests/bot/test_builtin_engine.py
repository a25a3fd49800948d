"""The builtin engine: bilingual paraphrases, hand-off phrases, out-of-scope."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.engines import create_engine
from bot.engines.base import (
    OOS,
    REQUEST_HUMAN,
    EngineUnavailable,
    Prediction,
    TrainedModel,
    TrainingExample,
    predict_within,
)
from bot.engines.builtin import BuiltinEngine, BuiltinModel, normalise
from bot.eval import load_examples

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def model() -> BuiltinModel:
    return BuiltinEngine().train(load_examples(str(FIXTURES / "train.csv")))


def test_normalise_maps_traditional_to_simplified_and_folds_case() -> None:
    assert normalise("轉人工") == normalise("转人工")
    assert normalise("  Ｈｅｌｌｏ WORLD ") == "hello world"


@pytest.mark.parametrize(
    ("texts", "label"),
    [
        (("how can i cancel my order", "我想取消订单", "我想取消訂單"), "cancel_order"),
        (("what time do you open", "你们几点营业", "你們幾點營業"), "opening_hours"),
        (("i want a refund", "我要退款", "我要退款，怎麼申請"), "refund"),
    ],
)
def test_english_simplified_and_traditional_paraphrases_reach_one_article(
    model: BuiltinModel, texts: tuple[str, ...], label: str
) -> None:
    assert [model.predict(text).label for text in texts] == [label] * len(texts)


@pytest.mark.parametrize(
    "text",
    [
        "human",
        "agent",
        "real person",
        "I want to talk to a human",
        "人工",
        "转人工",
        "真人客服",
        "轉人工",
        "我要人工服務",
    ],
)
def test_asking_for_a_person_in_any_language_is_request_human(
    model: BuiltinModel, text: str
) -> None:
    assert model.predict(text).label == REQUEST_HUMAN


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "🙂🙂🙂",
        "zxqv blorf wibble",
        "what is the capital of france",
        "how many moons does jupiter have",
        "今天天气好吗",
    ],
)
def test_gibberish_and_other_topics_hand_off(model: BuiltinModel, text: str) -> None:
    assert model.predict(text).label == OOS


def test_prediction_ranks_real_candidates_best_first(model: BuiltinModel) -> None:
    prediction = model.predict("where is my parcel")
    assert prediction.label == "track_order"
    labels = [label for label, _ in prediction.ranking]
    confidences = [confidence for _, confidence in prediction.ranking]
    assert OOS not in labels
    assert labels[0] == "track_order"
    assert confidences == sorted(confidences, reverse=True)
    assert 0 < prediction.confidence <= 1


def test_create_engine_by_name() -> None:
    assert create_engine("builtin").name == "builtin"
    with pytest.raises(ValueError, match="unknown bot engine"):
        create_engine("nope")


class _SlowModel:
    async def predict(self, text: str) -> Prediction:
        await asyncio.sleep(10)
        return Prediction(label="refund", confidence=1.0)


class _DownModel:
    async def predict(self, text: str) -> Prediction:
        raise EngineUnavailable("connection refused")


def test_a_slow_or_down_engine_means_hand_off_not_silence() -> None:
    slow = asyncio.run(predict_within(_SlowModel(), "refund", timeout=0.01))
    down = asyncio.run(predict_within(_DownModel(), "refund", timeout=1))
    assert (slow.label, slow.fallback) == (OOS, True)
    assert (down.label, down.fallback) == (OOS, True)
    assert "connection refused" in down.reason


def test_sync_models_are_called_through_the_same_helper(model: TrainedModel) -> None:
    prediction = asyncio.run(predict_within(model, "转人工", timeout=1))
    assert prediction.label == REQUEST_HUMAN


def test_training_in_another_process_gives_a_working_model() -> None:
    from concurrent.futures import ProcessPoolExecutor

    from bot.engines.base import train_model

    async def train() -> Prediction:
        with ProcessPoolExecutor(max_workers=1) as pool:
            trained = await train_model(
                BuiltinEngine(), load_examples(str(FIXTURES / "train.csv")), pool
            )
        return await predict_within(trained, "我想取消訂單", timeout=1)

    assert asyncio.run(train()).label == "cancel_order"


def test_word_vectors_come_from_the_installed_wheel_and_ignore_the_script() -> None:
    from bot.engines.builtin import word_vectors

    vectors = word_vectors()
    hello = vectors.embed("hello, is anyone there?")
    assert hello is not None and hello.shape == (vectors.size,)
    assert abs(float((hello * hello).sum()) - 1.0) < 1e-4
    simplified, traditional = vectors.embed("转人工"), vectors.embed("轉人工")
    assert simplified is not None and traditional is not None
    assert (simplified == traditional).all()
    assert vectors.embed("") is None


def test_the_model_carries_word_vector_weights_but_not_the_vectors(model: BuiltinModel) -> None:
    import pickle

    assert model.vector_weights is not None
    assert model.vector_weights.shape[1] == len(model.labels)
    # Trained in a worker process and sent back: the 16 MB table must not travel along.
    assert len(pickle.dumps(model)) < 2_000_000


def test_word_vectors_answer_paraphrases_the_n_grams_alone_miss() -> None:
    """Synonyms with next to no n-gram in common: the word vectors connect them."""
    examples = [
        TrainingExample(text, label)
        for label, texts in {
            "lost_card": ("I lost my card", "my card is missing", "card lost"),
            "opening_hours": ("when are you open", "opening hours", "what time do you open"),
            "refund": ("I want a refund", "give me a refund", "refund please"),
            "pricing": ("how much does it cost", "what does it cost", "cost of the plan"),
            "delivery": ("when will my parcel arrive", "parcel arrival", "track my parcel"),
        }.items()
        for text in texts
    ]
    paraphrases = {
        "are you closed today": "opening_hours",
        "money back": "refund",
        "fee": "pricing",
    }
    plain = BuiltinEngine(use_word_vectors=False).train(examples)
    with_vectors = BuiltinEngine().train(examples)
    assert {text: with_vectors.predict(text).label for text in paraphrases} == paraphrases
    assert all(plain.predict(text).label != label for text, label in paraphrases.items())


def test_predict_agrees_with_the_full_ranking(model: BuiltinModel) -> None:
    for text in ("where is my parcel", "我要退款", "hello", "zxqv", "refund or cancel"):
        ranked = [(label, c) for label, c in model.rank(text) if label != OOS]
        prediction = model.predict(text)
        assert [label for label, _ in prediction.ranking] == [label for label, _ in ranked[:5]]


def test_two_labels_without_builtin_intents_still_predict() -> None:
    examples = [TrainingExample("open hours", "hours"), TrainingExample("cancel it", "cancel")]
    model = BuiltinEngine(include_builtin=False).train(examples)
    assert model.predict("cancel").ranking[0][0] == "cancel"


def test_two_trainings_on_the_same_examples_answer_identically() -> None:
    # Every hub process trains its own copy; a customer must not get a different answer
    # (or a hand-off instead of one) depending on which process took the turn.
    examples = load_examples(str(FIXTURES / "train.csv"))
    first, second = BuiltinEngine().train(examples), BuiltinEngine().train(examples)
    for text in ("how long does a refund take", "我想取消訂單", "what's the weather"):
        assert first.predict(text) == second.predict(text)
