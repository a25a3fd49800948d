"""scripts/rasa_server.py without Rasa: the pipeline it trains with, and the checks that
keep a half-built environment or a missing export from passing for good ones."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.engines import rasa_server
from bot.engines.base import TrainingExample
from bot.engines.rasa_local import training_data


def test_the_pipeline_is_bilingual_without_a_segmenter_and_falls_back_when_unsure(
    tmp_path: Path,
) -> None:
    config = yaml.safe_load(rasa_server.write_config(tmp_path, epochs=7).read_text())
    components = {c["name"]: c for c in config["pipeline"]}
    assert "JiebaTokenizer" not in components
    char_counts = [c for c in config["pipeline"] if c.get("analyzer") == "char_wb"]
    assert char_counts == [
        {"name": "CountVectorsFeaturizer", "analyzer": "char_wb", "min_ngram": 1, "max_ngram": 4}
    ]
    assert components["DIETClassifier"]["epochs"] == 7
    assert components["ResponseSelector"]["retrieval_intent"] == "faq"
    assert components["FallbackClassifier"] == {
        "name": "FallbackClassifier",
        "threshold": 0.3,
        "ambiguity_threshold": 0.1,
    }


def test_an_environment_without_the_completion_mark_is_not_taken_for_built(
    tmp_path: Path,
) -> None:
    venv = tmp_path / "rasa"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to("/bin/false")
    assert not rasa_server.is_built(venv)
    (venv / rasa_server.COMPLETE_MARKER).touch()
    assert not rasa_server.is_built(venv)  # marked, but rasa does not import


def test_training_without_an_export_says_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(rasa_server.RasaError, match=r"nlu\.yml is missing"):
        rasa_server.train(tmp_path / "empty", tmp_path / "out", venv=tmp_path / "venv")


def test_eval_examples_become_rasa_training_data() -> None:
    data = training_data(
        [
            TrainingExample("when are you open", "opening_hours"),
            TrainingExample("what are your [hours]", "opening_hours"),
            TrainingExample("转人工", "request_human"),
            TrainingExample("tell me a joke", "oos"),
        ]
    )
    assert data["nlu.yml"]["nlu"] == [
        {
            "intent": "faq/opening_hours",
            "examples": "- when are you open\n- what are your (hours)\n",
        },
        {"intent": "request_human", "examples": "- 转人工\n"},
        {"intent": "out_of_scope", "examples": "- tell me a joke\n"},
    ]
    domain = data["domain.yml"]
    assert domain["intents"] == ["faq", "nlu_fallback", "out_of_scope", "request_human"]
    assert domain["responses"] == {"utter_faq/opening_hours": [{"text": "opening_hours"}]}


def test_building_without_a_usable_python_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RASA_PYTHON", str(tmp_path / "no-python"))
    with pytest.raises(rasa_server.RasaError, match="cannot run"):
        rasa_server.build(tmp_path / "rasa", log=False)
