"""Fusing dense and BM25 rankings."""

from __future__ import annotations

import pytest

import fourfold
from fourfold_qdrant.fusion import fuse


def _ranking(*pairs):
    return [fourfold.Passage(fourfold.Chunk(id=i, text=i, source=i, title=""), s) for i, s in pairs]


def test_rrf_rewards_agreement_and_respects_weights():
    dense = _ranking(("a", 0.9), ("b", 0.8), ("c", 0.7))
    sparse = _ranking(("c", 12.0), ("b", 9.0), ("d", 1.0))
    fused = fuse([dense, sparse], [1.0, 1.0], method="rrf", rrf_k=60)
    assert {p.chunk.id for p in fused[:2]} == {"b", "c"}  # found by both
    heavy_sparse = fuse([dense, sparse], [0.1, 1.0], method="rrf", rrf_k=60)
    assert heavy_sparse[0].chunk.id == "c"
    scores = [p.score for p in fused]
    assert scores == sorted(scores, reverse=True)


def test_score_fusion_normalises_each_list():
    dense = _ranking(("a", 0.9), ("b", 0.5))
    sparse = _ranking(("b", 30.0), ("a", 29.0), ("c", 0.0))
    fused = {p.chunk.id: p.score for p in fuse([dense, sparse], [1.0, 1.0], method="scores")}
    assert fused["a"] == pytest.approx(1.0 + 29 / 30)
    assert fused["b"] == pytest.approx(0.0 + 1.0)
    assert fused["c"] == pytest.approx(0.0)


def test_a_missing_list_and_unknown_method():
    dense = _ranking(("a", 0.9))
    assert [p.chunk.id for p in fuse([dense, []], [1.0, 1.0])] == ["a"]
    with pytest.raises(ValueError, match="unknown fusion"):
        fuse([dense], [1.0], method="max")
