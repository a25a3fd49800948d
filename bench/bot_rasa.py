"""Rasa DIET side by side with the builtin engine, on the same data (docs/benchmarks.md, "Bot").

    .venv/bin/python -m bench.bot_rasa banking77 [--out DIR] [--epochs 40]
    .venv/bin/python -m bench.bot_rasa clinc150  [--out DIR] [--epochs 40]

For each data set: write the training split (the same one ``bench/bot.py`` and
``switchboard bot eval`` use, plus the builtin engine's built-in intents and generic
out-of-scope examples, so both engines learn from the same rows) as Rasa 3.x NLU data,
train DIET in Rasa's own environment (``scripts/rasa_server.py build``), start the real
server on loopback, ask ``POST /model/parse`` for every validation message one at a
time, then again with several requests in flight, then train and time the builtin engine
on the same split, and write ``result.json`` plus every
parse's intent ranking (``parses.jsonl``) to ``--out``. A model already trained in
``--out`` by an earlier run with the same data and config is reused (``--retrain`` to
force), so the parse stage can be rerun without the half-hour training.

The pipeline is the one BOT.md's anchor measured (whitespace tokens, word counts and
``char_wb`` 1–4-gram counts, DIETClassifier 40 epochs) with Rasa's FallbackClassifier
(threshold 0.3, ambiguity 0.1) for the hand-off, and each label is a plain intent: this
measures DIET as an intent classifier, as Larson et al. and Casanueva et al. report it.
(The ``rasa`` engine's knowledge-base pipeline adds a ResponseSelector over ``faq/<key>``
intents, a second model that doubles the training time.) Entity recognition is off:
these data sets have no entities.

Rasa is limited to one thread per pool (``TF_INTRA_OP_PARALLELISM_THREADS=1``,
``TF_INTER_OP_PARALLELISM_THREADS=1``, ``OMP_NUM_THREADS=1``) for training and serving,
so its figures are one core's worth like the builtin's, and run under ``nice``.

It drives Rasa through its command line and HTTP API (standard library only); the
builtin engine's side of the same run (its scores and single-message predictions per
second on the same split, after Rasa's server has stopped) needs the hub's environment.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import sys
import time
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.engines import rasa_server
from bot.engines.base import OOS, TrainingExample
from bot.engines.builtin_intents import builtin_examples
from bot.eval import load_examples, load_test_examples, percentile, stratified_holdout

DATASETS = Path("/work/shared/datasets")
IN_FLIGHT = 8
RASA_OOS_INTENTS = frozenset({"out_of_scope", "nlu_fallback"})
FALLBACK_THRESHOLD = 0.3
FALLBACK_AMBIGUITY = 0.1
THREADS = {
    "TF_INTRA_OP_PARALLELISM_THREADS": "1",
    "TF_INTER_OP_PARALLELISM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}

CONFIG = """\
# Written by bench/bot_rasa.py: DIET as an intent classifier, one label per intent.
recipe: default.v1
language: en
assistant_id: switchboard-bench
pipeline:
- name: WhitespaceTokenizer
- name: CountVectorsFeaturizer
- name: CountVectorsFeaturizer
  analyzer: char_wb
  min_ngram: 1
  max_ngram: 4
- name: DIETClassifier
  epochs: {epochs}
  constrain_similarities: true
  entity_recognition: false
  random_seed: 1
- name: FallbackClassifier
  threshold: {threshold}
  ambiguity_threshold: {ambiguity}
