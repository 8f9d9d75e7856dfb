"""Ranking metrics (graded relevance, TREC conventions) and latency percentiles.

One implementation for every evaluation in fourfold: retrieval (``fourfold eval
retrieval``), embedder fine-tuning, benchmarks. Relevance grades are integers; a grade
of 0 (judged not relevant) counts as not relevant.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

__all__ = ["ndcg_at_k", "recall_at_k", "mrr_at_k", "evaluate_run", "percentile", "RANKING_METRICS"]

RANKING_METRICS = ("ndcg@10", "recall@10", "mrr@10")


def ndcg_at_k(ranked: Sequence[str], relevance: Mapping[str, int], k: int = 10) -> float:
    """Normalised discounted cumulative gain at ``k`` with gain = grade (linear gain,
    as trec_eval and BEIR compute it). 0 when nothing is relevant."""
    dcg = 0.0
    seen: set[str] = set()
    for rank, doc in enumerate(ranked[:k], start=1):
        if doc in seen:  # a ranking that repeats a document earns nothing twice
            continue
        seen.add(doc)
        grade = relevance.get(doc, 0)
        if grade > 0:
            dcg += grade / math.log2(rank + 1)
    ideal = sorted((g for g in relevance.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 1) for rank, g in enumerate(ideal, start=1))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], relevance: Mapping[str, int], k: int = 10) -> float:
    """Share of the relevant documents found in the first ``k``."""
    relevant = {d for d, g in relevance.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant & set(ranked[:k])) / len(relevant)


def mrr_at_k(ranked: Sequence[str], relevance: Mapping[str, int], k: int = 10) -> float:
    """Reciprocal rank of the first relevant document within ``k`` (0 if none)."""
    for rank, doc in enumerate(ranked[:k], start=1):
        if relevance.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


def evaluate_run(
    run: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, int]],
    k: int = 10,
) -> dict[str, float]:
    """Mean nDCG@k, Recall@k and MRR@k over the queries of ``qrels`` that have at least
    one relevant document (a query missing from ``run`` scores 0)."""
    judged = [q for q, rel in qrels.items() if any(g > 0 for g in rel.values())]
    if not judged:
        return {f"ndcg@{k}": 0.0, f"recall@{k}": 0.0, f"mrr@{k}": 0.0, "queries": 0}
    totals = {"ndcg": 0.0, "recall": 0.0, "mrr": 0.0}
    for q in judged:
        ranked = list(run.get(q, ()))
        totals["ndcg"] += ndcg_at_k(ranked, qrels[q], k)
        totals["recall"] += recall_at_k(ranked, qrels[q], k)
        totals["mrr"] += mrr_at_k(ranked, qrels[q], k)
    n = len(judged)
    return {f"ndcg@{k}": totals["ndcg"] / n, f"recall@{k}": totals["recall"] / n, f"mrr@{k}": totals["mrr"] / n, "queries": n}


def percentile(values: Iterable[float], p: float) -> float:
    """The ``p``-th percentile (0-100) with linear interpolation, as numpy computes it."""
    data = sorted(values)
    if not data:
        return 0.0
    pos = (len(data) - 1) * p / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)
