"""The builtin engine: TF-IDF word and character n-grams plus static word vectors
into a linear SVM.

No model download, trains in seconds, predicts in about a millisecond.
Text is normalised (NFKC, casefold, traditional → simplified Chinese) so one
phrasing answers both scripts; character n-grams cover Chinese without a word
segmenter. The word vectors are WordLlama's (``l2_supercat`` 256-d, the token
embeddings of Llama 2 trained for sentence similarity), shipped inside the
``wordllama`` wheel and read from there: a message's vector is the mean of its tokens'
rows, so paraphrases with no n-gram in common ("card hasn't arrived" / "still waiting
for my card") get close. An ``oos`` class is trained from generic out-of-scope
examples (and any ``oos`` rows given); on top of it a confidence threshold and a
margin rule (top-1 minus top-2) hand off when the model is unsure.
"""

from __future__ import annotations

import importlib.util
import math
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import opencc
import scipy.sparse
from numpy.typing import NDArray
from safetensors.numpy import load_file
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion
from sklearn.svm import LinearSVC
from tokenizers import Tokenizer

from bot.engines.base import OOS, Prediction, Thresholds, TrainingExample, apply_thresholds
from bot.engines.builtin_intents import builtin_examples

# Picked on CLINC150 `val` + `oos_val` (docs/benchmarks.md, "Bot"): 0.28 hands off
# 72 % of out-of-scope messages at 93.5 % in-scope accuracy; 0.30 buys 3 points of
# recall for 0.1 point of accuracy, 0.25 gives 4 points of recall for nothing. A margin
# rule only cost accuracy there at every threshold, so it is off by default; inboxes
# may set one.
DEFAULT_THRESHOLDS = Thresholds(confidence=0.28, margin=0.0)
SCORE_SCALE = 5.0
RANKING_SIZE = 5
# The SVM's C and the word vectors' scale against the unit-length TF-IDF blocks,
# picked on BANKING77's held-out split and CLINC150 val (docs/benchmarks.md, "Bot").
REGULARISATION = 0.5
WORD_VECTOR_SCALE = 1.25
WORD_VECTORS = ("wordllama", "weights/l2_supercat_256.safetensors")
WORD_TOKENIZER = ("wordllama", "tokenizers/l2_supercat_tokenizer_config.json")


@lru_cache(maxsize=1)
def _t2s() -> Any:
    return opencc.OpenCC("t2s")


def _one_script(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).strip()
    if any("\u3400" <= ch <= "\u9fff" for ch in text):
        text = str(_t2s().convert(text))
    return text


def normalise(text: str) -> str:
    """One form per meaning: full-width → half-width, case folded, traditional
    Chinese → simplified (so 轉人工 and 转人工 share every feature)."""
    return _one_script(text).casefold()


def _packaged(package: str, name: str) -> Path:
    # Found without importing the package: wordllama's own loader fetches its
    # tokenizer from the network, and this engine must never download anything.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the {package} package is not installed (pip install {package})")
    path = Path(next(iter(spec.submodule_search_locations))) / name
    if not path.is_file():
        raise RuntimeError(f"{path} is missing from the installed {package} package")
    return path


class WordVectors:
    """Static token vectors: a message's vector is the L2-normalised mean of its
    tokens' rows. Loaded once per process (16 MB, ~0.3 s) and shared by every model."""

    def __init__(self, tokenizer: Tokenizer, table: NDArray[np.floating[Any]]) -> None:
        self._tokenizer = tokenizer
        self._table = table
        self.size = table.shape[1]

    def embed(self, text: str) -> NDArray[np.float32] | None:
        # Case is kept: the tokenizer is cased, and casefolding measured worse.
        ids = self._tokenizer.encode(_one_script(text), add_special_tokens=False).ids
        if not ids:
            return None
        # The sum, not the mean: the vector is normalised to unit length anyway.
        total: NDArray[np.float32] = np.add.reduce(self._table[ids], axis=0, dtype=np.float32)
        norm = math.sqrt(float(total @ total))
        return total / norm if norm else None

    def embed_all(self, texts: Sequence[str]) -> NDArray[np.float32]:
        matrix = np.zeros((len(texts), self.size), dtype=np.float32)
        for row, text in enumerate(texts):
            vector = self.embed(text)
            if vector is not None:
                matrix[row] = vector
        return matrix


