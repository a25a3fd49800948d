"""Knowledge-base search: tokenising a large knowledge base, bringing the index up to
date after one edit, and query latency. Prints figures; never asserts.

    .venv/bin/python -m bench.kb_search [--articles 3000]

The articles are the demo knowledge base repeated with a distinct word per copy, so the
vocabulary grows as a real one would, though less than unique content would.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter

from knowledge_base.commands import DEMO_KB
from knowledge_base.search import SearchIndex, document_terms

QUERIES = ["開門時間", "refun", "how long does delivery take", "退货", "password reset", "運費"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--articles", type=int, default=3000)
    count = parser.parse_args().articles
    demo = json.loads(DEMO_KB.read_text(encoding="utf-8"))
    started = time.perf_counter()
    terms: dict[int, Counter[str]] = {}
    for n in range(count):
        a = demo[n % len(demo)]
        terms[n] = document_terms(
            f"{a['question']} q{n}", [f"{p} v{n}" for p in a["phrasings"]], a["answer_markdown"]
        )
    tokenise = time.perf_counter() - started
    started = time.perf_counter()
    index = SearchIndex.from_terms(terms)
    merge = time.perf_counter() - started
    latencies = []
    for _ in range(50):
        for query in QUERIES:
            started = time.perf_counter()
            index.search(query)
            latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(f"{count} articles, {len(index.vocabulary)} terms")
    print(f"  tokenise every article (first search after start): {tokenise:.2f} s")
    print(f"  rebuild from cached counts (first search after an edit): {merge * 1000:.0f} ms")
    print(f"  query: p50 {statistics.median(latencies):.2f} ms, p99 {p99:.2f} ms")


if __name__ == "__main__":
    main()
