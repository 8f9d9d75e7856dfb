"""The minilm embedder's speed: batching by length, bf16, and single-query latency.

    python tests/benchmarks/bench_embedder.py [--passages 512] [--queries 200]

Passages are real chunks of ../shared/data/kb-medical (as the index embeds them).
Prints passages/s for naive batches of 32 in input order (what other tools do), for
length-sorted batches in float32 and with bf16 autocast (the default where the CPU has
native bf16), the worst cosine between bf16 and float32 vectors, and embed_query
latency p50/p95 alone and with numpy BLAS work in between (as a search engine in the
same process would do), with OpenBLAS at 1 thread (what the embedder sets) and at the
machine's core count.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

import fourfold  # noqa: E402
from fourfold.knowledge import chunk_document, load_document, scan_sources, text_for_embedding  # noqa: E402
from fourfold_minilm import MiniLMEmbedder  # noqa: E402

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
QUERIES = [
    "what are the symptoms of type 2 diabetes?",
    "how is chronic fatigue syndrome diagnosed",
    "is asthma inherited",
    "treatment options for adult acute lymphoblastic leukemia",
    "what causes high blood pressure?",
]


def passages(limit: int) -> list[str]:
    with tempfile.TemporaryDirectory() as home:
        os.environ["FOURFOLD_HOME"] = home
        manifest = Path(home) / "m.yaml"
        manifest.write_text(f"fourfold: 1\ndomain: m\ntitle: m\nknowledge:\n  sources: [{{path: '{SHARED / 'kb-medical'}'}}]\n")
        domain = fourfold.Domain.from_file(manifest)
        scan = scan_sources(domain.manifest)
        texts: list[str] = []
        for file in scan.files:
            doc = load_document(domain, file)
            chunks = chunk_document(doc, file, embedder=domain.embedder, chunking=domain.manifest.knowledge.chunking)
            texts += [text_for_embedding(c) for c in chunks]
    random.Random(0).shuffle(texts)  # input order as a folder walk would give, not by size
    return texts[:limit]


def rate(fn, n: int) -> float:
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def latencies(embedder: MiniLMEmbedder, n: int, between=None) -> tuple[float, float]:
    times = []
    for i in range(n):
        if between is not None:
            between()
        start = time.perf_counter()
        embedder.embed_query(QUERIES[i % len(QUERIES)])
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2] * 1000, times[int(len(times) * 0.95)] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=512)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()

    texts = passages(args.passages)
    fp32 = MiniLMEmbedder(MiniLMEmbedder.Config(bf16=False))
    default = MiniLMEmbedder()
    fp32.embed_documents(texts[:8])
    default.embed_documents(texts[:8])
    n = len(texts)
    print(f"{n} kb-medical chunks, median {statistics.median(len(fp32.token_spans(t)) for t in texts):.0f} tokens; "
          f"torch threads {__import__('torch').get_num_threads()}; bf16 active: {default.bf16_active}")

    naive = rate(lambda: [fp32.embed_documents(texts[i : i + 32]) for i in range(0, n, 32)], n)
    print(f"naive batches of 32, float32:   {naive:6.1f} passages/s")
    sorted_fp32 = rate(lambda: fp32.embed_documents(texts), n)
    print(f"length-sorted batches, float32: {sorted_fp32:6.1f} passages/s  ({sorted_fp32 / naive:.2f}x naive)")
    vectors_fp32 = fp32.embed_documents(texts)
    start = time.perf_counter()
    vectors = default.embed_documents(texts)
    sorted_default = n / (time.perf_counter() - start)
    cosine = float(np.min(np.sum(vectors * vectors_fp32, axis=1)))
    print(f"length-sorted batches, default: {sorted_default:6.1f} passages/s  ({sorted_default / naive:.2f}x naive); "
          f"worst cosine to float32 {cosine:.5f}")

    p50, p95 = latencies(default, args.queries)
    print(f"embed_query alone:                      p50 {p50:5.1f} ms  p95 {p95:5.1f} ms")
    matrix = np.random.default_rng(0).standard_normal((20000, 384), dtype=np.float32)
    search = lambda: matrix @ matrix[0]  # noqa: E731 - an exhaustive search's dot products
    p50, p95 = latencies(default, args.queries, between=search)
    print(f"embed_query between searches, BLAS 1:   p50 {p50:5.1f} ms  p95 {p95:5.1f} ms")
    from threadpoolctl import ThreadpoolController

    cores = os.cpu_count() or 1
    with ThreadpoolController().select(internal_api="openblas").limit(limits=cores):
        p50, p95 = latencies(default, args.queries, between=search)
    print(f"embed_query between searches, BLAS {cores}:   p50 {p50:5.1f} ms  p95 {p95:5.1f} ms")


if __name__ == "__main__":
    main()
