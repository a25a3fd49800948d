"""Search over questions, phrasings and answers, in English and Chinese.

Text is normalised (NFKC, case-folded, traditional → simplified with OpenCC t2s) so
"開門時間" finds "开门时间". Latin-script text splits into words, and a query word also
matches words it begins ("refun" → "refund"); Chinese splits into character bigrams
(plus single characters, so a one-character query still finds something), which needs
no segmenter. Documents are ranked with BM25 (Okapi, k1=1.2, b=0.75).

The index lives in memory and is rebuilt when the knowledge base changes (checked with
one cheap aggregate query), which is quick for a knowledge base of thousands of articles.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import re
import unicodedata
import weakref
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import opencc
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from knowledge_base.markdown import plain_text
from knowledge_base.models import Article

K1 = 1.2
B = 0.75
# A question says what the article is about more surely than a sentence of its answer.
QUESTION_WEIGHT = 3
PHRASING_WEIGHT = 2
# A word the query only begins counts for less than the whole word.
PREFIX_DISCOUNT = 0.7
MIN_PREFIX = 2

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff"
_TOKEN = re.compile(f"([{_HAN}]+)|([^\\W_{_HAN}]+)")
_HAN_CHAR = re.compile(f"[{_HAN}]")
_HAN_RUN = re.compile(f"[{_HAN}]+")
_t2s = opencc.OpenCC("t2s")


def normalise(text: str) -> str:
    """One spelling for every way of writing the same thing."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _HAN_RUN.sub(lambda run: _simplified(run[0]), folded)


@lru_cache(maxsize=65536)
def _simplified(run: str) -> str:
    # OpenCC in pure Python is the slow part of indexing; only Chinese runs need it, and
    # they repeat (phrasings of one question share most words). A whole run converts at
    # once, so OpenCC still sees multi-character phrases.
    converted: str = _t2s.convert(run)
    return converted


def _han_terms(run: str, *, unigrams: bool) -> Iterable[str]:
    if len(run) == 1:
        yield run
        return
    if unigrams:
        yield from run
    yield from (run[i : i + 2] for i in range(len(run) - 1))


def index_terms(text: str) -> list[str]:
    """Terms a document is indexed under: words, Chinese bigrams and single characters."""
    terms: list[str] = []
    for han, word in _TOKEN.findall(normalise(text)):
        terms.extend(_han_terms(han, unigrams=True) if han else [word])
    return terms


def query_terms(text: str) -> list[str]:
    """Terms a query looks for: words, and bigrams for Chinese runs longer than one."""
    terms: list[str] = []
    for han, word in _TOKEN.findall(normalise(text)):
        terms.extend(_han_terms(han, unigrams=False) if han else [word])
    return list(dict.fromkeys(terms))


def _is_han(char: str) -> bool:
    # Chinese terms are bigrams already: a prefix of one is a single character.
    return _HAN_CHAR.match(char) is not None


def document_terms(question: str, phrasings: Sequence[str], answer: str) -> Counter[str]:
    """An article's weighted term counts."""
    counts: Counter[str] = Counter()
    for term in index_terms(question):
        counts[term] += QUESTION_WEIGHT
    for phrasing in phrasings:
        for term in index_terms(phrasing):
            counts[term] += PHRASING_WEIGHT
    counts.update(index_terms(plain_text(answer)))
    return counts


@dataclass(frozen=True)
class Hit:
    article_id: int
    score: float