@lru_cache(maxsize=1)
def word_vectors() -> WordVectors:
    tokenizer = Tokenizer.from_file(str(_packaged(*WORD_TOKENIZER)))
    tables = load_file(str(_packaged(*WORD_VECTORS)))
    # Kept in the file's float16 (16 MB): rows are summed in float32, which is exact.
    table = next(iter(tables.values()))
    if tokenizer.get_vocab_size() > len(table):  # every token id must have a row
        raise RuntimeError("wordllama's tokenizer and word vectors do not match")
    return WordVectors(tokenizer, table)


def _features() -> FeatureUnion:
    return FeatureUnion(
        [
            (
                "words",
                TfidfVectorizer(
                    analyzer="word",
                    ngram_range=(1, 2),
                    sublinear_tf=True,
                    token_pattern=r"(?u)\b\w+\b",  # noqa: S106 (a regex, not a password)
                    dtype=np.float32,
                ),
            ),
            (
                "chars",
                TfidfVectorizer(
                    analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, dtype=np.float32
                ),
            ),
        ]
    )


def _softmax(scores: NDArray[np.float64]) -> NDArray[np.float64]:
    shifted = np.exp(SCORE_SCALE * (scores - scores.max()))
    result: NDArray[np.float64] = shifted / shifted.sum()
    return result


@dataclass(frozen=True)
class _Block:
    """One fitted vectorizer, flattened for scoring a single message quickly:
    sklearn's per-call validation and FeatureUnion's joblib dispatch cost
    milliseconds, the arithmetic itself microseconds."""

    analyse: Callable[[str], list[str]]
    vocabulary: dict[str, int]
    idf: NDArray[np.float32]
    weights: NDArray[np.float32]  # (block features, classes): the SVM's coefficients

    def score(self, text: str) -> NDArray[np.float32] | None:
        counts = Counter(
            index
            for token in self.analyse(text)
            if (index := self.vocabulary.get(token)) is not None
        )
        if not counts:
            return None
        indices = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
        values = (1.0 + np.log(tf)) * self.idf[indices]  # sublinear tf × idf
        result: NDArray[np.float32] = (values / np.linalg.norm(values)) @ self.weights[indices]
        return result


@dataclass(frozen=True)
class BuiltinModel:
    """A trained builtin model; immutable, safe to share between tasks and threads."""

    blocks: tuple[_Block, ...]
    intercept: NDArray[np.float32]
    labels: tuple[str, ...]
    thresholds: Thresholds = DEFAULT_THRESHOLDS
    # (vector size, classes), already times WORD_VECTOR_SCALE; None: trained without.
    # The vectors themselves are not part of the model (word_vectors() in each process),
    # so a model trained in a worker process pickles small.
    vector_weights: NDArray[np.float32] | None = None

    def with_thresholds(self, thresholds: Thresholds) -> BuiltinModel:
        return BuiltinModel(
            self.blocks, self.intercept, self.labels, thresholds, self.vector_weights
        )

    def _probabilities(self, text: str) -> NDArray[np.float64] | None:
        """Every label's confidence, in ``labels`` order; None for a message with no
        n-gram the model has seen (empty, emoji, another script)."""
        normalised = normalise(text)
        parts = [block.score(normalised) for block in self.blocks]
        known = [part for part in parts if part is not None]
        if not known:
            return None
        if self.vector_weights is not None:
            vector = word_vectors().embed(text)
            if vector is not None:
                known.append(vector @ self.vector_weights)
        scores = self.intercept + np.sum(known, axis=0)
        return _softmax(scores.astype(np.float64))

    def rank(self, text: str) -> list[tuple[str, float]]:
        """Every label with its confidence, best first (``oos`` included)."""
        probabilities = self._probabilities(text)
        if probabilities is None:
            return [(OOS, 1.0)]
        order = np.argsort(-probabilities)
        return [(self.labels[i], float(probabilities[i])) for i in order]

    def predict(self, text: str) -> Prediction:
        probabilities = self._probabilities(text)
        if probabilities is None:
            return Prediction(label=OOS, confidence=0.0, ranking=())
        # Only the best few are needed: the top one or two may be `oos`.
        if len(probabilities) > RANKING_SIZE + 1:
            best = np.argpartition(-probabilities, RANKING_SIZE)[: RANKING_SIZE + 1]
        else:
            best = np.arange(len(probabilities))
        best = best[np.argsort(-probabilities[best])]
        ranked = [(self.labels[i], float(probabilities[i])) for i in best]
        top = tuple((label, p) for label, p in ranked if label != OOS)[:RANKING_SIZE]
        if ranked[0][0] == OOS:
            return Prediction(label=OOS, confidence=top[0][1] if top else 0.0, ranking=top)
        return apply_thresholds(top, self.thresholds)


