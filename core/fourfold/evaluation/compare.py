"""``fourfold eval compare``: a grid of configurations run side by side on one dataset.

Each configuration is a prompt strategy, a retriever (or none) and a generator
(including fine-tuned artifacts). Every question of the dataset is answered through
fourfold's own answering pipeline (:func:`fourfold.answering.answer`, so answer wrappers and citation
checks run as in production), with passages from an index of the dataset's corpus
built by the retriever's own store. Reported per configuration: the answer metric where
the dataset has answers (yes/no/maybe accuracy, or token F1), grounding, the share of
questions whose relevant passage reached the prompt, latency, CPU time and cost, and
the advisor's estimate of the same time and cost beside the measured figures. The
retrieval table scores each retriever alone (nDCG@10, Recall@10, MRR@10), per embedder
when tuned ones are named (base against tuned, on the same questions); the domain's own
figure on its ``knowledge.eval`` questions is reported beside it. For label
datasets the majority-class baseline is reported too.
"""

from __future__ import annotations

import re
import time
from functools import cached_property
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from fourfold.components import NullProgress, Progress
from fourfold.domain import Domain, call_component
from fourfold.errors import FourfoldError
from fourfold.evaluation.answers import GroundingRule, Grounding, best_token_f1, classify_answer, grounding, load_answers
from fourfold.evaluation.datasets import load_dataset
from fourfold.evaluation.metrics import evaluate_run, percentile
from fourfold.trust.service import DomainTrust
from fourfold.types import GenerationLimits, Passage

if TYPE_CHECKING:
    from fourfold.advisor import Accelerator
    from fourfold.components import Retriever, VersionReader
    from fourfold.manifest import Manifest
    from fourfold.plugins import PluginHost

__all__ = ["CompareOptions", "Configuration", "compare", "embedder_variants", "LABEL_SUFFIX", "DEFAULT_MACHINE_PRICE"]

LABEL_SUFFIX = " Answer with yes, no or maybe first, then explain briefly."
DEFAULT_MACHINE_PRICE = 0.10  # $/hour: roughly an on-demand 2-vCPU cloud machine
_EXAMPLES = 6
_LM_SETTINGS = ("max_tokens", "timeout_s", "temperature", "top_p", "repetition_penalty", "no_repeat_ngram_size", "dtype", "seed")


@dataclass
class CompareOptions:
    """The grid and how it runs.

    :ivar retrievers: retrievers scored alone in the retrieval table.
    :ivar generators: generators to answer with (None: the manifest's; plus
        ``extractive`` for datasets scored by token F1).
    :ivar prompts: retrieval-based prompt strategies (None: the manifest's).
    :ivar artifacts: fine-tuned artifacts to answer with (``transformers`` generator);
        the manifest's own fine-tuning artifacts are added when they exist.
    :ivar without_retrieval: also answer with the ``plain`` prompt (no retrieval).
    :ivar question_suffix: appended to every question (None: an instruction to start
        with yes/no/maybe on label datasets, nothing otherwise).
    :ivar embedders: embedder models (``artifact:NAME`` or a folder) the retrieval table
        also scores, each beside the manifest's embedder without a model (the base); the
        manifest's own ``embedding.with.model`` is added when it names one.
    :ivar unanswerable: questions from other fields and languages asked of every
        configuration with retrieval, to measure how often it refuses what its
        documents do not cover (0: none).
    """

    retrievers: list[str] = field(default_factory=lambda: ["sparse", "dense", "hybrid"])
    embedders: list[str] = field(default_factory=list)
    generators: list[str] | None = None
    prompts: list[str] | None = None
    artifacts: list[str] = field(default_factory=list)
    without_retrieval: bool = True
    split: str = "all"
    limit: int | None = None
    max_tokens: int | None = None
    question_suffix: str | None = None
    machine_price_per_hour: float = DEFAULT_MACHINE_PRICE
    accelerator: "Accelerator | None" = None
    grounding: GroundingRule = field(default_factory=GroundingRule)
    unanswerable: int = 8


