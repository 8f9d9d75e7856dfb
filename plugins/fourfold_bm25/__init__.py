"""An in-memory BM25 retriever (pure Python; no vector engine).

The smallest real retriever: its store is :class:`fourfold.FileIndexStore` (the chunks of
each version in one file, no vectors, so refreshes embed nothing), and each reader
builds an inverted index in memory on first search. It suits small knowledge bases and
shows what a retriever plugin needs: a ``Config``, ``open_store`` and ``search``.
"""

from __future__ import annotations

import heapq
import math
import re
import threading
import weakref
from collections import Counter

from pydantic import Field

import fourfold

FOURFOLD_PLUGIN_API = "1.4"

__all__ = ["BM25Retriever", "tokenize"]

_WORD = re.compile(r"\w+", re.UNICODE)
_STOPWORDS = frozenset(
    """a an and are as at be but by for from has have how i if in into is it its of on or our
    s such t that the their then there these they this to was we were what when where which
    who why will with you your""".split()
)


def _stem(word: str) -> str:
    # Harman's "S" stemmer (plus Porter's "sses"): folds the plurals that most often
    # split a term in two.
    if word.endswith("sses"):
        return word[:-2]
    if len(word) > 3 and word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("es") and not word.endswith(("aes", "ees", "oes")):
        return word[:-1]
    if len(word) > 2 and word.endswith("s") and not word.endswith(("us", "ss")):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens, stop words dropped, plurals folded."""
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]


class _InvertedIndex:
    def __init__(self, chunks: list[fourfold.Chunk], k1: float, b: float, title_weight: float):
        self.chunks = chunks
        self.k1, self.b = k1, b
        self.postings: dict[str, list[tuple[int, float]]] = {}
        self.lengths: list[float] = []
        for i, chunk in enumerate(chunks):
            counts: Counter[str] = Counter(tokenize(chunk.text))
            if title_weight:
                for term, n in Counter(tokenize(f"{chunk.title} {chunk.heading}")).items():
                    counts[term] += title_weight * n
            self.lengths.append(float(sum(counts.values())))
            for term, tf in counts.items():
                self.postings.setdefault(term, []).append((i, tf))
        self.avg_length = (sum(self.lengths) / len(self.lengths)) if self.lengths else 1.0

    def search(self, query: str, top_k: int, filters: fourfold.SearchFilters | None) -> list[fourfold.Passage]:
        n = len(self.chunks)
        scores: dict[int, float] = {}
        for term in set(tokenize(query)):
            postings = self.postings.get(term)
            if not postings:
                continue
            idf = math.log(1 + (n - len(postings) + 0.5) / (len(postings) + 0.5))
            for doc, tf in postings:
                norm = self.k1 * (1 - self.b + self.b * self.lengths[doc] / self.avg_length)
                scores[doc] = scores.get(doc, 0.0) + idf * tf * (self.k1 + 1) / (tf + norm)
        if filters:
            scores = {d: s for d, s in scores.items() if filters.matches(self.chunks[d])}
        best = heapq.nlargest(top_k, scores.items(), key=lambda kv: (kv[1], -kv[0]))
        return [fourfold.Passage(chunk=self.chunks[d], score=s) for d, s in best]


class BM25Retriever(fourfold.Retriever):
    """Okapi BM25 over title, heading and text, computed in Python."""

    name = "bm25"
    description = "Lexical search in pure Python (BM25 over an in-memory inverted index); no vector engine."

    class Config(fourfold.RetrieverConfig):
        k1: float = Field(0.9, ge=0, description="Term-frequency saturation.")
        b: float = Field(0.4, ge=0, le=1, description="Length normalisation (0: none, 1: full).")
        title_weight: float = Field(1.0, ge=0, description="How much a title/heading word counts against a body word.")

    def __init__(self, config=None, context=None):
        super().__init__(config, context)
        self._indexes: "weakref.WeakKeyDictionary[fourfold.VersionReader, _InvertedIndex]" = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def open_store(self) -> fourfold.IndexStore:
        return fourfold.FileIndexStore(needs_vectors=False, name="bm25")

    def _index(self, reader: fourfold.VersionReader) -> _InvertedIndex:
        with self._lock:
            index = self._indexes.get(reader)
            if index is None:
                cfg = self.config
                index = _InvertedIndex(list(reader.chunks()), cfg.k1, cfg.b, cfg.title_weight)
                self._indexes[reader] = index
            return index

    def search(self, reader, query, *, top_k=None, filters=None):
        return self._index(reader).search(query, int(top_k or self.config.top_k), filters)


@fourfold.hookimpl
def register_retrievers(register):
    register(BM25Retriever)
