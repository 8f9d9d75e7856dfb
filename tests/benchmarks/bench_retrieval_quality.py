"""Retrieval quality of ``sparse``, ``dense`` and ``hybrid`` on the DEV sets.

    python tests/benchmarks/bench_retrieval_quality.py [--datasets obliqa policyqa ...] [--tune]

Each dataset's corpus is indexed once through the qdrant store (vectors cached in the
state dir, ``FOURFOLD_HOME`` or ./.fourfold: the first run embeds ~31k passages, which
takes a while on a small CPU; later runs only search). Every DEV question is embedded
once; dense and BM25 candidates (top 100) are kept, and the three retrievers' rankings
are computed from them exactly as the retrievers do (same fusion code).

Questions are split by a hash of their id into a ``tune`` half and a ``check`` half.
``--tune`` searches the fusion settings (and, with ``--tune-sparse``, the index-time
BM25 settings) on the tune half, maximising mean nDCG@10 over the datasets, and
reports the best on the check half. Figures to quote are the check half's (and all
of DEV, for comparison with the datasets' READMEs).

Targets: hybrid beats sparse and dense on obliqa and policyqa. Aims (nDCG@10): obliqa
≥ 0.68, policyqa ≥ 0.34, liveqa-medquad ≥ 0.44, pubmedqa ≥ 0.98.
"""

from __future__ import annotations

import argparse
import itertools
import os
import pickle
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import fourfold  # noqa: E402
from fourfold.evaluation.datasets import load_dataset  # noqa: E402
from fourfold.evaluation.metrics import evaluate_run  # noqa: E402
from fourfold.evaluation.retrieval import corpus_chunks, eval_domain, open_eval_index  # noqa: E402
from fourfold.plugins import get_host  # noqa: E402
from fourfold_qdrant.fusion import fuse  # noqa: E402
from fourfold_qdrant.retrievers import HybridConfig  # noqa: E402
from fourfold_qdrant.sparse import DEFAULT_SPARSE, SparseEncoder, SparseSettings  # noqa: E402
from fourfold_qdrant.store import DENSE, SPARSE, Probe  # noqa: E402

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DATASETS = ["pubmedqa", "policyqa", "obliqa", "liveqa-medquad"]
AIMS = {"obliqa": 0.68, "policyqa": 0.34, "liveqa-medquad": 0.44, "pubmedqa": 0.98}
DEPTH = 100


class Candidates:
    """Dense and sparse top-``DEPTH`` passages of every judged DEV question of a dataset."""

    def __init__(self, name: str, host, settings: dict):
        self.name = name
        self.dataset = load_dataset(SHARED / name)
        manifest = fourfold.Manifest.model_validate(
            {"fourfold": 1, "domain": "bench", "title": "bench", "retrieval": {"use": "hybrid", "with": settings}}
        )
        domain = eval_domain(self.dataset, host, manifest)
        retriever = domain.retriever
        info: dict = {}
        started = time.perf_counter()
        reader = open_eval_index(domain, retriever, self.dataset, info=info)
        if info.get("built"):
            print(f"  {name}: indexed {reader.count()} passages in {time.perf_counter() - started:.0f} s "
                  f"({info.get('embedded')} embedded, {info.get('from_cache')} from cache)", flush=True)
        self.encoder = reader.encoder
        self.qids = self.dataset.judged_queries("all")
        embedder = domain.embedder
        cache = (Path(info["location"]).parents[1] / f"candidates-{DEPTH}-{embedder.model_id.replace(':', '_')}.pkl")
        if cache.is_file():
            with cache.open("rb") as fh:
                self.dense, self.sparse = pickle.load(fh)
            reader.close()
            return
        self.dense: dict[str, list] = {}
        self.sparse: dict[str, list] = {}
        # Quality does not depend on how questions are batched: embed them all at once
        # (bench_query_latency.py measures one-at-a-time latency).
        vectors = embedder.embed_documents([self.dataset.queries[q] for q in self.qids])
        for qid, vector in zip(self.qids, vectors):
            text = self.dataset.queries[qid]
            probes = [Probe(DENSE, [float(x) for x in vector], DEPTH)]
            sparse = reader.encoder.query(text)
            if sparse[0]:
                probes.append(Probe(SPARSE, sparse, DEPTH))
            results = reader.search_many(probes, None)
            self.dense[qid] = results[0]
            self.sparse[qid] = results[1] if len(results) > 1 else []
        reader.close()
        with cache.open("wb") as fh:
            pickle.dump((self.dense, self.sparse), fh)

    def split(self, split: str) -> list[str]:
        return self.dataset.judged_queries(split)

    def score(self, rankings: dict[str, list], qids: list[str]) -> dict[str, float]:
        run = {q: list(dict.fromkeys(p.chunk.source for p in rankings[q]))[:10] for q in qids}
        return evaluate_run(run, {q: self.dataset.qrels[q] for q in qids})

    def hybrid(self, qids: list[str], config: HybridConfig) -> dict[str, list]:
        out = {}
        for q in qids:
            dense = self.dense[q][: config.candidates]
            sparse = self.sparse[q][: config.candidates]
            rankings = [dense, sparse] if sparse else [dense]
            weights = [config.dense_weight, config.sparse_weight][: len(rankings)]
            out[q] = fuse(rankings, weights, method=config.fusion, rrf_k=config.rrf_k)[:10]
        return out