@dataclass
class Configuration:
    key: str
    prompt: str
    retriever: str | None
    generator: str
    prompt_with: dict[str, Any] = field(default_factory=dict)
    retrieval_with: dict[str, Any] = field(default_factory=dict)
    generation_with: dict[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> str | None:
        return self.generation_with.get("model") if self.generator == "transformers" else None

    @property
    def generator_label(self) -> str:
        return f"{self.generator} ({self.model})" if self.model else self.generator

    @property
    def label(self) -> str:
        return f"{self.generator_label} · {self.prompt} · {self.retriever or 'no retrieval'}"


class _EvalDomain(Domain):
    """A domain whose searches go to an evaluation index of a dataset's corpus."""

    def __init__(self, manifest: "Manifest", host: "PluginHost", reader: "VersionReader | None"):
        super().__init__(manifest, host)
        self._reader = reader
        self.last_passages: list[Passage] = []

    @cached_property
    def trust(self) -> DomainTrust:
        # Calibrated on the evaluation index, kept in memory: it is rebuilt per run.
        return DomainTrust(self, persist=False)

    def sample_chunks(self, limit: int = 4000):
        if self._reader is None:
            raise FourfoldError("this configuration has no retrieval")
        chunks = []
        for chunk in self._reader.chunks():
            chunks.append(chunk)
            if len(chunks) >= limit:
                break
        return "eval", chunks, len(chunks)

    def search(self, query, *, top_k=None, filters=None, retriever=None):
        if self._reader is None:
            raise FourfoldError("this configuration has no retrieval")
        retriever = retriever or self.retriever
        self.last_passages = call_component(retriever, "search", self._reader, query, top_k=top_k, filters=filters)
        return self.last_passages, "eval"


def _flag_count(flags: list[str], name: str) -> int:
    return sum(int(f.split(":", 1)[1]) for f in flags if f.startswith(name + ":") and f.split(":", 1)[1].isdigit())


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "dataset"


def _grid(base: "Manifest", host: "PluginHost", options: CompareOptions, metric: str | None, settings) -> tuple[list[Configuration], list[str]]:
    from fourfold.artifacts import ArtifactStore
    from fourfold.training import planned_artifacts

    notes: list[str] = []
    retriever = base.retrieval.use
    retrieval_with = dict(base.retrieval.with_)
    manifest_prompt = base.prompt.use
    prompts = options.prompts or [manifest_prompt if manifest_prompt != "plain" else "grounded-citations"]
    generators = list(options.generators or [base.generation.use])
    if options.generators is None and metric != "accuracy" and "extractive" not in generators:
        generators.append("extractive")
    lm_settings = {k: v for k, v in base.generation.with_.items() if k in _LM_SETTINGS} if base.generation.use in ("smollm2", "transformers") else {}

    def gen_with(name: str) -> dict[str, Any]:
        return dict(base.generation.with_) if name == base.generation.use else {}

    def prompt_with(name: str) -> dict[str, Any]:
        if name == manifest_prompt or (name == "step-by-step" and manifest_prompt == "grounded-citations"):
            return dict(base.prompt.with_)
        return {}

    models: list[tuple[str, dict[str, Any]]] = [(g, gen_with(g)) for g in generators]
    artifacts = list(options.artifacts)
    store = ArtifactStore(settings)
    try:
        planned = [name for stage, name in planned_artifacts(Domain(base, host)) if stage.startswith("fine_tuning")]
    except FourfoldError:
        planned = []
    for name in planned:
        if name not in artifacts and store.find(name) is not None:
            artifacts.append(name)
        elif name not in artifacts:
            notes.append(f"the manifest's artifact '{name}' does not exist yet (fourfold fine-tune); not compared")
    for name in artifacts:
        if store.find(name) is None:
            raise FourfoldError(f"artifact '{name}' not found in {store.root}; 'fourfold artifacts' lists them")
        if base.generation.use == "transformers" and base.generation.with_.get("model") == f"artifact:{name}":
            continue
        models.append(("transformers", {**lm_settings, "model": f"artifact:{name}"}))
    configs: list[Configuration] = []
    for generator, with_ in models:
        lm = generator not in ("extractive",)
        tag = with_.get("model", generator)
        for prompt in prompts:
            configs.append(Configuration(f"{tag}|{prompt}|{retriever}", prompt, retriever, generator, prompt_with(prompt), retrieval_with, with_))
        if options.without_retrieval and lm and host.get("prompt_strategy", "plain") is not None:
            configs.append(Configuration(f"{tag}|plain|none", "plain", None, generator, {}, {}, with_))
    return configs, notes


def _config_manifest(base: "Manifest", dataset_name: str, config: Configuration) -> "Manifest":
    from fourfold.manifest import Manifest

    data = {
        "fourfold": 1,
        "domain": f"eval-{_slug(dataset_name)}"[:63],
        "title": f"Evaluation on {dataset_name}",
        "embedding": base.embedding.model_dump(by_alias=True),
        "retrieval": {"use": config.retriever or base.retrieval.use, "with": config.retrieval_with},
        "prompt": {"use": config.prompt, "with": config.prompt_with},
        "generation": {"use": config.generator, "with": config.generation_with},
    }
    manifest = Manifest.model_validate(data)
    manifest = manifest.with_path(base.path)  # relative paths in with-blocks resolve as in the manifest
    return manifest


def _estimate(domain: Domain, config: Configuration, corpus, rates, acc, emb, answer_tokens: int, price: float) -> dict[str, Any]:
    from fourfold.advisor import Figure, Input, ServingPlan, serving_per_question

    plan = ServingPlan(config.prompt, config.retriever, config.generator, domain.prompt_strategy.config, domain.generator.config,
                       int(config.retrieval_with.get("top_k", 5)))
    parts, flops, acc_s, facts = serving_per_question(domain, plan, corpus, rates, acc, emb, answer_tokens=answer_tokens)
    per_q = sum(p.value or 0 for p in parts.values())
    seconds = Figure(per_q, "s", "sum of the parts: " + " + ".join(parts), {k: Input(round(v.value or 0, 4), "s", v.explain()) for k, v in parts.items()})
    here = Figure(per_q * 1000 / 3600 * price, "$", "seconds per question × 1,000 / 3,600 × machine price",
                  {"machine price": Input(price, "$/h", "assumption (--machine-price-per-hour)")})
    accel = Figure((acc_s.value or 0) * 1000 / 3600 * acc.price_per_hour, "$", "accelerator seconds per question × 1,000 / 3,600 × price",
                   {"accelerator seconds": Input(acc_s.value, "s", acc_s.formula), "price": Input(acc.price_per_hour, "$/h", acc.name)})
    return {"seconds_per_question": seconds.to_dict(), "cost_per_1000_here": here.to_dict(), "cost_per_1000_accelerator": accel.to_dict(),
            "flops_per_question": flops.to_dict(), "facts": {k: v.to_dict() for k, v in facts.items()}}


def compare(
    manifest: "Manifest",
    dataset_dir: str | Path,
    options: CompareOptions | None = None,
    *,
    host: "PluginHost | None" = None,
    progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
    calibration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the grid on the dataset and return the comparison (JSON-ready).

    :raises FourfoldError: the dataset or an artifact cannot be found, a component
        cannot be built.
    """
    from fourfold.advisor import CorpusProfile, Rates, accelerator as accelerator_preset, describe_machine, embedder_work
    from fourfold.evaluation.retrieval import corpus_chunks, eval_domain, evaluate_retrieval, open_eval_index
    from fourfold.plugins import get_host
    from fourfold.answering import answer as run_answer

    options = options or CompareOptions()
    host = host or get_host()
    progress = progress or NullProgress()
    log = log or (lambda _line: None)
    acc = options.accelerator or accelerator_preset()
    started = time.perf_counter()
    dataset = load_dataset(dataset_dir)
    key = load_answers(dataset.path)
    metric = key.metric if key else None
    qids = dataset.judged_queries(options.split)
    if key is not None:
        qids = [q for q in qids if key.gold(q)]
    if options.limit is not None:
        qids = qids[: options.limit]
    if not qids:
        raise FourfoldError(f"{dataset.path}: no judged questions in split '{options.split}'")
    suffix = options.question_suffix if options.question_suffix is not None else (LABEL_SUFFIX if metric == "accuracy" else "")
    notes: list[str] = []
    if suffix:
        notes.append(f"every question was asked with this instruction appended: {suffix.strip()!r}")

    # -- retrieval alone -------------------------------------------------------------------------
    retrieval = []
    if options.retrievers:
        for label, variant in embedder_variants(manifest, options.embedders):
            result = evaluate_retrieval(dataset.path, options.retrievers, split=options.split, host=host, manifest=variant, progress=progress,
                                        limit=None if options.limit is None else len(qids))
            retrieval += [{**r.__dict__, "embedder": label} for r in result.results]
        log(f"retrieval scored in {time.perf_counter() - started:.0f} s")

    # -- answers ---------------------------------------------------------------------------------
    configs, grid_notes = _grid(manifest, host, options, metric, host.settings)
    notes += grid_notes
    base = eval_domain(dataset, host, manifest)
    corpus_text = {d.id: (d.title + "\n" + d.text).strip() for d in dataset.corpus}
    sample = CorpusProfile(sample_chunks=corpus_chunks(dataset)[:16])
    rates = None
    if calibration is not None:
        try:
            rates = Rates(calibration)
        except FourfoldError as exc:
            notes.append(f"advisor estimates left out: {exc}")
    emb_work = embedder_work(base, notes)
    emb = emb_work.model if emb_work is not None else None
    answer_tokens = options.max_tokens or 80
    readers: dict[str, Any] = {}
    results = []
    try:
        for config in configs:
            reader = None
            if config.retriever:
                retriever: "Retriever" = base.build("retriever", config.retriever)
                store_key = retriever.open_store().store_id
                if store_key not in readers:
                    readers[store_key] = open_eval_index(base, retriever, dataset, progress=progress)
                reader = readers[store_key]
            domain = _EvalDomain(_config_manifest(manifest, dataset.name, config), host, reader)
            results.append(_run_config(domain, config, dataset, qids, key, metric, suffix, corpus_text, options, progress, run_answer, log))
            if rates is not None:
                try:
                    results[-1]["estimate"] = _estimate(domain, config, sample, rates, acc, emb, answer_tokens, options.machine_price_per_hour)
                except FourfoldError as exc:
                    notes.append(f"{config.label}: no advisor estimate ({exc})")
    finally:
        for reader in readers.values():
            try:
                reader.close()
            except Exception:
                pass

    baselines = []
    if metric == "accuracy" and key is not None:
        counts = Counter(key.labels[q] for q in qids)
        label, n = counts.most_common(1)[0]
        baselines.append({"name": "majority", "label": f"majority class ('{label}')", "answer": label, "value": n / len(qids),
                          "distribution": dict(counts), "note": "always answers the most frequent label of the questions evaluated"})
    machine = describe_machine(host.settings)
    machine["label"] = Rates(calibration).label if calibration else machine.get("device_name")
    return {
        "kind": "comparison",
        "dataset": dataset.name,
        "dataset_path": str(dataset.path),
        "manifest": str(manifest.path) if manifest.path else None,
        "domain": manifest.domain,
        "split": options.split,
        "limit": options.limit,
        "questions": len(qids),
        "answer_metric": metric,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "took_s": round(time.perf_counter() - started, 1),
        "machine": machine,
        "prices": {"machine_per_hour": options.machine_price_per_hour, "accelerator": acc.name, "accelerator_per_hour": acc.price_per_hour},
        "grounding_rule": options.grounding.to_dict(),
        "question_suffix": suffix,
        "retrieval": retrieval,
        "domain_retrieval": _domain_retrieval(manifest, host),
        "baselines": baselines,
        "configs": results,
        "notes": notes,
    }


def embedder_variants(manifest: "Manifest", models: list[str]) -> list[tuple[str, "Manifest"]]:
    """The manifest as it is, or, when tuned models are named (or the manifest's embedder
    names one): the base embedder (no model) first, then one variant per tuned model,
    each labelled ``base`` or the model reference."""
    from fourfold.manifest import Manifest

    own = manifest.embedding.with_.get("model")
    tuned = list(dict.fromkeys(([own] if own else []) + list(models)))
    if not tuned:
        return [(manifest.embedding.use, manifest)]

    def with_model(model: str | None) -> "Manifest":
        data = manifest.model_dump(by_alias=True, exclude_none=True)
        settings = {k: v for k, v in data["embedding"].get("with", {}).items() if k != "model"}
        if model:
            settings["model"] = model
        data["embedding"] = {"use": manifest.embedding.use, "with": settings}
        variant = Manifest.model_validate(data)
        variant = variant.with_path(manifest.path)  # relative model folders resolve as in the manifest
        return variant

    return [("base", with_model(None))] + [(model, with_model(model)) for model in tuned]


def _domain_retrieval(manifest: "Manifest", host: "PluginHost") -> dict[str, Any] | None:
    """The manifest's own domain: its published version's score on ``knowledge.eval``
    (as measured when it was built), so the report shows the figure for the domain's
    documents beside the dataset's."""
    from fourfold.index.quality import published_quality

    if manifest.knowledge is None or not manifest.knowledge.eval:
        return None
    try:
        found = published_quality(Domain(manifest, host))
    except FourfoldError:
        return None
    if found is None:
        return None
    q = found.quality
    return {"version": q.version, "retriever": q.retriever, "embedder": q.embedder, "ndcg_at_10": q.ndcg_at_10,
            "questions": len(q.questions), "eval": manifest.knowledge.eval}


def _answer_tokens(domain: _EvalDomain, texts: list[str]) -> float | None:
    """Mean length of the answers as shown, in the generator's tokens (a language model
    that exposes its tokenizer), else in words."""
    if not texts:
        return None
    loaded = getattr(domain.generator, "loaded", None)
    try:
        tokenizer = loaded().tokenizer if callable(loaded) else None
    except Exception:
        tokenizer = None
    if tokenizer is None:
        return round(sum(len(t.split()) for t in texts) / len(texts), 1)
    return round(sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts) / len(texts), 1)


def _run_config(domain: _EvalDomain, config: Configuration, dataset, qids, key, metric, suffix, corpus_text, options: CompareOptions,
                progress: Progress, run_answer, log) -> dict[str, Any]:
    limits = GenerationLimits(max_tokens=options.max_tokens or 256, timeout_s=300)
    total = Grounding()
    wall, cpu, scores, rules = [], [], [], Counter()
    predicted = Counter()
    run: dict[str, list[str]] = {}
    examples, errors, texts_out = [], [], []
    no_answer = getattr(domain.prompt_strategy.config, "no_answer", None)
    embedder = domain.embedder

    def embed(texts: list[str]):
        return embedder.embed_documents(texts)

    try:
        domain.generator.prepare(NullProgress())  # load models before the clock starts
    except Exception as exc:
        raise FourfoldError(f"{config.label}: the generator could not load: {exc}") from exc
    refused = contradicted = unsupported = 0
    progress.start(f"answer {config.generator_label[:30]} {config.prompt}", len(qids))
    for qid in qids:
        question = dataset.queries[qid] + suffix
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            result = run_answer(domain, question, limits=limits)
        except FourfoldError as exc:
            errors.append(f"{qid}: {exc}")
            progress.advance(1)
            continue
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append(time.process_time() - c0)
        texts_out.append(result.text)
        refused += "not-in-documents" in result.flags
        contradicted += _flag_count(result.flags, "contradiction-removed")
        unsupported += _flag_count(result.flags, "unsupported-removed")
        passages = list(domain.last_passages) if config.retriever else []
        domain.last_passages = []
        if config.retriever:
            run[qid] = [p.chunk.source for p in passages]
        texts = [corpus_text.get(p.chunk.source, p.chunk.text) for p in passages]
        # A refusal claims nothing: it is counted as a refusal, not as ungrounded text.
        g = grounding("" if result.refused else result.text, texts, rule=options.grounding, embed=embed if texts else None)
        total.add(g)
        gold = key.gold(qid) if key else None
        scored: Any = None
        if metric == "accuracy":
            label, rule = classify_answer(result.text, no_answer=no_answer)
            rules[rule] += 1
            predicted[label or "unmapped"] += 1
            scored = label
            scores.append(1.0 if label == gold else 0.0)
        elif metric == "token_f1":
            scored = round(best_token_f1(result.text, gold or []), 4)
            scores.append(scored)
        if len(examples) < _EXAMPLES:
            examples.append({"id": qid, "question": question, "gold": gold if not isinstance(gold, list) else (gold[0] if gold else ""),
                             "answer": result.text, "scored": scored, "citations": [c.source for c in result.citations], "grounded": g.to_dict()})
        progress.advance(1)
    answered = len(wall)
    answer_tokens = _answer_tokens(domain, texts_out)
    refused_unanswerable = None
    if config.retriever and options.unanswerable:
        from fourfold.trust.offdomain import HELD_OUT_QUESTIONS  # never seen by the calibration

        asked = HELD_OUT_QUESTIONS[:: max(1, len(HELD_OUT_QUESTIONS) // options.unanswerable)][: options.unanswerable]
        count = 0
        for question in asked:
            try:
                count += "not-in-documents" in run_answer(domain, question, limits=limits).flags
            except FourfoldError:
                pass
        refused_unanswerable = count / len(asked) if asked else None
    if errors:
        log(f"{config.label}: {len(errors)} questions failed, e.g. {errors[0]}")
    metric_out: dict[str, Any] = {}
    if metric == "accuracy":
        metric_out = {"accuracy": sum(scores) / len(qids) if qids else None, "answered": answered, "unmapped": predicted.get("unmapped", 0),
                      "predicted": dict(predicted), "rules": dict(rules)}
    elif metric == "token_f1":
        metric_out = {"token_f1": sum(scores) / len(qids) if qids else None, "answered": answered}
    evidence = None
    if config.retriever and run:
        k = int(config.retrieval_with.get("top_k", 5))
        ev = evaluate_run(run, {q: dataset.qrels[q] for q in run}, k)
        evidence = {"k": k, "recall": round(ev[f"recall@{k}"], 4), "mrr": round(ev[f"mrr@{k}"], 4)}
    mean_wall = sum(wall) / answered / 1000 if answered else None
    return {
        "key": config.key,
        "label": config.label,
        "prompt": config.prompt,
        "retriever": config.retriever,
        "generator": config.generator,
        "generator_label": config.generator_label,
        "model": config.model,
        "answers": answered,
        "errors": len(errors),
        "error_examples": errors[:3],
        "metric": metric_out,
        "grounding": total.to_dict(),
        "trust": {
            "false_refusals": round(refused / answered, 4) if answered else None,
            "refused_unanswerable": round(refused_unanswerable, 4) if refused_unanswerable is not None else None,
            "unanswerable_asked": options.unanswerable if config.retriever else 0,
            "contradictions_removed": contradicted,
            "unsupported_removed": unsupported,
        },
        "evidence_in_prompt": evidence,
        "latency_ms": {
            "p50": round(percentile(wall, 50), 1) if wall else None,
            "p95": round(percentile(wall, 95), 1) if wall else None,
            "mean": round(sum(wall) / answered, 1) if answered else None,
            "values": [round(v, 1) for v in wall],
        },
        "measured": {
            "seconds_per_question": round(mean_wall, 4) if mean_wall is not None else None,
            "cpu_seconds_per_question": round(sum(cpu) / answered, 4) if answered else None,
            "cost_per_1000": round(mean_wall * 1000 / 3600 * options.machine_price_per_hour, 5) if mean_wall is not None else None,
            "answer_tokens_mean": answer_tokens,
        },
        "examples": examples,
    }
