"""Ranking metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest

from fourfold.evaluation import evaluate_run, mrr_at_k, ndcg_at_k, percentile, recall_at_k
from fourfold.evaluation.datasets import load_dataset, set_aside, split_queries


def test_ndcg_binary_and_graded():
    assert ndcg_at_k(["a", "b"], {"a": 1}) == 1.0
    assert ndcg_at_k(["x", "a"], {"a": 1}) == pytest.approx(1 / math.log2(3))
    # graded: ideal order is 3 then 1
    got = ndcg_at_k(["low", "high"], {"high": 3, "low": 1})
    want = (1 / 1 + 3 / math.log2(3)) / (3 / 1 + 1 / math.log2(3))
    assert got == pytest.approx(want)
    assert ndcg_at_k(["a"], {"a": 0}) == 0.0  # judged not relevant
    assert ndcg_at_k([], {"a": 1}) == 0.0


def test_ndcg_counts_a_repeated_document_once():
    assert ndcg_at_k(["a", "a"], {"a": 1, "b": 1}) == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_cutoff_k():
    ranked = [f"d{i}" for i in range(20)]
    assert recall_at_k(ranked, {"d15": 1}, 10) == 0.0
    assert recall_at_k(ranked, {"d5": 1, "d15": 1}, 10) == 0.5
    assert mrr_at_k(ranked, {"d3": 2}, 10) == 0.25
    assert mrr_at_k(ranked, {"d12": 1}, 10) == 0.0


def test_evaluate_run_averages_judged_queries_only():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 0}}
    run = {"q1": ["a"], "q2": ["x", "y"]}
    result = evaluate_run(run, qrels)
    assert result["queries"] == 2
    assert result["ndcg@10"] == 0.5 and result["recall@10"] == 0.5 and result["mrr@10"] == 0.5


def test_percentile_matches_numpy():
    import numpy as np

    values = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0]
    for p in (0, 50, 95, 100):
        assert percentile(values, p) == pytest.approx(float(np.percentile(values, p)))


def test_splits_are_disjoint_stable_halves():
    ids = [f"q{i}" for i in range(1000)]
    tune, check = split_queries(ids, "tune"), split_queries(ids, "check")
    assert not set(tune) & set(check) and len(tune) + len(check) == 1000
    assert 400 < len(tune) < 600
    assert split_queries(ids, "tune") == tune


def test_a_fifth_is_set_aside_stably_and_at_least_one_of_five():
    ids = [f"q{i}" for i in range(1000)]
    kept, aside = set_aside(ids)
    assert len(aside) == 200 and sorted(kept + aside) == sorted(ids) and not set(kept) & set(aside)
    assert set_aside(ids) == (kept, aside) and kept == [q for q in ids if q in set(kept)]  # file order
    assert len(set_aside(ids[:5])[1]) == len(set_aside(ids[:6])[1]) == 1 and set_aside(ids[:2])[1] == []


def test_dataset_errors_name_file_and_line(tmp_path):
    from fourfold.errors import FourfoldError

    (tmp_path / "corpus.jsonl").write_text('{"id": "1", "text": "x"}\nnot json\n')
    (tmp_path / "queries.jsonl").write_text('{"id": "q", "text": "x"}\n')
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq\t1\t1\n")
    with pytest.raises(FourfoldError, match=r"corpus.jsonl:2: not JSON"):
        load_dataset(tmp_path)


def test_loads_the_shared_layout(shared_data):
    ds = load_dataset(shared_data / "liveqa-medquad")
    assert len(ds.corpus) > 10000 and len(ds.queries) == 37
    assert any(g == 0 for rel in ds.qrels.values() for g in rel.values())  # graded, with zeros
    assert len(ds.judged_queries()) <= 37
