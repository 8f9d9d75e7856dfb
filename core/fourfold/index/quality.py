"""The quality of an index version, measured on the domain's evaluation questions, and
the quality gate that keeps a worse version from being published.

When a manifest names ``knowledge.eval``, every new version is scored at the refresh's
validation step, before anything is published: each judged question is searched in the
new version with the domain's retriever and scored (nDCG@10 over the documents that
answer it). The score is stored beside the version (``quality.json``), so the next
refresh compares against the published version without searching it again.

With ``knowledge.gate.min_ndcg_at_10`` or ``max_drop`` set, a version that scores below
the floor, or more than ``max_drop`` below the published version, is *held*: it is
complete (its catalog is written) but not published, a ``HELD`` marker and its
``quality.json`` say why, the history records a ``refused`` event, and the refresh
raises :class:`QualityGateRefused`. The published version keeps serving. The newest
held version is kept until a later one replaces it, so ``fourfold index publish
VERSION --force --reason …`` can still publish it; the reason is recorded.

The measurement is cheap on a refresh: only the evaluation questions are embedded, and
their vectors are cached per embedder in the index's vector cache.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from fourfold.errors import IndexVersionError
from fourfold.evaluation.questions import EvalQuestion, EvalSet, eval_questions_for, score_ranking
from fourfold.index.layout import IndexLayout, servable
from fourfold.index.vector_cache import VectorCache
from fourfold.types import content_hash

if TYPE_CHECKING:
    from fourfold.components import Embedder, IndexStore, Retriever, VersionReader
    from fourfold.domain import Domain

__all__ = [
    "QualityGateRefused",
    "VersionQuality",
    "GateVerdict",
    "measure",
    "measure_version",
    "measure_published",
    "check_gate",
    "hold",
    "is_held",
    "held_versions",
    "read_quality",
    "publish_held",
    "record_quality",
    "published_quality",
    "query_vectors",
    "vector_key",
]

K = 10
TOP_SHOWN = 3  # passages kept per question in the report
WORSE_SHOWN = 5  # worse questions named in the refusal message
SNIPPET_CHARS = 200


class QualityGateRefused(IndexVersionError):
    """A new version scored too low on the evaluation questions and is held unpublished.

    :ivar verdict: the measurement and the comparison with the published version.
    """

    def __init__(self, message: str, verdict: "GateVerdict"):
        super().__init__(message)
        self.verdict = verdict


@dataclass
class QuestionScore:
    question: str
    line: int
    ndcg: float
    top: list[dict[str, Any]] = field(default_factory=list)  # source, score, text (a snippet)


@dataclass
class VersionQuality:
    """nDCG@10 of one version on one set of evaluation questions."""

    version: str
    retriever: str
    embedder: str
    eval_digest: str
    ndcg_at_10: float
    questions: list[QuestionScore]
    seconds: float = 0.0
    embedded_questions: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "VersionQuality":
        data = dict(data)
        data["questions"] = [QuestionScore(**q) for q in data.get("questions", [])]
        return cls(**data)

    def comparable(self, other: "VersionQuality") -> bool:
        """Whether both were measured on the same questions with the same retriever."""
        return self.eval_digest == other.eval_digest and self.retriever == other.retriever


@dataclass
class GateVerdict:
    """The gate's decision on a new version."""

    version: str
    quality: VersionQuality
    published: str | None = None
    baseline: float | None = None  # the published version's nDCG@10, when known
    min_ndcg_at_10: float | None = None
    max_drop: float | None = None
    min_gain: float | None = None
    reasons: list[str] = field(default_factory=list)  # why it is held; empty: passed
    notes: list[str] = field(default_factory=list)
    worse: list[dict[str, Any]] = field(default_factory=list)  # question, line, before, after, top, top_before
    forced: dict[str, Any] | None = None  # {"reason", "time"} once published with --force

    @property
    def passed(self) -> bool:
        return not self.reasons

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "GateVerdict":
        data = {k: v for k, v in data.items() if k != "passed"}
        data["quality"] = VersionQuality.from_json(data["quality"])
        return cls(**data)

    def summary(self) -> str:
        """One line: the score, the comparison, and the outcome."""
        q = self.quality
        text = f"nDCG@10 {q.ndcg_at_10:.3f} on {len(q.questions)} evaluation questions"
        if self.baseline is not None:
            text += f" (published {self.published}: {self.baseline:.3f})"
        if self.reasons:
            text += "; held: " + "; ".join(self.reasons)
        return text

    def message(self, domain: str, manifest: object = None) -> str:
        """The refusal as the CLI and the task record show it."""
        worse = "; ".join(f"{w['question'][:80]!r} {w['before']:.2f} → {w['after']:.2f}" for w in self.worse[:WORSE_SHOWN])
        more = f" (and {len(self.worse) - WORSE_SHOWN} more)" if len(self.worse) > WORSE_SHOWN else ""
        where = manifest or "MANIFEST"
        return (
            f"domain '{domain}': version {self.version} is held unpublished by knowledge.gate: {'; '.join(self.reasons)}. "
            + (f"{len(self.worse)} questions got worse: {worse}{more}. " if self.worse else "")
            + f"{self.published or 'No version'} keeps serving. See 'fourfold index status {where}'; to publish it "
            f"anyway: 'fourfold index publish {where} {self.version} --force --reason \"…\"'"
        )


