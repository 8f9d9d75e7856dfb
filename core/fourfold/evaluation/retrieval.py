"""Running retrievers over a retrieval dataset: build (or reuse) an index of the corpus
through the retriever's own store, search every question, score the rankings.

Corpus vectors go through the same content-addressed vector cache as knowledge
refreshes (``<state>/eval/vectors.sqlite``), and each built index is kept under
``<state>/eval/<dataset>-<corpus digest>/``, so a re-run only searches.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from fourfold.components import NullProgress, Progress
from fourfold.evaluation.datasets import RetrievalDataset, load_dataset
from fourfold.evaluation.metrics import evaluate_run, percentile
from fourfold.files import remove_tree, write_json_atomic
from fourfold.index.lifecycle import embedding_text, write_version
from fourfold.index.lock import WriterLock
from fourfold.index.vector_cache import EmbedStats, VectorCache, embed_with_cache
from fourfold.types import Chunk, content_hash

if TYPE_CHECKING:
    from fourfold.components import Retriever, VersionReader
    from fourfold.domain import Domain
    from fourfold.manifest import Manifest
    from fourfold.plugins import PluginHost

__all__ = ["RetrieverResult", "RetrievalEvaluation", "evaluate_retrieval", "eval_domain", "corpus_chunks", "open_eval_index", "search_run"]

_NAMESPACE = uuid.UUID("0c8d5f7a-2b1e-4c3d-9a8b-7f6e5d4c3b2a")


@dataclass
class RetrieverResult:
    retriever: str
    metrics: dict[str, float]
    latency_ms: dict[str, float]
    queries: int


@dataclass
class RetrievalEvaluation:
    dataset: str
    split: str
    corpus: int
    embedder: str
    index: dict[str, Any] = field(default_factory=dict)
    results: list[RetrieverResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def corpus_chunks(dataset: RetrievalDataset) -> list[Chunk]:
    """One chunk per corpus passage; ``source`` holds the passage id the qrels use."""
    return [
        Chunk(
            id=str(uuid.uuid5(_NAMESPACE, doc.id)),
            text=doc.text,
            source=doc.id,
            title=doc.title,
            text_hash=content_hash(doc.text),
            file_type="jsonl",
        )
        for doc in dataset.corpus
    ]


def eval_domain(dataset: RetrievalDataset, host: "PluginHost", manifest: "Manifest | None" = None) -> "Domain":
    """A domain without knowledge whose embedder (and retrieval settings) come from
    ``manifest`` when given, else the defaults."""
    from fourfold.domain import Domain
    from fourfold.manifest import Manifest

    slug = re.sub(r"[^a-z0-9-]+", "-", dataset.name.lower()).strip("-") or "dataset"
    data: dict[str, Any] = {"fourfold": 1, "domain": f"eval-{slug}"[:63], "title": f"Evaluation on {dataset.name}"}
    if manifest is not None:
        data["embedding"] = manifest.embedding.model_dump(by_alias=True)
        data["retrieval"] = manifest.retrieval.model_dump(by_alias=True)
    return Domain(Manifest.model_validate(data), host)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def open_eval_index(
    domain: "Domain",
    retriever: "Retriever",
    dataset: RetrievalDataset,
    *,
    progress: Progress | None = None,
    info: dict[str, Any] | None = None,
) -> "VersionReader":
    """A reader over ``dataset``'s corpus in ``retriever``'s store, built on first use."""
    progress = progress or NullProgress()
    settings = domain.settings
    store = retriever.open_store()
    embedder = domain.embedder if store.needs_vectors else None
    key = f"{store.store_id}/{embedder.model_id if embedder else 'no-vectors'}"
    root = settings.state_dir / "eval" / f"{_safe(dataset.name)}-{dataset.corpus_digest[:12]}" / _safe(key)
    done = root / "complete.json"
    location = root / "v000001" / "store"
    info = info if info is not None else {}
    if not done.is_file():
        root.mkdir(parents=True, exist_ok=True)
        with WriterLock(root / "writer.lock", domain.name, wait=True):
            if not done.is_file():
                started = time.perf_counter()
                if location.parent.exists():
                    try:
                        store.delete_version(location)
                    except Exception:
                        pass
                    remove_tree(location.parent)
                location.parent.mkdir(parents=True)
                chunks = corpus_chunks(dataset)
                vectors = None
                stats = EmbedStats()
                if embedder is not None:
                    cache_file = settings.state_dir / "eval" / "vectors.sqlite"
                    with VectorCache(cache_file, embedder.model_id, embedder.dimension) as cache:
                        vectors = embed_with_cache(embedder, [embedding_text(c) for c in chunks], cache, progress=progress, stats=stats)
                embed_s = time.perf_counter() - started
                write_version(store, location, chunks, vectors, progress)
                write_json_atomic(
                    done,
                    {
                        "chunks": len(chunks),
                        "embedded": stats.embedded,
                        "from_cache": stats.from_cache,
                        "embed_s": round(embed_s, 3),
                        "build_s": round(time.perf_counter() - started, 3),
                    },
                )
                info.update({"built": True, "embedded": stats.embedded, "from_cache": stats.from_cache,
                             "build_s": round(time.perf_counter() - started, 3)})
    else:
        info.update({"built": False})
    info["location"] = str(location)
    return store.open_version(location)


def search_run(
    domain: "Domain",
    retriever_name: str,
    dataset: RetrievalDataset,
    query_ids: Sequence[str],
    *,
    k: int = 10,
    progress: Progress | None = None,
    info: dict[str, Any] | None = None,
    latencies: list[float] | None = None,
) -> dict[str, list[str]]:
    """The passage ids ``retriever_name`` ranks first for each of ``query_ids``, best
    first, at most ``k`` each (the index is built on first use, as for scoring).

    :param latencies: when given, each search's milliseconds are appended.
    """
    from fourfold.index.published import retriever_for

    progress = progress or NullProgress()
    retriever = retriever_for(domain, retriever_name)
    reader = open_eval_index(domain, retriever, dataset, progress=progress, info=info)
    run: dict[str, list[str]] = {}
    try:
        retriever.search(reader, "warm up", top_k=k)  # first call loads models
        progress.start(f"search {retriever_name}", len(query_ids))
        for qid in query_ids:
            started = time.perf_counter()
            passages = retriever.search(reader, dataset.queries[qid], top_k=k)
            if latencies is not None:
                latencies.append((time.perf_counter() - started) * 1000)
            run[qid] = list(dict.fromkeys(p.chunk.source for p in passages))
            progress.advance(1)
    finally:
        reader.close()
    return run


def evaluate_retrieval(
    dataset_dir: str | Path,
    retrievers: Sequence[str],
    *,
    split: str = "all",
    host: "PluginHost | None" = None,
    manifest: "Manifest | None" = None,
    progress: Progress | None = None,
    k: int = 10,
    limit: int | None = None,
    query_ids: Sequence[str] | None = None,
) -> RetrievalEvaluation:
    """nDCG@k, Recall@k, MRR@k and end-to-end search latency of each retriever.

    :param retrievers: registered retriever names (e.g. ``["sparse", "dense", "hybrid"]``).
    :param split: ``all`` DEV questions, or the ``tune`` / ``check`` half.
    :param manifest: take the embedder and the retriever's settings from this manifest.
    :param limit: evaluate only the first ``limit`` questions of the split.
    :param query_ids: evaluate only these questions of the split (e.g. a slice set aside
        by :func:`~fourfold.evaluation.datasets.set_aside`).
    """
    from fourfold.plugins import get_host

    progress = progress or NullProgress()
    host = host or get_host()
    dataset = load_dataset(dataset_dir)
    domain = eval_domain(dataset, host, manifest)
    ids = dataset.judged_queries(split)
    if query_ids is not None:
        wanted = set(query_ids)
        ids = [q for q in ids if q in wanted]
    if limit is not None:
        ids = ids[:limit]
    evaluation = RetrievalEvaluation(
        dataset=dataset.name, split=split, corpus=len(dataset.corpus), embedder=domain.embedder.model_id
    )
    for name in retrievers:
        info: dict[str, Any] = {}
        latencies: list[float] = []
        run = search_run(domain, name, dataset, ids, k=k, progress=progress, info=info, latencies=latencies)
        evaluation.index[name] = info
        metrics = evaluate_run(run, {q: dataset.qrels[q] for q in ids}, k)
        evaluation.results.append(
            RetrieverResult(
                retriever=name,
                metrics={m: round(v, 4) for m, v in metrics.items() if m != "queries"},
                latency_ms={
                    "p50": round(percentile(latencies, 50), 2),
                    "p95": round(percentile(latencies, 95), 2),
                    "mean": round(sum(latencies) / len(latencies), 2) if latencies else 0.0,
                },
                queries=int(metrics["queries"]),
            )
        )
    return evaluation