@dataclass
class SearchIndex:
    """BM25 over an in-memory inverted index."""

    postings: dict[str, dict[int, int]] = field(default_factory=dict)
    lengths: dict[int, int] = field(default_factory=dict)
    vocabulary: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, documents: Iterable[tuple[int, str, Sequence[str], str]]) -> SearchIndex:
        """From (article id, question, phrasings, answer Markdown) tuples."""
        return cls.from_terms({doc[0]: document_terms(*doc[1:]) for doc in documents})

    @classmethod
    def from_terms(cls, terms: dict[int, Counter[str]]) -> SearchIndex:
        """From each article's term counts (cheap: no tokenising)."""
        index = cls()
        for article_id, counts in terms.items():
            index.lengths[article_id] = sum(counts.values())
            for term, count in counts.items():
                index.postings.setdefault(term, {})[article_id] = count
        index.vocabulary = sorted(index.postings)
        return index

    def _expansions(self, term: str) -> list[tuple[str, float]]:
        found = [(term, 1.0)] if term in self.postings else []
        if len(term) >= MIN_PREFIX and not _is_han(term[0]):
            start = bisect.bisect_right(self.vocabulary, term)
            for candidate in self.vocabulary[start:]:
                if not candidate.startswith(term):
                    break
                found.append((candidate, PREFIX_DISCOUNT))
        return found

    def search(self, query: str, limit: int = 20) -> list[Hit]:
        count = len(self.lengths)
        if not count:
            return []
        average = sum(self.lengths.values()) / count
        scores: Counter[int] = Counter()
        for term in query_terms(query):
            best: dict[int, float] = {}
            for candidate, weight in self._expansions(term):
                posting = self.postings[candidate]
                idf = math.log(1 + (count - len(posting) + 0.5) / (len(posting) + 0.5))
                for article_id, tf in posting.items():
                    norm = K1 * (1 - B + B * self.lengths[article_id] / average)
                    score = weight * idf * tf * (K1 + 1) / (tf + norm)
                    if score > best.get(article_id, 0.0):
                        best[article_id] = score
            scores.update(best)
        ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
        return [Hit(article_id, round(score, 4)) for article_id, score in ranked[:limit]]


class SearchCache:
    """One index per process, brought up to date when the articles change. Only new or
    edited articles are tokenised again (keyed by id and version): after an edit, the
    next search costs a merge of cached counts, not a re-read of the whole knowledge base."""

    def __init__(self) -> None:
        self._index = SearchIndex()
        self._terms: dict[int, tuple[int, Counter[str]]] = {}
        self._fingerprint: tuple[object, ...] | None = None
        self._lock = asyncio.Lock()

    async def index(self, session: AsyncSession) -> SearchIndex:
        # Every save bumps a version; a new article changes the count and the top id.
        summary = select(func.count(Article.id), func.sum(Article.version), func.max(Article.id))
        fingerprint = tuple((await session.execute(summary)).one())
        if fingerprint == self._fingerprint:
            return self._index
        async with self._lock:
            if fingerprint != self._fingerprint:
                await self._refresh(session)
                self._fingerprint = fingerprint
        return self._index

    async def _refresh(self, session: AsyncSession) -> None:
        rows = await session.execute(select(Article.id, Article.version))
        versions = {article_id: version for article_id, version in rows}
        stale = [i for i, v in versions.items() if self._terms.get(i, (None,))[0] != v]
        terms = {i: entry for i, entry in self._terms.items() if i in versions}
        for start in range(0, len(stale), 500):
            content = await session.execute(
                select(
                    Article.id,
                    Article.version,
                    Article.question,
                    Article.phrasings,
                    Article.answer_markdown,
                ).where(Article.id.in_(stale[start : start + 500]))
            )
            batch = [(r[0], r[1], r[2], list(r[3]), r[4]) for r in content]
            counted = await asyncio.to_thread(_count_batch, batch)
            terms.update(counted)
        self._terms = terms
        self._index = await asyncio.to_thread(
            SearchIndex.from_terms, {i: c for i, (_v, c) in terms.items()}
        )


def _count_batch(
    batch: list[tuple[int, int, str, list[str], str]],
) -> dict[int, tuple[int, Counter[str]]]:
    return {row[0]: (row[1], document_terms(row[2], row[3], row[4])) for row in batch}


# One cache per engine (a process has one; tests open many databases in one process).
_caches: weakref.WeakKeyDictionary[object, SearchCache] = weakref.WeakKeyDictionary()


async def search_articles(session: AsyncSession, query: str, limit: int = 50) -> list[Hit]:
    """Articles (any status) matching the query, best first."""
    cache = _caches.setdefault(session.get_bind(), SearchCache())
    return (await cache.index(session)).search(query, limit)
