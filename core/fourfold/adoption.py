"""Adopting a domain-tuned embedder as a measured step.

A manifest asks for a tuned embedder by naming the artifact its ``embedding`` uses and
the ``embedder-contrastive`` fine-tuning block that produces it::

    embedding: {use: minilm, with: {model: artifact:medical-embedder}}
    fine_tuning: [{use: embedder-contrastive, artifact: medical-embedder, with: {max_minutes: 10}}]

:func:`adopt_embedder` (``fourfold index adopt-embedder MANIFEST``) then:

1. takes the domain's evaluation questions (``knowledge.eval``), or, when it has none,
   writes questions from its own documents (:func:`questions_from_chunks`: headings
   phrased as questions, else "What is <title>?");
2. splits them by a hash into a ``tune`` and a ``check`` half, and sets a fifth of the
   tune half aside (by another hash) as the ``weights`` slice, which training never sees;
3. pairs each other tune question with the chunk of its answering document that the base
   retriever ranks highest (the text the index embeds), and, when the block sets
   ``hard_negatives``, with as many chunks of other documents it ranks highest (what the
   tuned embedder must learn to rank lower), and trains the artifact on those pairs (the fine-tuner checkpoints, and
   an artifact whose inputs are unchanged is reused, so an interrupted run resumes);
4. scores the published version (built with the base embedder) on the check half;
5. refreshes the index with the tuned embedder: every chunk is embedded again into a new
   version, which the quality gate scores on the check half and publishes only when it
   beats the published version by ``margin`` (``knowledge.gate.min_gain``); otherwise it
   is held, and the tuned artifact is removed again so nothing serves with an embedder
   its index was not built with;
6. when the retriever fuses dense and BM25 rankings (``hybrid``), scores the new version
   on the weights slice with the fusion settings of :data:`FUSION_GRID`, the depths of
   :data:`CANDIDATES` and the BM25 title weights of :data:`TITLE_WEIGHTS`
   (:func:`choose_settings`; the built index is searched again, and each other title
   weight is written once into a scratch index from the version's chunks and cached
   vectors; nothing is embedded again but the questions), and reports the best as
   ``Adoption.suggested_fusion``, with its score on the check half. The fusion weights
   of ``hybrid`` were chosen for the base embedder, whose dense search is weak; a tuned
   embedder often wants more weight on it, and how much titles should count in BM25
   depends on the domain's documents.

The gate, and every search afterwards, uses the retrieval settings the manifest states;
the suggested ones serve only once someone writes them there (the command prints the
line to set), so the weights that serve are always the ones the manifest shows.

State lives in ``<state>/domains/<domain>/adoption/`` (the questions' halves, the pairs,
``adoption.json``).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from fourfold.components import NullProgress, Progress
from fourfold.errors import FourfoldError, IndexVersionError, TrainingError
from fourfold.evaluation.datasets import set_aside
from fourfold.evaluation.questions import EvalQuestion, eval_questions_for, questions_from_chunks, read_eval_questions, split_questions, write_eval_questions
from fourfold.files import remove_tree
from fourfold.index.layout import IndexLayout
from fourfold.index.lifecycle import embedding_text, refresh, write_version
from fourfold.index.vector_cache import VectorCache, embed_with_cache
from fourfold.index.quality import QualityGateRefused, measure, measure_published, record_quality, vector_key

if TYPE_CHECKING:
    from fourfold.domain import Domain
    from fourfold.manifest import Manifest

__all__ = ["Adoption", "adopt_embedder", "choose_settings", "fusion_variant", "FINE_TUNER", "FUSION_GRID", "CANDIDATES", "TITLE_WEIGHTS"]

FINE_TUNER = "embedder-contrastive"
_CANDIDATES = 20  # passages searched per tune question to find its best chunk

#: The fusion settings (``retrieval.with``) tried on the weights slice: BM25 keeps its
#: shipped weight and dense search gets from a third of it to over five times it (a
#: tuned embedder on a domain where BM25 is weak wanted the largest weight offered).
FUSION_GRID: tuple[dict[str, Any], ...] = tuple(
    [{"fusion": "scores", "dense_weight": w, "sparse_weight": 1.5} for w in (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)]
    + [{"fusion": "rrf", "dense_weight": w, "sparse_weight": 1.5} for w in (1.0, 2.0)]
)
#: Passages each of dense and BM25 search hands to the fusion (``retrieval.with.candidates``):
#: a tuned embedder finds answers BM25 ranks past 50, and the reverse.
CANDIDATES = (50, 200)
#: How much a word of a title or heading counts in BM25 (``retrieval.with.title_weight``):
#: titles help where they name the topic and hurt where every passage of a rulebook
#: carries its name (obliqa scores best at 0, policyqa at 2 to 3). It is stored in the
#: index, so each weight is tried on a scratch copy of the version.
TITLE_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 3.0)
_FUSION_KEYS = ("fusion", "dense_weight", "sparse_weight")
_SETTING_KEYS = (*_FUSION_KEYS, "candidates", "title_weight")


@dataclass
class Adoption:
    """What :func:`adopt_embedder` measured and decided."""

    domain: str
    artifact: str
    questions: str  # "knowledge.eval" or "generated from the documents"
    tune: int
    check: int
    pairs: int
    base_ndcg_at_10: float
    tuned_ndcg_at_10: float | None = None
    margin: float = 0.0
    adopted: bool = False
    version: str | None = None
    reasons: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    weights_questions: int = 0
    #: the manifest's retrieval settings (``retrieval.with`` keys: fusion, weights,
    #: candidates, BM25 title weight) and the best :func:`choose_settings` found on the
    #: weights slice, with their nDCG@10 there; None when the retriever fuses nothing or
    #: no version was built
    fusion: dict[str, Any] | None = None
    suggested_fusion: dict[str, Any] | None = None
    tuned_ndcg_at_10_suggested: float | None = None  # check half, with suggested_fusion
    settings_tried: int = 0  # retrieval settings scored on the weights slice

    def suggestion(self) -> str | None:
        """The manifest change the weight search suggests, or None when the manifest's
        settings are (as good as) the best."""
        if not self.suggested_fusion or not self.fusion:
            return None
        change = {k: v for k, v in self.suggested_fusion.items() if k in _SETTING_KEYS and self.fusion.get(k) != v}
        if not change:
            return None
        return ", ".join(f"retrieval.with.{k}: {v}" for k, v in change.items())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        tuned = "n/a" if self.tuned_ndcg_at_10 is None else f"{self.tuned_ndcg_at_10:.3f}"
        head = (
            f"{self.domain}: embedder '{self.artifact}' on {self.check} held-out questions ({self.questions}): "
            f"nDCG@10 {self.base_ndcg_at_10:.3f} (base) → {tuned} (tuned), margin {self.margin:+.3f}"
        )
        if self.adopted:
            head = f"{head}; adopted, published {self.version}"
        else:
            head = f"{head}; not adopted: {'; '.join(self.reasons)}"
        change = self.suggestion()
        if change and self.suggested_fusion:
            check = "" if self.tuned_ndcg_at_10_suggested is None else f", {self.tuned_ndcg_at_10_suggested:.3f} on the check half"
            head += (
                f". Retrieval settings chosen on {self.weights_questions} tune questions kept from training: {change} "
                f"(nDCG@10 {self.suggested_fusion['ndcg_at_10']:.3f} there vs {self.fusion['ndcg_at_10']:.3f} with the "
                f"manifest's{check}); the manifest's settings serve until it states these"
            )
        elif self.fusion:
            head += f". The manifest's retrieval settings are the best of those tried on {self.weights_questions} tune questions kept from training"
        return head


def _variant(manifest: "Manifest", change: dict[str, Any]) -> "Manifest":
    from fourfold.manifest import Manifest

    data = manifest.model_dump(by_alias=True, exclude_none=True)
    for dotted, value in change.items():
        target = data
        *parents, last = dotted.split(".")
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target.setdefault(part, {})
        if value is None:
            target.pop(last, None)
        else:
            target[last] = value
    # relative paths resolve as in the manifest, and messages name its file as given
    return Manifest.model_validate(data).with_path(manifest.path, file=manifest._file)


def _tuned_artifact(manifest: "Manifest") -> tuple[str, int]:
    """The artifact the embedding names and the index of the block producing it."""
    where = manifest.path or "manifest"
    model = str(manifest.embedding.with_.get("model") or "")
    if not model.startswith("artifact:"):
        raise TrainingError(
            f"{where}: embedding.with.model: name the tuned embedder to adopt as 'artifact:NAME' "
            f"(found {model or 'nothing'}), with a fine_tuning block '{FINE_TUNER}' producing NAME"
        )
    name = model.split(":", 1)[1]
    for i, block in enumerate(manifest.fine_tuning):
        if block.use == FINE_TUNER and (block.artifact or f"{manifest.domain}-{block.use}") == name:
            return name, i
    raise TrainingError(f"{where}: fine_tuning: no '{FINE_TUNER}' block produces artifact '{name}', which embedding.with.model names")


def adopt_embedder(domain: "Domain", progress: Progress | None = None, *, margin: float = 0.01, force: bool = False) -> Adoption:
    """Train the domain's tuned embedder, and publish an index built with it only when it
    beats the published version on held-out questions by ``margin`` (nDCG@10).

    :param force: train again even when the artifact's inputs are unchanged.
    :raises TrainingError: the manifest does not ask for a tuned embedder.
    """
    from fourfold.artifacts import ArtifactStore
    from fourfold.domain import Domain
    from fourfold.training import run_fine_tuning

    progress = progress or NullProgress()
    manifest = domain.manifest
    if manifest.knowledge is None:
        raise TrainingError(f"{manifest.path or 'manifest'}: adopting a tuned embedder needs a 'knowledge:' block to index")
    name, block = _tuned_artifact(manifest)
    folder = domain.state_dir / "adoption"
    folder.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    base = Domain(_variant(manifest, {"embedding.with.model": None}), domain.host, domain.settings)
    layout = IndexLayout.for_domain(base)

    # The base version to beat: built with the base embedder.
    current = layout.read_current()
    if current is None:
        progress.start("build with the base embedder")
        refresh(base, progress, wait=True)
    elif (built_with := layout.read_catalog(current).embedder) != base.embedder.model_id:
        raise IndexVersionError(
            f"domain '{domain.name}': the published version {current} was built with embedder {built_with}, not the base "
            f"{base.embedder.model_id} a tuned embedder is measured against; publish a base version first"
        )
    seconds["base index"] = time.perf_counter() - started

    # 1-2. questions and their halves
    progress.start("questions")
    found = eval_questions_for(manifest)
    origin = "knowledge.eval"
    questions: list[EvalQuestion] = found.judged if found else []
    if not questions:
        _, chunks, _ = base.sample_chunks(limit=100_000)
        questions = questions_from_chunks(chunks, limit=400)
        origin = "generated from the documents"
    tune, check = split_questions(questions, "tune"), split_questions(questions, "check")
    if len(tune) < 2 or not check:
        raise TrainingError(
            f"{manifest.path}: knowledge.eval: {len(questions)} evaluation questions are too few to train on one half and check on the other"
        )
    check_file = folder / "check.jsonl"
    write_eval_questions(check_file, check)
    _, aside = set_aside([q.question for q in tune])
    kept_aside = set(aside)
    train = [q for q in tune if q.question not in kept_aside]
    weights = [q for q in tune if q.question in kept_aside]
    write_eval_questions(folder / "weights.jsonl", weights)

    # 3. training pairs from the tune half, less the weights slice
    progress.start("pairs", len(train))
    pairs = _pairs(base, train, progress, negatives=int(manifest.fine_tuning[block].with_.get("hard_negatives") or 0))
    pairs_file = folder / "pairs.jsonl"
    pairs_file.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs), encoding="utf-8")

    # 4. the published version on the check half, kept for the gate to compare against
    checked = read_eval_questions(check_file, field="knowledge.eval")
    before = measure_published(base, checked.judged)
    before.eval_digest = checked.digest
    record_quality(layout, before)
    seconds["questions"] = time.perf_counter() - started - seconds["base index"]

    # 5. train (resumable: checkpoints, and an unchanged artifact is reused)
    t = time.perf_counter()
    trainer = Domain(_variant(manifest, {f"fine_tuning.{block}.with.data": str(pairs_file)}), domain.host, domain.settings)
    run_fine_tuning(trainer, progress, force=force, only=name)
    seconds["train"] = time.perf_counter() - t

    # 6. a version with the tuned embedder, published only if it wins on the check half
    t = time.perf_counter()
    gate = {"min_chunks": manifest.knowledge.gate.min_chunks, "min_gain": margin}
    tuned = Domain(_variant(manifest, {"knowledge.eval": str(check_file), "knowledge.gate": gate}), domain.host, domain.settings)
    result = Adoption(
        domain=domain.name, artifact=name, questions=origin, tune=len(tune), check=len(check), pairs=len(pairs),
        base_ndcg_at_10=before.ndcg_at_10, margin=margin, seconds=seconds, weights_questions=len(weights),
    )
    try:
        report = refresh(tuned, progress, wait=True)
    except QualityGateRefused as refused:
        result.tuned_ndcg_at_10 = refused.verdict.quality.ndcg_at_10
        result.reasons = list(refused.verdict.reasons)
        seconds["re-embed and gate"] = time.perf_counter() - t
        # the held version is searched before its embedder is removed
        _search_settings(tuned, refused.verdict.version, weights, check, result, progress)
        # Nothing may serve queries embedded by a model the published index was not built with.
        ArtifactStore(domain.settings).delete(name)
        result.reasons.append(f"artifact '{name}' removed; version {refused.verdict.version} is held")
    else:
        verdict = report.quality or {}
        result.tuned_ndcg_at_10 = (verdict.get("quality") or {}).get("ndcg_at_10")
        result.adopted = bool(report.published)
        result.version = report.version
        if not report.published:
            result.reasons.append(report.reason or "nothing was published")
        seconds["re-embed and gate"] = time.perf_counter() - t
        if report.version:
            _search_settings(tuned, report.version, weights, check, result, progress)
    seconds["total"] = time.perf_counter() - started
    (folder / "adoption.json").write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
    IndexLayout.for_domain(domain).append_history(
        "adoption", version=result.version, artifact=name, adopted=result.adopted, base=result.base_ndcg_at_10,
        tuned=result.tuned_ndcg_at_10, margin=margin, summary=result.summary(),
    )
    return result


def fusion_variant(manifest: "Manifest", settings: dict[str, Any]) -> "Manifest":
    """``manifest`` with its retriever's fusion and BM25 settings (``retrieval.with`` keys
    ``fusion``, ``dense_weight``, ``sparse_weight``, ``candidates``, ``title_weight``)
    replaced by those ``settings`` holds."""
    return _variant(manifest, {f"retrieval.with.{k}": v for k, v in settings.items() if k in _SETTING_KEYS})


def choose_settings(score: Callable[[dict[str, Any]], float], current: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The retrieval settings that score best, found by a coordinate search from
    ``current`` (``retrieval.with`` keys): each fusion setting of :data:`FUSION_GRID`,
    then each depth of :data:`CANDIDATES`, then each BM25 title weight of
    :data:`TITLE_WEIGHTS`, and when the title weight changed, the fusion settings and
    depths again. Only the keys ``current`` holds are varied; a setting replaces the best
    only when it scores higher, so ties keep ``current``.

    :param score: nDCG@10 of a complete setting (each one is scored once).
    :returns: ``current`` and the best, each with its ``ndcg_at_10``.
    """
    scored: dict[tuple, float] = {}

    def value(settings: dict[str, Any]) -> float:
        key = tuple(sorted(settings.items()))
        if key not in scored:
            scored[key] = score(settings)
        return scored[key]

    best, best_score = dict(current), value(current)

    def sweep(changes) -> None:
        nonlocal best, best_score
        for change in changes:
            if not set(change) <= set(current):
                continue
            trial = {**best, **change}
            if (trial_score := value(trial)) > best_score:
                best, best_score = trial, trial_score

    def fusion_and_depth() -> None:
        sweep(FUSION_GRID)
        sweep({"candidates": c} for c in CANDIDATES)

    fusion_and_depth()
    title_weight = best.get("title_weight")
    sweep({"title_weight": w} for w in TITLE_WEIGHTS)
    if best.get("title_weight") != title_weight:
        fusion_and_depth()
    return {**current, "ndcg_at_10": value(current)}, {**best, "ndcg_at_10": best_score}


