"""Benchmark of the builtin bot engine on validation data (docs/benchmarks.md, "Bot").

    .venv/bin/python -m bench.bot [DATASETS_DIR]

CLINC150 (Larson et al. 2019): train + oos_train → val + oos_val, with a sweep of the
hand-off threshold and margin. BANKING77 (Casanueva et al. 2020): a stratified 10 %
of train held out (bot.eval.stratified_holdout, seed 0). Run it pinned to one core
(``taskset -c 0``, ``OMP_NUM_THREADS=1``) for the latency figures.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from bot.engines.base import OOS, Thresholds, apply_thresholds
from bot.engines.builtin import DEFAULT_THRESHOLDS, RANKING_SIZE, BuiltinEngine, BuiltinModel
from bot.eval import (
    load_examples,
    load_test_examples,
    percentile,
    score,
    stratified_holdout,
)


def decide(ranked: list[tuple[str, float]], thresholds: Thresholds) -> str:
    if ranked[0][0] == OOS:
        return OOS
    candidates = [(label, c) for label, c in ranked if label != OOS][:RANKING_SIZE]
    return apply_thresholds(candidates, thresholds).label


def timed_rankings(
    model: BuiltinModel, texts: list[str]
) -> tuple[list[list[tuple[str, float]]], list[float], list[float]]:
    """Rankings, wall-clock and CPU milliseconds per ``predict``. CPU time is shown
    too because the machine is shared: wall-clock p99 includes waiting for a core."""
    rankings, wall, cpu = [], [], []
    for text in texts:
        rankings.append(model.rank(text))
        begun, begun_cpu = time.perf_counter(), time.thread_time()
        model.predict(text)
        cpu.append(1000 * (time.thread_time() - begun_cpu))
        wall.append(1000 * (time.perf_counter() - begun))
    return rankings, wall, cpu


def show_latency(wall: list[float], cpu: list[float]) -> None:
    print(
        f"  predict latency wall p50 {percentile(wall, 50):.2f} ms, p99 {percentile(wall, 99):.2f}"
        f" ms; CPU p50 {percentile(cpu, 50):.2f} ms, p99 {percentile(cpu, 99):.2f} ms"
    )


def clinc(root: Path) -> None:
    path = str(root / "clinc150" / "data_full_train_val.json")
    train, test = load_examples(path), load_test_examples(path)
    started = time.perf_counter()
    model = BuiltinEngine().train(train)
    trained = time.perf_counter() - started
    rankings, wall, cpu = timed_rankings(model, [e.text for e in test])
    gold = [e.label for e in test]
    print(f"CLINC150 train {len(train)} → val {len(test)}; training {trained:.1f} s")
    show_latency(wall, cpu)
    print("  threshold margin  in-scope  oos-recall")
    for threshold in (0.0, 0.1, 0.15, 0.2, 0.22, 0.25, 0.28, 0.3, 0.35, 0.4):
        for margin in (0.0, 0.05, 0.1):
            chosen = Thresholds(threshold, margin)
            accuracy, recall, _ = score(gold, [decide(r, chosen) for r in rankings])
            mark = "  ← default" if chosen == DEFAULT_THRESHOLDS else ""
            print(f"  {threshold:9.2f} {margin:6.2f}  {accuracy:8.4f}  {recall:10.4f}{mark}")


def banking(root: Path) -> None:
    examples = load_examples(str(root / "banking77" / "train.csv"))
    train, held = stratified_holdout(examples, 0.1, seed=0)
    started = time.perf_counter()
    model = BuiltinEngine().train(train)
    trained = time.perf_counter() - started
    rankings, wall, cpu = timed_rankings(model, [e.text for e in held])
    gold = [e.label for e in held]
    raw, _, _ = score(gold, [next(label for label, _ in r if label != OOS) for r in rankings])
    handed, _, _ = score(gold, [decide(r, DEFAULT_THRESHOLDS) for r in rankings])
    print(f"BANKING77 train {len(train)} → held out {len(held)}; training {trained:.1f} s")
    print(
        f"  accuracy (top-1 article) {raw:.4f}; "
        f"answered correctly with the default hand-off {handed:.4f}"
    )
    show_latency(wall, cpu)


if __name__ == "__main__":
    datasets = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/datasets")
    banking(datasets)
    clinc(datasets)
