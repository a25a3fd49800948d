"""`switchboard bot eval`: load a labelled data set, train an engine, score it.

Data sets are CSV with a header ``text,label`` (label ``oos`` = should hand off) or
the CLINC150 JSON layout (``{"train": [[text, intent], …], "val": …, "oos_train":
…, "oos_val": …}``). A JSON path may name its parts after ``#``
(``data.json#val,oos_val``); without that, training reads ``train`` + ``oos_train``
and testing reads ``val`` + ``oos_val`` (``test`` + ``oos_test`` only when a file
has no validation parts).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from bot.engines.base import (
    OOS,
    REQUEST_HUMAN,
    AsyncTrainedModel,
    Engine,
    TrainedModel,
    TrainingExample,
    predict_within,
    train_model,
)

TRAIN_PARTS = ("train", "oos_train")
TEST_PARTS = ("val", "oos_val")
FALLBACK_TEST_PARTS = ("test", "oos_test")
# Labels that mean "a person takes over"; asking for a human on an out-of-scope
# message is a hand-off, not a wrong answer.
HAND_OFF_LABELS = frozenset({OOS, REQUEST_HUMAN})


class DatasetError(ValueError):
    """The file is not a data set this command understands."""


def load_examples(spec: str, parts: Sequence[str] = TRAIN_PARTS) -> list[TrainingExample]:
    """Examples from ``spec``: a CSV path, or a JSON path with optional ``#part,…``."""
    path_text, _, named = spec.partition("#")
    path = Path(path_text)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    if path.suffix.lower() == ".json":
        chosen = tuple(part for part in named.split(",") if part) or tuple(parts)
        return _load_json(path, chosen)
    if named:
        raise DatasetError(f"{spec}: '#parts' applies to JSON files only")
    return _load_csv(path)


def load_test_examples(spec: str) -> list[TrainingExample]:
    path_text, _, named = spec.partition("#")
    if named or not path_text.lower().endswith(".json"):
        return load_examples(spec)
    with Path(path_text).open(encoding="utf-8") as handle:
        data = json.load(handle)
    has_val = isinstance(data, dict) and any(part in data for part in TEST_PARTS)
    return load_examples(spec, TEST_PARTS if has_val else FALLBACK_TEST_PARTS)


def _load_csv(path: Path) -> list[TrainingExample]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"text", "label"} <= set(reader.fieldnames):
            raise DatasetError(f"{path}: expected a CSV header with columns text,label")
        return [
            TrainingExample(row["text"], row["label"].strip())
            for row in reader
            if row["text"] and row["label"]
        ]


