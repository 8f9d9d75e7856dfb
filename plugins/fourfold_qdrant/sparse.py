"""BM25 as sparse vectors: the lexical half of retrieval, identical on both engines.

Documents are turned into term-frequency weights (BM25's saturation and length
normalisation) by qdrant-edge's built-in ``Bm25`` model (English Snowball stemming and
stop words); the engine multiplies in each term's IDF at query time (``Modifier.Idf``),
so IDF always reflects the version being searched and an incremental refresh never
re-weights old points. The same encoder feeds the server engine, so both engines rank
identically.

Title and heading are indexed as a second field whose weights are scaled by
``title_weight`` and added to the body's (a simple BM25F): a passage's heading often
names its subject while its body only says "it".
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import fourfold

__all__ = ["SparseSettings", "SparseEncoder", "DEFAULT_SPARSE"]


@dataclass(frozen=True)
class SparseSettings:
    """Index-time BM25 parameters. They are baked into the stored vectors, so they are
    part of the store's identity: changing them rebuilds the index (vectors are reused
    from the vector cache)."""

    k1: float = 1.2
    b: float = 0.75
    avg_len: float = 64.0
    title_weight: float = 1.0
    language: str = "english"

    @property
    def tag(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:8]


DEFAULT_SPARSE = SparseSettings()


class SparseEncoder:
    """Turns chunks and queries into BM25 sparse vectors ``(indices, values)``."""

    def __init__(self, settings: SparseSettings = DEFAULT_SPARSE):
        import qdrant_edge

        self.settings = settings
        self._config = qdrant_edge.Bm25Config(k=settings.k1, b=settings.b, avg_len=settings.avg_len, language=settings.language)
        self._bm25 = qdrant_edge.Bm25(self._config)

    def document(self, chunk: fourfold.Chunk) -> tuple[list[int], list[float]]:
        weights: dict[int, float] = {}
        body = self._bm25.embed_document(chunk.text)
        for i, v in zip(body.indices, body.values):
            weights[i] = weights.get(i, 0.0) + v
        meta = " \n".join(p for p in (chunk.title, chunk.heading) if p)
        if meta and self.settings.title_weight > 0:
            head = self._bm25.embed_document(meta)
            for i, v in zip(head.indices, head.values):
                weights[i] = weights.get(i, 0.0) + self.settings.title_weight * v
        indices = sorted(weights)
        return indices, [float(weights[i]) for i in indices]

    def query(self, text: str) -> tuple[list[int], list[float]]:
        vec = self._bm25.embed_query(text)
        pairs = sorted(zip(vec.indices, vec.values))
        return [i for i, _ in pairs], [float(v) for _, v in pairs]
