"""Evaluation: ranking metrics, the retrieval benchmark datasets, and running retrievers on them."""

from fourfold.evaluation.metrics import RANKING_METRICS, evaluate_run, mrr_at_k, ndcg_at_k, percentile, recall_at_k

__all__ = ["RANKING_METRICS", "evaluate_run", "mrr_at_k", "ndcg_at_k", "percentile", "recall_at_k"]