# -------------------------------------------------------------------------
# measuring
# -------------------------------------------------------------------------


def query_vectors(embedder: "Embedder", questions: list[str], cache_file: Path, vector_key: str) -> tuple[dict[str, np.ndarray], int]:
    """Query vectors of ``questions``, from the vector cache (kept apart from passage
    vectors, per embedder) or embedded now. :returns: text → vector, and how many were
    embedded."""
    hashes = [content_hash(q) for q in questions]
    with VectorCache(cache_file, f"query|{vector_key}", embedder.dimension) as cache:
        found = cache.get_many(hashes)
        missing = [(h, q) for h, q in zip(hashes, questions) if h not in found]
        if missing:
            vectors = np.stack([np.asarray(embedder.embed_query(q), dtype=np.float32) for _, q in missing])
            cache.put_many([h for h, _ in missing], vectors)
            found.update({h: v for (h, _), v in zip(missing, vectors)})
    return {q: found[h] for h, q in zip(hashes, questions)}, len(missing)


@contextlib.contextmanager
def _ready_queries(embedder: "Embedder", ready: dict[str, np.ndarray]) -> Iterator[None]:
    """The retriever embeds each question itself; hand it the cached vectors instead."""
    original = embedder.embed_query
    embedder.embed_query = lambda text: ready[text] if text in ready else original(text)  # type: ignore[method-assign]
    try:
        yield
    finally:
        del embedder.embed_query


def measure_version(
    domain: "Domain",
    retriever: "Retriever",
    reader: "VersionReader",
    questions: EvalSet,
    *,
    version: str,
    cache_file: Path,
    vector_key: str,
) -> VersionQuality:
    """Search every judged question in ``reader`` (any version, published or not) and
    score the rankings."""
    return measure(
        domain,
        lambda q: retriever.search(reader, q, top_k=K),
        questions.judged,
        digest=questions.digest,
        version=version,
        retriever=retriever.name,
        cache=(cache_file, vector_key) if retriever.open_store().needs_vectors else None,
    )


def measure_published(domain: "Domain", questions: list[EvalQuestion] | None = None, *, retriever: "Retriever | None" = None) -> VersionQuality:
    """Score the version ``domain`` serves now on its ``knowledge.eval`` questions (or
    ``questions``), through the same path as every search."""
    found = eval_questions_for(domain.manifest)
    if questions is None:
        if found is None:
            raise IndexVersionError(
                f"{domain.manifest.path or 'manifest'}: knowledge.eval: domain '{domain.name}' names no evaluation questions"
            )
        questions = found.judged
    retriever = retriever or domain.retriever
    layout = IndexLayout.for_domain(domain)
    version = layout.read_current() or ""
    return measure(
        domain,
        lambda q: domain.search(q, top_k=K, retriever=retriever)[0],
        questions,
        digest=found.digest if found else "",
        version=version,
        retriever=retriever.name,
        cache=(layout.vector_cache_file, vector_key(domain)) if retriever.open_store().needs_vectors else None,
    )


def vector_key(domain: "Domain", embedder: "Embedder | None" = None) -> str:
    """The vector cache's key for ``domain``'s embedder: its model id, plus its version
    and plugin version when it has them, so upgrading the embedder re-embeds."""
    embedder = embedder or domain.embedder
    identity = domain.identity(embedder)
    return "|".join([embedder.model_id, *(str(identity[k]) for k in ("version", "plugin_version") if identity.get(k))])


def measure(
    domain: "Domain",
    search: Callable[[str], list],
    questions: list[EvalQuestion],
    *,
    digest: str,
    version: str,
    retriever: str,
    cache: tuple[Path, str] | None,
) -> VersionQuality:
    """Score ``search`` on ``questions``; query vectors come from ``cache`` (the vector
    cache file and the embedder's key) when given."""
    started = time.perf_counter()
    embedder = domain.embedder
    embedded = 0
    ready: dict[str, np.ndarray] = {}
    if cache is not None and questions:
        ready, embedded = query_vectors(embedder, [q.question for q in questions], cache[0], cache[1])
    scores = []
    with _ready_queries(embedder, ready) if ready else contextlib.nullcontext():
        for q in questions:
            scores.append(_score(q, search(q.question)))
    mean = sum(s.ndcg for s in scores) / len(scores) if scores else 0.0
    return VersionQuality(
        version=version,
        retriever=retriever,
        embedder=embedder.model_id,
        eval_digest=digest,
        ndcg_at_10=round(mean, 4),
        questions=scores,
        seconds=round(time.perf_counter() - started, 3),
        embedded_questions=embedded,
    )