def _search_settings(
    tuned: "Domain", version: str, weights: list[EvalQuestion], check: list[EvalQuestion], result: Adoption, progress: Progress
) -> None:
    """Score the built ``version`` with the settings :func:`choose_settings` tries on the
    weights slice and record the manifest's and the best in ``result``; the best is also
    scored on the check half. Fusion settings and depths are domain variants over the
    same version (only the fusion of its two rankings differs); another BM25 title
    weight needs its own sparse vectors, so the version's chunks and cached vectors (read
    once) are written once per weight into a scratch index under the adoption folder,
    removed afterwards. Each index is opened once and searched for every setting."""
    from fourfold.domain import Domain

    config = tuned.retriever.config
    if not weights or not all(hasattr(config, k) for k in _FUSION_KEYS):
        return  # the retriever fuses nothing (or no question was kept from training)
    started = time.perf_counter()
    layout = IndexLayout.for_domain(tuned)
    key = vector_key(tuned)
    current = {k: getattr(config, k) for k in _SETTING_KEYS if hasattr(config, k)}
    if not hasattr(config, "engine"):
        current.pop("title_weight", None)  # no local engine to write a scratch index with
    scratch_root = tuned.state_dir / "adoption" / "scratch"
    readers: dict[Any, Any] = {}  # title weight → a reader over the index with it, open until the end
    scratch: list[tuple[Any, Path]] = []  # (store, location) of each scratch index
    content: list[Any] = []  # the version's chunks and their cached vectors, read once

    def variant_for(settings: dict[str, Any]) -> "Domain":
        change = {f"retrieval.with.{k}": v for k, v in settings.items() if k in _SETTING_KEYS}
        if settings.get("title_weight") != current.get("title_weight"):
            # a scratch index is local whatever the domain serves from: nothing is written to a shared server
            change["retrieval.with.engine"] = "edge"
        return Domain(_variant(tuned.manifest, change), tuned.host, tuned.settings)

    def reader_for(variant: "Domain", settings: dict[str, Any]) -> Any:
        title_weight = settings.get("title_weight")
        if title_weight not in readers:
            store = variant.retriever.open_store()
            location = layout.store_dir(version)
            if title_weight != current.get("title_weight"):
                location = scratch_root / f"title-weight-{title_weight}" / "v000001" / "store"
                remove_tree(location.parent.parent)
                location.parent.mkdir(parents=True)
                if not content:
                    chunks = _version_chunks(tuned, layout.store_dir(version))
                    with VectorCache(layout.vector_cache_file, key, variant.embedder.dimension) as cache:
                        content.extend([chunks, embed_with_cache(variant.embedder, [embedding_text(c) for c in chunks], cache)])
                scratch.append((store, location))
                write_version(store, location, *content)
            readers[title_weight] = store.open_version(location)
        return readers[title_weight]

    def score(settings: dict[str, Any], questions: list[EvalQuestion]) -> float:
        variant = variant_for(settings)
        retriever = variant.retriever
        reader = reader_for(variant, settings)
        quality = measure(
            variant, lambda q: retriever.search(reader, q, top_k=10), questions, digest="", version=version,
            retriever=retriever.name, cache=(layout.vector_cache_file, key),
        )
        progress.advance(1)
        return quality.ndcg_at_10

    def on_weights(settings: dict[str, Any]) -> float:
        result.settings_tried += 1
        return score(settings, weights)

    progress.start("retrieval settings", None)
    try:
        result.fusion, best = choose_settings(on_weights, current)
        result.suggested_fusion = best
        if result.suggestion():
            result.tuned_ndcg_at_10_suggested = score({k: v for k, v in best.items() if k != "ndcg_at_10"}, check)
        else:
            result.tuned_ndcg_at_10_suggested = result.tuned_ndcg_at_10
    finally:
        for reader in readers.values():
            reader.close()
        for store, location in scratch:
            try:
                store.delete_version(location)
            except Exception:  # noqa: BLE001 - the folder goes below either way
                pass
        remove_tree(scratch_root)
    result.seconds["retrieval settings"] = time.perf_counter() - started