def _flatten(
    features: FeatureUnion, classifier: LinearSVC, thresholds: Thresholds, vectors: int
) -> BuiltinModel:
    """The fitted pipeline as a BuiltinModel; the last ``vectors`` columns of the SVM's
    coefficients belong to the word vectors (scaled by WORD_VECTOR_SCALE)."""
    coefficients = np.asarray(classifier.coef_, dtype=np.float32)
    intercept = np.asarray(classifier.intercept_, dtype=np.float32)
    labels = [str(label) for label in classifier.classes_]
    if coefficients.shape[0] == 1:  # two classes: sklearn keeps one signed margin
        coefficients = np.vstack([-coefficients, coefficients])
        intercept = np.concatenate([-intercept, intercept])
    blocks = []
    offset = 0
    for _name, vectorizer in features.transformer_list:
        size = len(vectorizer.vocabulary_)
        blocks.append(
            _Block(
                analyse=vectorizer.build_analyzer(),
                vocabulary={str(k): int(v) for k, v in vectorizer.vocabulary_.items()},
                idf=np.asarray(vectorizer.idf_, dtype=np.float32),
                weights=np.ascontiguousarray(coefficients[:, offset : offset + size].T),
            )
        )
        offset += size
    vector_weights = None
    if vectors:
        vector_weights = np.ascontiguousarray(WORD_VECTOR_SCALE * coefficients[:, offset:].T)
    return BuiltinModel(tuple(blocks), intercept, tuple(labels), thresholds, vector_weights)


class BuiltinEngine:
    """Trains :class:`BuiltinModel` from knowledge-base phrasings plus the built-in
    intents and generic out-of-scope examples."""

    name = "builtin"

    def __init__(
        self,
        thresholds: Thresholds = DEFAULT_THRESHOLDS,
        regularisation: float = REGULARISATION,
        include_builtin: bool = True,
        use_word_vectors: bool = True,
    ) -> None:
        self.thresholds = thresholds
        self.regularisation = regularisation
        self.include_builtin = include_builtin
        self.use_word_vectors = use_word_vectors

    def train(self, examples: Sequence[TrainingExample]) -> BuiltinModel:
        data = list(examples)
        if self.include_builtin:
            data.extend(builtin_examples())
        texts = [normalise(example.text) for example in data]
        labels = [example.label for example in data]
        if len(set(labels)) < 2:
            raise ValueError("training needs at least two different labels")
        features = _features()
        matrix = features.fit_transform(texts)
        vectors = 0
        if self.use_word_vectors:
            dense = word_vectors().embed_all([example.text for example in data])
            matrix = scipy.sparse.hstack(
                [matrix, scipy.sparse.csr_matrix(WORD_VECTOR_SCALE * dense)], format="csr"
            )
            vectors = dense.shape[1]
        # Seeded: every hub process trains its own copy (bot.runtime), and the same
        # knowledge base must give the same answers whichever process takes the turn.
        classifier = LinearSVC(C=self.regularisation, random_state=0)
        classifier.fit(matrix, labels)
        return _flatten(features, classifier, self.thresholds, vectors)


def create_engine(**options: Any) -> BuiltinEngine:
    return BuiltinEngine(**options)
