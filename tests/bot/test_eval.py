"""`switchboard bot eval` on small fixture sets."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bot.engines.builtin import BuiltinEngine
from bot.eval import evaluate, load_examples, load_test_examples, stratified_holdout
from switchboard.cli import main

FIXTURES = Path(__file__).parent / "fixtures"
TRAIN = str(FIXTURES / "train.csv")
TEST = str(FIXTURES / "test.csv")


def test_builtin_scores_on_the_bilingual_fixture() -> None:
    report = asyncio.run(evaluate(BuiltinEngine(), load_examples(TRAIN), load_test_examples(TEST)))
    assert report.test_in_scope == 26
    assert report.test_oos == 6
    assert report.in_scope_accuracy is not None and report.in_scope_accuracy >= 0.85
    assert report.oos_recall is not None and report.oos_recall >= 0.8
    assert report.oos_wrong_answer_rate == pytest.approx(1 - report.oos_recall)


def test_clinc_layout_reads_train_and_validation_parts(tmp_path: Path) -> None:
    data = {
        "train": [["open hours", "hours"], ["cancel it", "cancel"]],
        "oos_train": [["sing", "oos"]],
        "val": [["when open", "hours"]],
        "oos_val": [["dance", "oos"]],
        "test": [["never read", "hours"]],
    }
    path = tmp_path / "clinc.json"
    path.write_text(json.dumps(data))
    assert [e.text for e in load_examples(str(path))] == ["open hours", "cancel it", "sing"]
    assert [e.text for e in load_test_examples(str(path))] == ["when open", "dance"]
    assert [e.text for e in load_examples(f"{path}#test")] == ["never read"]


def test_holdout_is_stratified_and_repeatable() -> None:
    examples = load_examples(TRAIN)
    train, held = stratified_holdout(examples, 0.25, seed=0)
    again = stratified_holdout(examples, 0.25, seed=0)
    assert (train, held) == again
    assert len(train) + len(held) == len(examples)
    assert {e.label for e in held} == {e.label for e in examples}


def test_cli_json_output_shape(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bot", "eval", "--train", TRAIN, "--test", TEST, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) >= {
        "engine",
        "in_scope_accuracy",
        "oos_recall",
        "oos_wrong_answer_rate",
        "training_seconds",
        "latency_p50_ms",
        "latency_p99_ms",
    }
    assert report["engine"] == "builtin"
    assert report["in_scope_accuracy"] >= 0.85


def test_cli_human_readable_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bot", "eval", "--train", TRAIN, "--holdout", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "in-scope accuracy" in out and "latency p50 / p99" in out


def test_cli_rejects_a_file_without_text_and_label(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("question,answer\nhi,hello\n")
    assert main(["bot", "eval", "--train", str(bad), "--test", TEST]) == 2
    assert "text,label" in capsys.readouterr().err


def test_cli_rasa_without_a_server_url_says_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SWITCHBOARD_RASA_URL", raising=False)
    code = main(
        ["bot", "eval", "--engine", "rasa", "--rasa-url", "", "--train", TRAIN, "--test", TEST]
    )
    assert code == 2
    assert "url" in capsys.readouterr().err.lower()


def test_cli_rasa_outage_scores_as_hand_off_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    # Port 9 (discard) refuses connections here: every message must hand off.
    args = ["bot", "eval", "--engine", "rasa", "--rasa-url", "http://127.0.0.1:9"]
    assert main([*args, "--train", TRAIN, "--test", TEST, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["engine"] == "rasa"
    assert report["oos_recall"] == 1.0
    assert report["in_scope_accuracy"] == 0.0


def test_rasa_side_hands_off_as_rasas_fallback_classifier_does() -> None:
    """bench/bot_rasa.py re-applies FallbackClassifier's rule to DIET's ranking."""
    from bench.bot_rasa import Parse, decide, score

    sure = Parse("refund", "refund", [("refund", 0.9), ("cancel", 0.05)], 1.0)
    weak = Parse("refund", "nlu_fallback", [("refund", 0.25), ("cancel", 0.2)], 1.0)
    close = Parse("cancel", "nlu_fallback", [("refund", 0.5), ("cancel", 0.45)], 1.0)
    oos = Parse("oos", "out_of_scope", [("out_of_scope", 0.8), ("refund", 0.1)], 1.0)
    parses = [sure, weak, close, oos]
    assert [decide(p, 0.3, 0.1) for p in parses] == ["refund", "oos", "oos", "oos"]
    assert [decide(p, 0.0, 0.0) for p in parses] == ["refund", "refund", "refund", "oos"]
    result = score(parses, [decide(p, 0.3, 0.1) for p in parses])
    assert result == {
        "in_scope_accuracy": pytest.approx(1 / 3),
        "oos_recall": 1.0,
        "oos_wrong_answer_rate": 0.0,
    }


def test_rasa_training_data_keeps_every_example_on_one_line() -> None:
    from bench.bot_rasa import domain_yaml, nlu_yaml
    from bot.engines.base import TrainingExample

    examples = [
        TrainingExample("where is [my] card {now}", "card_arrival"),
        TrainingExample("what is  the\nweather", "oos"),
    ]
    nlu = nlu_yaml(examples)
    assert "    - where is (my) card (now)\n" in nlu  # no entity syntax left
    assert "    - what is the weather\n" in nlu
    assert '- intent: "out_of_scope"' in nlu
    assert '- "nlu_fallback"' in domain_yaml(examples)