def _version_chunks(domain: "Domain", location: Path) -> list:
    """Every chunk of the version at ``location``."""
    reader = domain.retriever.open_store().open_version(location)
    try:
        return list(reader.chunks())
    finally:
        reader.close()


def _pairs(base: "Domain", tune: list[EvalQuestion], progress: Progress, *, negatives: int = 0) -> list[dict[str, Any]]:
    """(question, passage) pairs: each tune question with the chunk of an answering
    document that the base retriever ranks highest, as the index embeds it; with
    ``negatives`` (the fine-tuner's ``hard_negatives``), also that many chunks of other
    documents it ranks highest (what the tuned embedder must learn to rank lower)."""
    pairs = []
    for q in tune:
        passages, _ = base.search(q.question, top_k=_CANDIDATES)
        best = next((p.chunk for p in passages if q.is_answer(p.chunk.source, p.chunk.text)), None)
        if best is not None:
            pair: dict[str, Any] = {"question": q.question, "passage": embedding_text(best)}
            if negatives:
                pair["negatives"] = [embedding_text(p.chunk) for p in passages if p.chunk.source not in q.sources][:negatives]
            pairs.append(pair)
        progress.advance(1)
    if len(pairs) < 2:
        raise FourfoldError(
            f"domain '{base.name}': only {len(pairs)} tune questions found a chunk of their answering document among the "
            f"first {_CANDIDATES} passages; check the 'source' names in knowledge.eval"
        )
    return pairs