policies: []
"""


def splits(name: str, root: Path) -> tuple[list[TrainingExample], list[TrainingExample]]:
    """(train, validation) exactly as bench/bot.py splits them."""
    if name == "banking77":
        examples = load_examples(str(root / "banking77" / "train.csv"))
        return stratified_holdout(examples, 0.1, seed=0)
    if name == "clinc150":
        path = str(root / "clinc150" / "data_full_train_val.json")
        return load_examples(path), load_test_examples(path)
    raise SystemExit(f"unknown data set {name!r}: banking77 or clinc150")


def intent_of(label: str) -> str:
    return "out_of_scope" if label == OOS else label


def _yaml_line(text: str) -> str:
    # Rasa reads "[x](y)" and "{...}" as entity annotations; examples are one line each.
    return " ".join(text.translate(str.maketrans("[]{}", "()()")).split())


def nlu_yaml(examples: Sequence[TrainingExample]) -> str:
    """Rasa 3.x nlu.yml: block-literal example lists need no escaping."""
    by_intent: dict[str, dict[str, None]] = {}
    for example in examples:
        line = _yaml_line(example.text)
        if line:
            by_intent.setdefault(intent_of(example.label), {})[line] = None
    out = ['version: "3.1"', "nlu:"]
    for intent, lines in by_intent.items():
        out.append(f"- intent: {json.dumps(intent)}")
        out.append("  examples: |")
        out.extend(f"    - {line}" for line in lines)
    return "\n".join(out) + "\n"


def domain_yaml(examples: Sequence[TrainingExample]) -> str:
    intents = sorted({intent_of(e.label) for e in examples} | {"nlu_fallback"})
    return 'version: "3.1"\nintents:\n' + "".join(f"- {json.dumps(i)}\n" for i in intents)


@dataclass(frozen=True)
class Parse:
    gold: str
    intent: str  # Rasa's verdict, after its FallbackClassifier
    ranking: list[tuple[str, float]]  # DIET's own ranking (nlu_fallback left out)
    millis: float


def post_parse(url: str, text: str, timeout: float = 30.0) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 (our own loopback server)
        f"{url}/model/parse",
        data=json.dumps({"text": text}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        body: dict[str, Any] = json.loads(response.read())
    return body


def parse_all(url: str, test: Sequence[TrainingExample]) -> tuple[list[Parse], float]:
    """Every message one at a time; returns the parses and the wall time taken."""
    parses = []
    started = time.perf_counter()
    for example in test:
        begun = time.perf_counter()
        body = post_parse(url, example.text)
        millis = 1000 * (time.perf_counter() - begun)
        ranking = [
            (str(entry["name"]), float(entry["confidence"]))
            for entry in body.get("intent_ranking") or []
            if entry["name"] != "nlu_fallback"
        ]
        parses.append(Parse(example.label, str(body["intent"]["name"]), ranking, millis))
    return parses, time.perf_counter() - started


def parse_in_flight(url: str, texts: Sequence[str], in_flight: int) -> tuple[float, list[float]]:
    """Throughput (parses/s) with ``in_flight`` requests outstanding, and their latencies."""

    def one(text: str) -> float:
        begun = time.perf_counter()
        post_parse(url, text)
        return 1000 * (time.perf_counter() - begun)

    started = time.perf_counter()
    with ThreadPoolExecutor(in_flight) as pool:
        latencies = list(pool.map(one, texts))
    return len(texts) / (time.perf_counter() - started), latencies


def decide(parse: Parse, threshold: float, ambiguity: float) -> str:
    """Rasa's FallbackClassifier rule over DIET's ranking, at any threshold."""
    if not parse.ranking:
        return OOS
    (top, confidence), runner_up = parse.ranking[0], parse.ranking[1:2]
    if top in RASA_OOS_INTENTS or confidence < threshold:
        return OOS
    if runner_up and confidence - runner_up[0][1] < ambiguity:
        return OOS
    return top


def score(parses: Sequence[Parse], predicted: Sequence[str]) -> dict[str, float | None]:
    in_scope = [
        (p.gold, guess) for p, guess in zip(parses, predicted, strict=True) if p.gold != OOS
    ]
    oos = [guess for p, guess in zip(parses, predicted, strict=True) if p.gold == OOS]
    handed_off = {OOS, "request_human"}
    recall = sum(g in handed_off for g in oos) / len(oos) if oos else None
    return {
        "in_scope_accuracy": sum(g == p for g, p in in_scope) / len(in_scope) if in_scope else None,
        "oos_recall": recall,
        "oos_wrong_answer_rate": None if recall is None else 1 - recall,
    }


def sweep(parses: Sequence[Parse]) -> list[dict[str, Any]]:
    rows = []
    for threshold in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
        for ambiguity in (0.0, 0.1):
            predicted = [decide(p, threshold, ambiguity) for p in parses]
            row: dict[str, Any] = {"threshold": threshold, "ambiguity": ambiguity}
            rows.append(row | score(parses, predicted))
    return rows


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def train_if_needed(
    data: Path, models: Path, config: str, venv: Path, retrain: bool, threads: int = 1
) -> tuple[Path, float | None]:
    """The model for this data and config, trained unless an earlier run left it."""
    digest = hashlib.sha256(
        b"".join((data / n).read_bytes() for n in ("nlu.yml", "domain.yml")) + config.encode()
    ).hexdigest()
    model, stamp = models / "nlu.tar.gz", models / "trained.json"
    if not retrain and model.is_file() and stamp.is_file():
        earlier = json.loads(stamp.read_text())
        if earlier.get("digest") == digest:
            print(f"reusing {model} (trained in {earlier['seconds']:.0f} s)", file=sys.stderr)
            return model, float(earlier["seconds"])
    models.mkdir(parents=True, exist_ok=True)
    (models / "config.yml").write_text(config, encoding="utf-8")
    command = [
        str(venv / "bin" / "rasa"),
        "train",
        "nlu",
        "--config",
        str(models / "config.yml"),
        "--nlu",
        str(data / "nlu.yml"),
        "--domain",
        str(data / "domain.yml"),
        "--out",
        str(models),
        "--fixed-model-name",
        "nlu",
    ]
    print(f"training: {' '.join(command)}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    import subprocess

    result = subprocess.run(command, cwd=models, env=_env(threads), check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0 or not model.is_file():
        raise SystemExit(f"rasa train nlu failed with exit code {result.returncode}")
    stamp.write_text(json.dumps({"digest": digest, "seconds": seconds}))
    return model, seconds


def _env(threads: int = 1) -> dict[str, str]:
    """Rasa's environment with `threads` per pool (serving always uses one)."""
    return rasa_server.rasa_env() | {name: str(threads) for name in THREADS}


