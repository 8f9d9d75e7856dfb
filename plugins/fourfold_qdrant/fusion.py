"""Fusing ranked lists from several searches into one."""

from __future__ import annotations

from typing import Sequence

import fourfold

__all__ = ["fuse"]


def fuse(
    rankings: Sequence[list[fourfold.Passage]],
    weights: Sequence[float],
    *,
    method: str = "rrf",
    rrf_k: float = 60.0,
) -> list[fourfold.Passage]:
    """One ranking from several, best first; passages are matched by chunk id.

    ``rrf``: score = Σ wᵢ / (k + rankᵢ) over the lists that contain the passage.
    ``scores``: score = Σ wᵢ · (sᵢ − minᵢ) / (maxᵢ − minᵢ), each list normalised to [0, 1]
    (a passage missing from a list gets 0 there).
    """
    fused: dict[str, float] = {}
    chunks: dict[str, fourfold.Passage] = {}
    for ranking, weight in zip(rankings, weights):
        if not ranking or weight == 0:
            for p in ranking:
                chunks.setdefault(p.chunk.id, p)
            continue
        if method == "rrf":
            for rank, p in enumerate(ranking, start=1):
                fused[p.chunk.id] = fused.get(p.chunk.id, 0.0) + weight / (rrf_k + rank)
                chunks.setdefault(p.chunk.id, p)
        elif method == "scores":
            top, bottom = ranking[0].score, ranking[-1].score
            span = top - bottom
            for p in ranking:
                norm = (p.score - bottom) / span if span > 0 else 1.0
                fused[p.chunk.id] = fused.get(p.chunk.id, 0.0) + weight * norm
                chunks.setdefault(p.chunk.id, p)
        else:
            raise ValueError(f"unknown fusion method '{method}' (expected 'rrf' or 'scores')")
    for cid in chunks:
        fused.setdefault(cid, 0.0)
    order = sorted(fused, key=lambda cid: (-fused[cid], cid))
    return [fourfold.Passage(chunk=chunks[cid].chunk, score=fused[cid]) for cid in order]