def _score(question: EvalQuestion, passages: list) -> QuestionScore:
    return QuestionScore(
        question=question.question,
        line=question.line,
        ndcg=round(score_ranking(question, passages, K), 4),
        top=[
            {"source": p.chunk.source, "score": round(float(p.score), 4), "text": " ".join(p.chunk.text.split())[:SNIPPET_CHARS]}
            for p in passages[:TOP_SHOWN]
        ],
    )


# -------------------------------------------------------------------------
# the gate
# -------------------------------------------------------------------------


def check_gate(
    domain: "Domain",
    layout: IndexLayout,
    store: "IndexStore",
    name: str,
    published: str | None,
    vector_key: str,
) -> GateVerdict | None:
    """Measure the new version ``name`` (not yet published) and decide whether it may be
    published. None when the manifest names no evaluation questions.

    The published version's score comes from its ``quality.json``; when it has none
    measured on the same questions it is searched now, and when that is impossible (a
    serving process holds its store) only the floor applies.
    """
    questions = eval_questions_for(domain.manifest)
    knowledge = domain.manifest.knowledge
    if questions is None or knowledge is None or not questions.judged:
        return None
    gate = knowledge.gate
    retriever = domain.retriever
    reader = store.open_version(layout.store_dir(name))
    try:
        quality = measure_version(
            domain, retriever, reader, questions, version=name, cache_file=layout.vector_cache_file, vector_key=vector_key
        )
    finally:
        reader.close()
    verdict = GateVerdict(
        version=name, quality=quality, published=published, min_ndcg_at_10=gate.min_ndcg_at_10, max_drop=gate.max_drop, min_gain=gate.min_gain
    )
    before = _published_quality(domain, layout, store, published, questions, quality, vector_key, verdict) if published else None
    if before is not None:
        verdict.baseline = before.ndcg_at_10
        verdict.worse = _worse(before, quality)
    if gate.min_ndcg_at_10 is not None and quality.ndcg_at_10 < gate.min_ndcg_at_10:
        verdict.reasons.append(f"nDCG@10 {quality.ndcg_at_10:.3f} is below knowledge.gate.min_ndcg_at_10 ({gate.min_ndcg_at_10:.3f})")
    if gate.max_drop is not None and before is not None:
        drop = before.ndcg_at_10 - quality.ndcg_at_10
        if drop > gate.max_drop + 1e-9:
            verdict.reasons.append(
                f"nDCG@10 fell {drop:.3f} ({before.ndcg_at_10:.3f} → {quality.ndcg_at_10:.3f}), more than "
                f"knowledge.gate.max_drop ({gate.max_drop:.3f})"
            )
    if gate.min_gain is not None:
        if before is None:
            verdict.reasons.append("knowledge.gate.min_gain needs the published version's score on the same questions, and there is none")
        elif quality.ndcg_at_10 < before.ndcg_at_10 + gate.min_gain - 1e-9:
            verdict.reasons.append(
                f"nDCG@10 {quality.ndcg_at_10:.3f} does not beat the published version's {before.ndcg_at_10:.3f} by "
                f"knowledge.gate.min_gain ({gate.min_gain:+.3f})"
            )
    layout.write_version_record(name, "quality", verdict.to_json())
    return verdict


def _published_quality(
    domain: "Domain",
    layout: IndexLayout,
    store: "IndexStore",
    published: str,
    questions: EvalSet,
    new: VersionQuality,
    vector_key: str,
    verdict: GateVerdict,
) -> VersionQuality | None:
    recorded = read_quality(layout, published)
    if recorded is not None and recorded.quality.comparable(new):
        return recorded.quality
    built_with = layout.read_catalog(published).embedder
    if built_with != domain.embedder.model_id:
        # Its vectors come from another embedder: questions embedded by this one would
        # score it unfairly.
        verdict.notes.append(f"the published version {published} was built with embedder {built_with} and has no score on these questions")
        return None
    try:
        reader = store.open_version(layout.store_dir(published))
    except Exception as exc:  # noqa: BLE001 - e.g. a serving process holds the store
        verdict.notes.append(f"the published version {published} could not be searched ({type(exc).__name__}); only the floor applies")
        return None
    try:
        before = measure_version(
            domain, domain.retriever, reader, questions, version=published, cache_file=layout.vector_cache_file, vector_key=vector_key
        )
    finally:
        reader.close()
    record = GateVerdict(version=published, quality=before)
    if recorded is not None:
        record.forced = recorded.forced
    layout.write_version_record(published, "quality", record.to_json())
    return before