def builtin_side(
    train: Sequence[TrainingExample], test: Sequence[TrainingExample]
) -> dict[str, Any]:
    """The builtin engine on the same split in the same run: its scores at its default
    hand-off, and single-message predictions per second, one at a time on one thread."""
    # The hub's environment (numpy, scikit-learn), imported after THREADS is set so
    # BLAS starts with one thread.
    from bot.engines.builtin import BuiltinEngine

    started = time.perf_counter()
    model = BuiltinEngine().train(train)
    training_seconds = time.perf_counter() - started
    for example in test[:20]:  # warm up, as for Rasa
        model.predict(example.text)
    predicted, latencies = [], []
    begun_all = time.perf_counter()
    for example in test:
        begun = time.perf_counter()
        predicted.append(model.predict(example.text).label)
        latencies.append(1000 * (time.perf_counter() - begun))
    seconds = time.perf_counter() - begun_all
    gold = [Parse(e.label, "", [], 0.0) for e in test]
    return {
        "training_seconds": training_seconds,
        "with_default_hand_off": score(gold, predicted),
        "predictions_per_second": len(test) / seconds,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
    }


def run(
    name: str,
    root: Path,
    out: Path,
    epochs: int,
    venv: Path,
    retrain: bool,
    train_threads: int = 1,
) -> dict[str, Any]:
    os.environ.update(THREADS)  # rasa_server.start() passes os.environ on to Rasa
    train, test = splits(name, root)
    train_rows = train + builtin_examples()
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "nlu.yml").write_text(nlu_yaml(train_rows), encoding="utf-8")
    (data / "domain.yml").write_text(domain_yaml(train_rows), encoding="utf-8")
    config = CONFIG.format(
        epochs=epochs, threshold=FALLBACK_THRESHOLD, ambiguity=FALLBACK_AMBIGUITY
    )
    model, training_seconds = train_if_needed(
        data, out / "models", config, venv, retrain, train_threads
    )

    process, url = rasa_server.start(model, _free_port(), venv, log_file=out / "rasa-run.log")
    try:
        for example in test[:20]:  # warm up: the first parses build TF's graph
            post_parse(url, example.text)
        parses, sequential_seconds = parse_all(url, test)
        texts = [e.text for e in test]
        concurrent_rate, concurrent_latencies = parse_in_flight(url, texts, IN_FLIGHT)
    finally:
        rasa_server.stop(process)
    builtin = builtin_side(train, test)

    with (out / "parses.jsonl").open("w", encoding="utf-8") as handle:
        for parse in parses:
            handle.write(json.dumps(parse.__dict__, ensure_ascii=False) + "\n")
    latencies = [p.millis for p in parses]
    as_rasa = [OOS if p.intent in RASA_OOS_INTENTS else p.intent for p in parses]
    top1 = [p.ranking[0][0] if p.ranking else OOS for p in parses]
    result: dict[str, Any] = {
        "data_set": name,
        "engine": f"rasa {rasa_server.RASA_VERSION} DIET, {epochs} epochs",
        "train_examples": len(train_rows),
        "test_in_scope": sum(e.label != OOS for e in test),
        "test_oos": sum(e.label == OOS for e in test),
        "training_seconds": training_seconds,
        "train_threads": train_threads,
        "fallback": {"threshold": FALLBACK_THRESHOLD, "ambiguity": FALLBACK_AMBIGUITY},
        "with_fallback": score(parses, as_rasa),
        "top1_no_fallback": score(parses, top1),
        "sweep": sweep(parses),
        "sequential": {
            "parses_per_second": len(parses) / sequential_seconds,
            "p50_ms": percentile(latencies, 50),
            "p99_ms": percentile(latencies, 99),
        },
        f"in_flight_{IN_FLIGHT}": {
            "parses_per_second": concurrent_rate,
            "p50_ms": percentile(concurrent_latencies, 50),
            "p99_ms": percentile(concurrent_latencies, 99),
        },
        "builtin": builtin,
        "builtin_vs_rasa_sequential": builtin["predictions_per_second"]
        / (len(parses) / sequential_seconds),
        "builtin_vs_rasa_in_flight": builtin["predictions_per_second"] / concurrent_rate,
        "load_average": os.getloadavg(),
    }
    (out / "result.json").write_text(json.dumps(result, indent=2))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("data_set", choices=("banking77", "clinc150"))
    parser.add_argument("--datasets", type=Path, default=DATASETS)
    parser.add_argument("--out", type=Path, help="default: var/bench-rasa/DATA_SET")
    parser.add_argument("--epochs", type=int, default=rasa_server.DEFAULT_EPOCHS)
    parser.add_argument("--venv", type=Path, default=rasa_server.DEFAULT_VENV)
    parser.add_argument("--retrain", action="store_true", help="ignore a model already in --out")
    parser.add_argument(
        "--train-threads",
        type=int,
        default=1,
        help="threads per TF pool for training only (serving keeps one); DIET's result "
        "does not depend on it, its training time does",
    )
    args = parser.parse_args(argv)
    if not rasa_server.is_built(args.venv):
        print(f"no Rasa in {args.venv}: run scripts/rasa_server.py build", file=sys.stderr)
        return 1
    out = (args.out or Path("var/bench-rasa") / args.data_set).resolve()
    result = run(
        args.data_set, args.datasets, out, args.epochs, args.venv, args.retrain, args.train_threads
    )
    summary = {k: v for k, v in result.items() if k != "sweep"}
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