def _load_json(path: Path, parts: Sequence[str]) -> list[TrainingExample]:
    with path.open(encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected the CLINC150 layout (an object of parts)")
    present = [part for part in parts if part in data]
    if not present:
        raise DatasetError(f"{path}: none of the parts {', '.join(parts)} (has: {', '.join(data)})")
    examples: list[TrainingExample] = []
    for part in present:
        for pair in data[part]:
            if not (isinstance(pair, list) and len(pair) == 2):
                raise DatasetError(f"{path}: part {part!r} must hold [text, intent] pairs")
            examples.append(TrainingExample(str(pair[0]), str(pair[1])))
    return examples


def stratified_holdout(
    examples: Sequence[TrainingExample], fraction: float, seed: int
) -> tuple[list[TrainingExample], list[TrainingExample]]:
    """Split into (train, held out): per label, shuffle with ``random.Random(seed)``
    and hold out ``round(fraction × count)`` examples (at least one when a label
    has two or more). Deterministic for a given file, fraction and seed."""
    by_label: dict[str, list[TrainingExample]] = defaultdict(list)
    for example in examples:
        by_label[example.label].append(example)
    rng = random.Random(seed)
    train: list[TrainingExample] = []
    held: list[TrainingExample] = []
    for label in sorted(by_label):
        group = list(by_label[label])
        rng.shuffle(group)
        count = round(fraction * len(group))
        if count == 0 and len(group) >= 2 and fraction > 0:
            count = 1
        held.extend(group[:count])
        train.extend(group[count:])
    return train, held


@dataclass(frozen=True)
class EvalReport:
    engine: str
    train_examples: int
    test_in_scope: int
    test_oos: int
    in_scope_accuracy: float | None
    oos_recall: float | None
    oos_wrong_answer_rate: float | None
    training_seconds: float
    latency_p50_ms: float
    latency_p99_ms: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def lines(self) -> list[str]:
        def pct(value: float | None) -> str:
            return "n/a" if value is None else f"{100 * value:.1f} %"

        return [
            f"engine                 {self.engine}",
            f"training examples      {self.train_examples}",
            f"test messages          {self.test_in_scope} in scope, {self.test_oos} oos",
            f"in-scope accuracy      {pct(self.in_scope_accuracy)}",
            f"oos recall (hand-off)  {pct(self.oos_recall)}",
            f"wrong answers on oos   {pct(self.oos_wrong_answer_rate)}",
            f"training time          {self.training_seconds:.2f} s",
            f"latency p50 / p99      {self.latency_p50_ms:.2f} / {self.latency_p99_ms:.2f} ms",
        ]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-len(ordered) * q // 100)))
    return ordered[int(rank) - 1]


def score(
    gold: Sequence[str], predicted: Sequence[str]
) -> tuple[float | None, float | None, float | None]:
    """(in-scope accuracy, oos recall, wrong-answer rate on oos)."""
    in_scope = [(g, p) for g, p in zip(gold, predicted, strict=True) if g != OOS]
    oos = [p for g, p in zip(gold, predicted, strict=True) if g == OOS]
    accuracy = sum(g == p for g, p in in_scope) / len(in_scope) if in_scope else None
    recall = sum(p in HAND_OFF_LABELS for p in oos) / len(oos) if oos else None
    return accuracy, recall, (None if recall is None else 1.0 - recall)


async def evaluate(
    engine: Engine,
    train: Sequence[TrainingExample],
    test: Sequence[TrainingExample],
    timeout: float = 5.0,  # noqa: ASYNC109 (per-message deadline for remote engines)
) -> EvalReport:
    """Train ``engine`` on ``train``, then predict every test message one at a time
    (sequentially, as a single conversation would) and score the decisions."""
    started = time.perf_counter()
    model: TrainedModel | AsyncTrainedModel = await train_model(engine, train)
    training_seconds = time.perf_counter() - started
    predicted: list[str] = []
    latencies: list[float] = []
    for example in test:
        begun = time.perf_counter()
        prediction = await predict_within(model, example.text, timeout)
        latencies.append(1000 * (time.perf_counter() - begun))
        predicted.append(prediction.label)
    close = getattr(model, "close", None)
    if close is not None:  # e.g. the rasa client's HTTP session
        await close()
    gold = [example.label for example in test]
    accuracy, recall, wrong = score(gold, predicted)
    return EvalReport(
        engine=engine.name,
        train_examples=len(train),
        test_in_scope=sum(label != OOS for label in gold),
        test_oos=sum(label == OOS for label in gold),
        in_scope_accuracy=accuracy,
        oos_recall=recall,
        oos_wrong_answer_rate=wrong,
        training_seconds=training_seconds,
        latency_p50_ms=percentile(latencies, 50),
        latency_p99_ms=percentile(latencies, 99),
    )


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `switchboard bot eval`."""
    parser.add_argument("--train", required=True, help="CSV text,label or CLINC150 JSON")
    parser.add_argument(
        "--test", help="CSV or JSON to score (JSON: val + oos_val unless FILE#parts)"
    )
    parser.add_argument(
        "--holdout",
        type=float,
        metavar="FRACTION",
        help="instead of --test, score a stratified held-out FRACTION of --train",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the --holdout split")
    parser.add_argument("--engine", choices=("builtin", "rasa"), default="builtin")
    parser.add_argument("--threshold", type=float, help="builtin: hand off below this confidence")
    parser.add_argument("--margin", type=float, help="builtin: hand off below this top-1 − top-2")
    parser.add_argument(
        "--rasa-url",
        default=os.environ.get("SWITCHBOARD_RASA_URL", ""),
        help="rasa: the server (default $SWITCHBOARD_RASA_URL); it scores the model it "
        "serves, trained beforehand from the same data (scripts/rasa_server.py)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run_eval_command(args: argparse.Namespace) -> int:
    """Run `switchboard bot eval`; returns the exit status."""
    from bot.engines import create_engine
    from bot.engines.base import EngineUnavailable, Thresholds

    try:
        train = load_examples(args.train)
        if args.holdout is not None:
            if args.test:
                raise DatasetError("give --test or --holdout, not both")
            if not 0 < args.holdout < 1:
                raise DatasetError("--holdout is a fraction between 0 and 1")
            train, test = stratified_holdout(train, args.holdout, args.seed)
        elif args.test:
            test = load_test_examples(args.test)
        else:
            raise DatasetError("give --test FILE or --holdout FRACTION")
        options: dict[str, object] = {}
        if args.engine == "builtin" and (args.threshold is not None or args.margin is not None):
            from bot.engines.builtin import DEFAULT_THRESHOLDS

            options["thresholds"] = Thresholds(
                confidence=DEFAULT_THRESHOLDS.confidence
                if args.threshold is None
                else args.threshold,
                margin=DEFAULT_THRESHOLDS.margin if args.margin is None else args.margin,
            )
        if args.engine == "rasa":
            options["url"] = args.rasa_url
        engine = create_engine(args.engine, **options)
        report = asyncio.run(evaluate(engine, train, test))
    except (DatasetError, EngineUnavailable, ValueError) as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        print("\n".join(report.lines()))
    return 0
