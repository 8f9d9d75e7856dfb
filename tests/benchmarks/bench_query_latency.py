"""Query latency at 100k chunks with the embedded engine (qdrant-edge).

    python tests/benchmarks/bench_query_latency.py [--points 100000] [--queries 300]

Builds a synthetic published version of ``--points`` chunks (clustered 384-d vectors
and BM25 sparse vectors of generated text; HNSW built by the engine's optimiser) in a
temporary state dir, then measures:

- search only (query vectors precomputed): dense, sparse, hybrid (both searches in one
  engine batch, then the fusion);
- end to end through ``Domain.search`` (the published-version check, the real
  all-MiniLM-L6-v2 query embedding, the search and the fusion): dense, hybrid.

Target: search only p50 ≤ 5 ms; aim: end to end ≤ 12 ms p50 / 15 ms p95.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

import fourfold  # noqa: E402
from fourfold.evaluation.metrics import percentile  # noqa: E402
from fourfold.index import Catalog, IndexLayout  # noqa: E402
from fourfold_qdrant.store import DENSE, SPARSE, Probe  # noqa: E402

WORDS = (
    "patient treatment symptom diagnosis therapy risk gene protein infection vaccine dose clinical chronic acute "
    "contract party agreement clause liability notice termination confidential payment regulator licence rule "
    "obligation disclosure privacy data consent policy share cookie tenant rent lease merger approval court law"
).split()

QUESTIONS = [
    "what are the symptoms of chronic infection",
    "can either party terminate the agreement with notice",
    "how is personal data shared with third parties",
    "what is the recommended vaccine dose for adults",
    "which rule requires disclosure to the regulator",
    "who pays rent under the lease",
]


def synthetic(n: int, dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(512, dim)).astype(np.float32)
    topic = rng.integers(0, len(centers), n)
    vectors = centers[topic] + 0.6 * rng.normal(size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    words = np.array(WORDS)
    chunks = []
    for i in range(n):
        text = " ".join(words[rng.integers(0, len(words), 40)])
        chunks.append(
            fourfold.Chunk(
                id=str(uuid.UUID(int=i + 1)),
                text=text,
                source=f"docs/{topic[i]}/{i // 20}.md",
                title=f"Document {i // 20}",
                file_type="md",
                text_hash=fourfold.content_hash(text),
            )
        )
    return chunks, vectors, centers


def stats(samples_ms: list[float]) -> str:
    return f"p50 {percentile(samples_ms, 50):6.2f} ms   p95 {percentile(samples_ms, 95):6.2f} ms   mean {statistics.fmean(samples_ms):6.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="fourfold-bench-latency-"))
    os.environ["FOURFOLD_HOME"] = str(home)
    settings = fourfold.get_settings(fresh=True)
    manifest_path = home / "bench.yaml"
    manifest_path.write_text("fourfold: 1\ndomain: bench\ntitle: Latency bench\nretrieval: {use: hybrid, with: {top_k: 5}}\n")
    domain = fourfold.Domain.from_file(manifest_path)
    retriever = domain.retriever
    store = retriever.open_store()
    dim = domain.embedder.dimension

    print(f"building a {args.points:,}-chunk version (qdrant-edge, {dim}-d dense + BM25 sparse) …", flush=True)
    chunks, vectors, centers = synthetic(args.points, dim)
    layout = IndexLayout.for_domain(domain)
    layout.ensure()
    name = "v000001"
    layout.version_dir(name).mkdir(parents=True)
    started = time.perf_counter()
    writer = store.create_version(layout.store_dir(name), None)
    for i in range(0, len(chunks), 1000):
        writer.upsert(chunks[i : i + 1000], vectors[i : i + 1000])
    upserted = time.perf_counter()
    writer.commit()
    built = time.perf_counter()
    print(f"  upsert {upserted - started:.1f} s, optimize (HNSW) + flush {built - upserted:.1f} s")
    layout.write_catalog(
        Catalog(version=name, created="", store_id=store.store_id, retriever=retriever.name,
                embedder=domain.embedder.model_id, signature="", documents={})
    )
    layout.write_current(name)

    reader = store.open_version(layout.store_dir(name))
    rng = np.random.default_rng(1)
    probes = centers[rng.integers(0, len(centers), args.queries)] + 0.3 * rng.normal(size=(args.queries, dim))
    probes = (probes / np.linalg.norm(probes, axis=1, keepdims=True)).astype(np.float32).tolist()
    sparse_queries = [reader.encoder.query(QUESTIONS[i % len(QUESTIONS)]) for i in range(args.queries)]
    k = 5

    def measure(fn, n):
        fn(0)  # warm
        out = []
        for i in range(n):
            t = time.perf_counter()
            fn(i)
            out.append((time.perf_counter() - t) * 1000)
        return out

    dense_ms = measure(lambda i: reader.search_many([Probe(DENSE, probes[i], k)], None), args.queries)
    sparse_ms = measure(lambda i: reader.search_many([Probe(SPARSE, sparse_queries[i], k)], None), args.queries)
    hybrid_ms = measure(lambda i: retriever.search_embedded(reader, QUESTIONS[i % len(QUESTIONS)], probes[i], top_k=k), args.queries)
    filtered = fourfold.SearchFilters(source_prefix="docs/7/")
    filtered_ms = measure(lambda i: reader.search_many([Probe(DENSE, probes[i], k)], filtered), args.queries)
    reader.close()

    print(f"\nsearch only, {args.points:,} chunks, top-{k} ({args.queries} queries):")
    print(f"  dense                 {stats(dense_ms)}")
    print(f"  sparse (BM25)         {stats(sparse_ms)}")
    print(f"  hybrid (both + fuse)  {stats(hybrid_ms)}   (the hybrid retriever with the question's vector given)")
    print(f"  dense, prefix filter  {stats(filtered_ms)}")

    dense_retriever = domain.build("retriever", "dense")
    questions = [QUESTIONS[i % len(QUESTIONS)] + f" {WORDS[i % len(WORDS)]}" for i in range(args.queries)]
    domain.search("warm up the embedder")
    e2e_dense = measure(lambda i: domain.search(questions[i], retriever=dense_retriever), args.queries)
    e2e_hybrid = measure(lambda i: domain.search(questions[i]), args.queries)
    embed_ms = measure(lambda i: domain.embedder.embed_query(questions[i]), args.queries)
    print("\nend to end Domain.search (published-version check + query embedding + search + fusion):")
    print(f"  dense                 {stats(e2e_dense)}")
    print(f"  hybrid                {stats(e2e_hybrid)}")
    print(f"  (query embedding alone {stats(embed_ms)})")

    p50 = percentile(dense_ms, 50)
    print(f"\ntarget search-only p50 ≤ 5 ms: dense {p50:.2f} ms → {'ok' if p50 <= 5 else 'MISSED'}; "
          f"hybrid {percentile(hybrid_ms, 50):.2f} ms")
    print(f"aim end-to-end ≤ 12/15 ms p50/p95: hybrid {percentile(e2e_hybrid, 50):.1f}/{percentile(e2e_hybrid, 95):.1f} ms")
    domain.index.close()
    import shutil

    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