def _worse(before: VersionQuality, after: VersionQuality) -> list[dict[str, Any]]:
    """The questions that score lower in ``after``, worst fall first, with the top
    passages of each version."""
    old = {q.question: q for q in before.questions}
    out = []
    for q in after.questions:
        b = old.get(q.question)
        if b is not None and q.ndcg < b.ndcg - 1e-9:
            out.append({"question": q.question, "line": q.line, "before": b.ndcg, "after": q.ndcg, "top": q.top, "top_before": b.top})
    out.sort(key=lambda w: w["after"] - w["before"])
    return out


# -------------------------------------------------------------------------
# held versions
# -------------------------------------------------------------------------


def hold(layout: IndexLayout, verdict: GateVerdict, *, summary: str) -> None:
    """Keep a complete version unpublished, and record why."""
    layout.write_version_record(verdict.version, "held", {"summary": verdict.summary()})
    layout.append_history(
        "refused",
        version=verdict.version,
        published=verdict.published,
        ndcg_at_10=verdict.quality.ndcg_at_10,
        baseline=verdict.baseline,
        reasons=verdict.reasons,
        worse=[w["question"] for w in verdict.worse[:WORSE_SHOWN]],
        summary=summary,
    )


def is_held(layout: IndexLayout, name: str) -> bool:
    return layout.read_version_record(name, "held") is not None and not layout.was_published(name)


def held_versions(layout: IndexLayout) -> list[str]:
    """Complete versions the gate refused, never published, oldest first."""
    return [n for n in layout.complete_versions() if is_held(layout, n)]


def read_quality(layout: IndexLayout, name: str) -> GateVerdict | None:
    """What was measured of version ``name`` (None: never measured)."""
    record = layout.read_version_record(name, "quality")
    if record is None:
        return None
    try:
        return GateVerdict.from_json(record)
    except (ValueError, KeyError, TypeError):
        return None


def published_quality(domain: "Domain") -> GateVerdict | None:
    """What was measured of the version ``domain`` serves now (None: nothing)."""
    layout = IndexLayout.for_domain(domain)
    current = layout.read_current()
    return read_quality(layout, current) if current else None


def record_quality(layout: IndexLayout, quality: VersionQuality) -> None:
    """Store a measurement of a version (e.g. of the published one, on other questions)
    so that the next gate compares against it."""
    previous = read_quality(layout, quality.version)
    record = GateVerdict(version=quality.version, quality=quality, forced=previous.forced if previous else None)
    layout.write_version_record(quality.version, "quality", record.to_json())


def publish_held(domain: "Domain", version: str, *, force: bool, reason: str, wait: bool | float = False) -> GateVerdict:
    """Publish a version the quality gate held, recording who overrode it and why.

    :raises IndexVersionError: no such held version, ``force`` not given, or no reason.
    """
    layout = IndexLayout.for_domain(domain)
    with layout.writer_lock(wait=wait):
        name = version.strip()
        if not layout.is_complete(name):
            held = ", ".join(held_versions(layout)) or "none"
            raise IndexVersionError(f"domain '{domain.name}' has no index version '{name}' (held by the gate: {held})")
        if not is_held(layout, name):
            raise IndexVersionError(
                f"domain '{domain.name}': version {name} was not held by the quality gate; use 'fourfold index rollback --to {name}'"
            )
        verdict = read_quality(layout, name)
        if not force:
            why = verdict.summary() if verdict else "it failed knowledge.gate"
            raise IndexVersionError(f"domain '{domain.name}': version {name} was held ({why}); publish it with --force and a --reason")
        if not reason.strip():
            raise IndexVersionError(f"domain '{domain.name}': publishing a held version needs --reason (it is recorded in the history)")
        catalog, store = servable(domain, layout, name)
        previous = layout.read_current()
        forced = {"reason": reason.strip(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        if verdict is not None:
            verdict.forced = forced
            layout.write_version_record(name, "quality", verdict.to_json())
        layout.mark_published(name)
        store.publish(layout.store_dir(name))
        layout.write_current(name)
        layout.append_history(
            "publish",
            version=name,
            previous=previous,
            forced=True,
            reason=forced["reason"],
            documents=len(catalog.documents),
            chunks=catalog.chunk_count,
            summary=f"published with --force over the quality gate: {forced['reason']}",
        )
    return verdict or GateVerdict(version=name, quality=VersionQuality(name, "", "", "", 0.0, []), forced=forced)
