"""What both engines share: the reader interface the retrievers use, and result mapping."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, Sequence

import fourfold

from fourfold_qdrant.sparse import SparseEncoder

__all__ = ["Probe", "QdrantReader", "DENSE", "SPARSE", "PAYLOAD_INDEXES", "passage_from"]

DENSE = "dense"
SPARSE = "bm25"

# Fields searched by metadata filters get payload indexes, so a filter narrows the
# search instead of scanning every point.
PAYLOAD_INDEXES = ("source", "file_type", "tags")


@dataclass(frozen=True)
class Probe:
    """One nearest-neighbour search: a dense vector or a sparse ``(indices, values)``."""

    using: str
    vector: Any
    limit: int


class QdrantReader(fourfold.VersionReader):
    """A version opened for search by one of the engines."""

    encoder: SparseEncoder

    @abstractmethod
    def search_many(
        self, probes: Sequence[Probe], filters: fourfold.SearchFilters | None, *, with_payload: bool = True
    ) -> list[list[fourfold.Passage]]:
        """Run ``probes`` (as one batch where the engine can), best first each. Without
        payload, each passage's chunk carries only its id (see :meth:`fetch`)."""

    @abstractmethod
    def fetch(self, chunk_ids: Sequence[str]) -> dict[str, fourfold.Chunk]:
        """The chunks with these ids."""


def passage_from(point_id: Any, payload: dict[str, Any] | None, score: float) -> fourfold.Passage:
    if payload:
        return fourfold.Passage(chunk=fourfold.Chunk.from_payload(payload), score=float(score))
    # Candidates for a fusion: only the id is needed until the winners are known.
    return fourfold.Passage(chunk=fourfold.Chunk(id=str(point_id), text="", source="", title=""), score=float(score))