def report(cands: list[Candidates], config: HybridConfig, split: str) -> dict[str, dict[str, float]]:
    print(f"\n{split} questions — nDCG@10 / Recall@10 (hybrid: {config.fusion}, weights dense {config.dense_weight} "
          f"sparse {config.sparse_weight}, k {config.rrf_k}, candidates {config.candidates})")
    print(f"  {'dataset':<16}{'n':>6}  {'sparse':>15}  {'dense':>15}  {'hybrid':>15}   aim   beats both")
    out = {}
    for c in cands:
        qids = c.split(split)
        s, d, h = c.score(c.sparse, qids), c.score(c.dense, qids), c.score(c.hybrid(qids, config), qids)
        beats = h["ndcg@10"] > max(s["ndcg@10"], d["ndcg@10"])
        aim = AIMS.get(c.name)
        print(f"  {c.name:<16}{len(qids):>6}  {s['ndcg@10']:.4f} / {s['recall@10']:.4f}  {d['ndcg@10']:.4f} / {d['recall@10']:.4f}  "
              f"{h['ndcg@10']:.4f} / {h['recall@10']:.4f}   {aim if aim else '-':<4}  {'yes' if beats else 'NO'}"
              f"{'' if aim is None or h['ndcg@10'] >= aim else '  (below aim)'}")
        out[c.name] = {"sparse": s["ndcg@10"], "dense": d["ndcg@10"], "hybrid": h["ndcg@10"]}
    return out


def tune_fusion(cands: list[Candidates]) -> HybridConfig:
    grid = {
        "fusion": ["rrf", "scores"],
        "dense_weight": [1.0],
        "sparse_weight": [0.5, 0.75, 1.0, 1.25, 1.5, 2.0],
        "rrf_k": [10, 30, 60],
        "candidates": [20, 50, 100],
    }
    best, best_score = None, -1.0
    tune_q = {c.name: c.split("tune") for c in cands}
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values))
        if params["fusion"] == "scores" and params["rrf_k"] != 60:
            continue  # k only matters to RRF
        config = HybridConfig(**params)
        score = statistics.fmean(c.score(c.hybrid(tune_q[c.name], config), tune_q[c.name])["ndcg@10"] for c in cands)
        if score > best_score:
            best, best_score = config, score
    assert best is not None
    print(f"\nbest fusion on the tune half (mean nDCG@10 {best_score:.4f}): {best.fusion}, dense {best.dense_weight}, "
          f"sparse {best.sparse_weight}, k {best.rrf_k}, candidates {best.candidates}")
    return best


def tune_sparse(names: list[str]) -> None:
    """Index-time BM25 settings, by BM25 alone on the tune half (sparse-only shards)."""
    import qdrant_edge as q

    grid = {"k1": [0.9, 1.2, 1.5], "b": [0.5, 0.75], "avg_len": [32, 64, 128], "title_weight": [0.5, 1.0, 1.5]}
    datasets = {n: load_dataset(SHARED / n) for n in names}
    results: dict[tuple, list[float]] = {}
    for values in itertools.product(*grid.values()):
        settings = SparseSettings(**dict(zip(grid, values)))
        encoder = SparseEncoder(settings)
        for name, ds in datasets.items():
            folder = tempfile.mkdtemp(prefix="fourfold-sparse-")
            shard = q.EdgeShard.create(folder, q.EdgeConfig(sparse_vectors={SPARSE: q.EdgeSparseVectorParams(modifier=q.Modifier.Idf)}, wal_enabled=False))
            points = [q.Point(c.id, {SPARSE: q.SparseVector(*encoder.document(c))}, {"s": c.source}) for c in corpus_chunks(ds)]
            for i in range(0, len(points), 2000):
                shard.update(q.UpdateOperation.upsert_points(points[i : i + 2000]))
            run = {}
            for qid in ds.judged_queries("tune"):
                indices, weights = encoder.query(ds.queries[qid])
                hits = shard.query(q.QueryRequest(limit=10, query=q.Query.Nearest(q.SparseVector(indices, weights), using=SPARSE), with_payload=True)) if indices else []
                run[qid] = [h.payload["s"] for h in hits]
            shard.close()
            shutil.rmtree(folder)
            results.setdefault(values, []).append(evaluate_run(run, {x: ds.qrels[x] for x in run})["ndcg@10"])
    ranked = sorted(results.items(), key=lambda kv: -statistics.fmean(kv[1]))
    print("\nBM25 settings by mean nDCG@10 on the tune half (" + ", ".join(names) + "):")
    for values, scores in ranked[:8]:
        print(f"  {dict(zip(grid, values))}: mean {statistics.fmean(scores):.4f}  " + "  ".join(f"{s:.4f}" for s in scores))
    print(f"  shipped: {DEFAULT_SPARSE}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=DATASETS, choices=DATASETS)
    parser.add_argument("--tune", action="store_true", help="Search fusion settings on the tune half.")
    parser.add_argument("--tune-sparse", action="store_true", help="Also search index-time BM25 settings (slow).")
    parser.add_argument(
        "--with", dest="settings", nargs="+", default=[], metavar="KEY=VALUE",
        help="hybrid settings as in a manifest's retrieval.with, e.g. title_weight=0.5 sparse_weight=2",
    )
    args = parser.parse_args()
    settings = {k: float(v) if v.replace(".", "", 1).isdigit() else v for k, v in (kv.split("=", 1) for kv in args.settings)}

    host = get_host()
    print(f"state dir {fourfold.get_settings().state_dir} (vector cache and built indexes are kept there)", flush=True)
    if args.tune_sparse:
        tune_sparse(args.datasets)
    started = time.perf_counter()
    cands = [Candidates(name, host, settings) for name in args.datasets]
    print(f"candidates for {sum(len(c.qids) for c in cands)} questions in {time.perf_counter() - started:.0f} s")
    shipped = HybridConfig(**settings)
    if args.tune:
        best = tune_fusion(cands)
        report(cands, best, "tune")
        report(cands, best, "check")
    report(cands, shipped, "check")
    report(cands, shipped, "all")


if __name__ == "__main__":
    sys.exit(main())
