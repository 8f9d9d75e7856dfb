"""``fourfold advise``: the costs of each method for one domain, the costs of the
manifest's own combination, and a recommended combination with its reasons."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

from fourfold.advisor.accelerator import Accelerator, accelerator as accelerator_preset
from fourfold.advisor.calibration import calibration_file, load_calibration
from fourfold.advisor.costs import ONE_TIME, PER_1000, PER_DAY, CostLine, MethodCosts
from fourfold.advisor.figures import Figure, Input
from fourfold.advisor.profile import ChangeProfile, CorpusProfile, profile_changes, profile_corpus
from fourfold.advisor.rates import Rates
from fourfold.advisor.recommend import recommend
from fourfold.advisor.resolve import NotSized, block_config, cost_profile, resolve_model
from fourfold.advisor.serving import DEFAULT_ANSWER_TOKENS, ServingPlan, per_1000, per_day
from fourfold.advisor import stages
from fourfold.components import RetrieverConfig
from fourfold.errors import FourfoldError
from fourfold.sizing import ModelShape, TrainingWork

if TYPE_CHECKING:
    from fourfold.domain import Domain

__all__ = ["Advice", "AdviseOptions", "advise", "manifest_plan"]


@dataclass
class AdviseOptions:
    """What the advisor is told besides the manifest.

    :ivar changes_per_day: documents added, changed or removed per day (None: from the
        refresh history, else an assumed 1% of the documents).
    :ivar questions_per_day: question volume (None: only per-1,000 figures).
    :ivar answer_tokens: assumed answer length of a language-model generator.
    """

    changes_per_day: float | None = None
    questions_per_day: float | None = None
    answer_tokens: int = DEFAULT_ANSWER_TOKENS
    accelerator: Accelerator = field(default_factory=accelerator_preset)


@dataclass
class Advice:
    domain: str
    manifest: str
    created: str
    machine: dict[str, Any]
    calibration: dict[str, Any]
    accelerator: Accelerator
    corpus: CorpusProfile
    changes: ChangeProfile
    questions_per_day: Figure | None
    methods: list[MethodCosts]
    combination: MethodCosts
    totals: dict[str, dict[str, Figure]]
    recommendation: dict[str, Any]
    took_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    retrieval_quality: dict[str, Any] | None = None  # the published version's score on knowledge.eval
    unsized: list[str] = field(default_factory=list)  # components that cannot be sized, and why
    works: dict[str, TrainingWork] = field(default_factory=dict, repr=False)  # cost line key → the run it sizes

    def line(self, key: str) -> CostLine | None:
        """The cost line ``key`` of the manifest's combination (``index-build``, ``training``,
        ``fine_tuning[0]``, ``refresh``, ``serving``…), else of any method."""
        found = self.combination.line(key)
        if found is not None:
            return found
        for method in self.methods:
            found = method.line(key)
            if found is not None:
                return found
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "advice",
            "domain": self.domain,
            "manifest": self.manifest,
            "created": self.created,
            "took_s": round(self.took_s, 2),
            "machine": self.machine,
            "calibration": self.calibration,
            "accelerator": self.accelerator.to_dict(),
            "corpus": self.corpus.to_dict(),
            "changes": self.changes.to_dict(),
            "questions_per_day": self.questions_per_day.to_dict() if self.questions_per_day else None,
            "methods": [m.to_dict() for m in self.methods],
            "combination": self.combination.to_dict(),
            "totals": {phase: {k: v.to_dict() for k, v in figs.items()} for phase, figs in self.totals.items()},
            "recommendation": self.recommendation,
            "notes": list(self.notes),
            "retrieval_quality": self.retrieval_quality,
            "cannot_be_sized": list(self.unsized),
        }


def manifest_plan(domain: "Domain") -> ServingPlan:
    """How the manifest answers: its prompt strategy, retriever (if the strategy
    retrieves) and generator, with their configurations."""
    m = domain.manifest
    uses_retrieval = bool(domain.prompt_strategy.uses_retrieval)
    retrieval_config = block_config(domain, m.retrieval)  # a RetrieverConfig: top_k is part of the API
    return ServingPlan(
        prompt=m.prompt.use,
        retriever=m.retrieval.use if uses_retrieval else None,
        generator=m.generation.use,
        prompt_config=block_config(domain, m.prompt),
        generator_config=block_config(domain, m.generation),
        top_k=retrieval_config.top_k if isinstance(retrieval_config, RetrieverConfig) else 5,
    )


def _sum(lines: list[CostLine], phase: str) -> dict[str, Figure]:
    chosen = [line for line in lines if line.phase == phase]

    def total(attr: str, unit: str) -> Figure:
        values = {line.key: getattr(line, attr) for line in chosen}
        return Figure(sum(v.value or 0 for v in values.values()), unit, " + ".join(values) or "nothing",
                      {k: Input(v.value, unit, v.formula or "") for k, v in values.items()})

    return {"flops": total("flops", "FLOPs"), "here": total("here", "s"), "accelerator": total("accelerator", "s"), "cost": total("cost", "$")}


def retrieval_quality(domain: "Domain", notes: list[str]) -> dict[str, Any] | None:
    """What the published version scored on the domain's evaluation questions when it
    was built (``quality.json``; nothing is searched here)."""
    from fourfold.index.quality import published_quality

    if domain.manifest.knowledge is None or not domain.manifest.knowledge.eval:
        return None
    found = published_quality(domain)
    if found is None:
        notes.append("retrieval quality: the published version has no score on knowledge.eval; run 'fourfold eval retrieval MANIFEST'")
        return None
    q = found.quality
    return {"version": q.version, "retriever": q.retriever, "embedder": q.embedder, "ndcg_at_10": q.ndcg_at_10,
            "questions": len(q.questions), "eval": domain.manifest.knowledge.eval}


def advise(
    domain: "Domain",
    options: AdviseOptions | None = None,
    *,
    calibration: dict[str, Any] | None = None,
    log: Callable[[str], None] | None = None,
) -> Advice:
    """Estimate every method's costs for ``domain`` and recommend a combination.

    :param calibration: the calibration record (default: the stored one).
    :raises FourfoldError: no calibration, or the domain has no knowledge to profile.
    """
    started = time.perf_counter()
    options = options or AdviseOptions()
    acc = options.accelerator
    calibration = calibration or load_calibration(domain.settings)
    if calibration is None:
        raise FourfoldError(f"no calibration at {calibration_file(domain.settings)}: run 'fourfold calibrate' first (under a minute)")
    rates = Rates(calibration)
    log = log or (lambda _line: None)
    m = domain.manifest
    notes: list[str] = []
    unsized: list[str] = []
    works: dict[str, TrainingWork] = {}

    def not_sized(exc: NotSized, where: str) -> None:
        """A component that cannot be sized is said so, never left out in silence."""
        unsized.append(f"{where}: {exc}")
        notes.append(f"{where}: {exc}")

    try:
        emb_work = cost_profile(domain.embedder)
    except NotSized as exc:
        emb_work = None
        not_sized(exc, "embedding (FLOPs unknown, batches of 32 assumed)")
    emb: ModelShape | None = emb_work.model if emb_work else None
    corpus = profile_corpus(domain, batch_size=emb_work.batch_size if emb_work else 32)
    log(f"corpus read in {time.perf_counter() - started:.1f} s")
    changes = profile_changes(domain, corpus, changes_per_day=options.changes_per_day)
    plan = manifest_plan(domain)
    answer_tokens = options.answer_tokens

    # -- retrieval ----------------------------------------------------------------------------
    build = stages.index_build(corpus, rates, acc, emb)
    refresh = stages.refresh_per_day(corpus, changes, rates, acc, emb)
    retrieval = MethodCosts("retrieval", "Retrieval (RAG)", f"{m.retrieval.use} over {m.embedding.use}", plan.retriever is not None, [build, refresh])

    # -- prompting and generation ---------------------------------------------------------
    serving_lines: dict[str, CostLine] = {}

    def serve(key: str, p: ServingPlan) -> CostLine | None:
        try:
            line = per_1000(domain, p, corpus, rates, acc, emb, answer_tokens=answer_tokens, key=key)
        except NotSized as exc:
            not_sized(exc, p.label)
            return None
        except FourfoldError as exc:
            notes.append(f"{p.label}: not estimated ({exc})")
            return None
        serving_lines[key] = line
        return line

    manifest_serving = serve("serving", plan)
    try:
        gen_work = plan.generation_work(domain)
        runs_a_model = gen_work.model is not None or gen_work.model_ref is not None
    except NotSized:
        runs_a_model = False  # reported by serve() above
    prompting = MethodCosts("prompting", "Prompt engineering", plan.prompt, True)
    if manifest_serving:
        prompting.lines.append(manifest_serving)
    if plan.prompt != "plain" and domain.host.get("prompt_strategy", "plain") and runs_a_model:
        line = serve("serving-plain", ServingPlan("plain", None, plan.generator, None, plan.generator_config, plan.top_k, plan.model))
        if line:
            prompting.lines.append(line)
    if plan.prompt != "step-by-step" and domain.host.get("prompt_strategy", "step-by-step") and runs_a_model:
        line = serve("serving-step-by-step", ServingPlan("step-by-step", plan.retriever or m.retrieval.use, plan.generator, None, plan.generator_config, plan.top_k, plan.model))
        if line:
            prompting.lines.append(line)
    prompting.notes.append("prompt strategies cost nothing up front; they differ in prompt length (retrieved passages) and answer length (reasoning)")

    # Other generators: those the calibration timed that need no configuration.
    generation = MethodCosts("generation", "Generator", plan.generator, True)
    for name in rates.generators:
        spec = domain.host.get("generator", name)
        if name == plan.generator or spec is None:
            continue
        try:
            config = spec.cls.Config()
        except ValueError:
            continue
        line = serve(f"serving-{name}", ServingPlan(plan.prompt if plan.retriever else "grounded-citations", plan.retriever or m.retrieval.use, name, None, config, plan.top_k))
        if line:
            generation.lines.append(line)
    if manifest_serving:
        generation.lines.insert(0, manifest_serving)

    # -- training and fine-tuning: each run as its component describes it ----------------------
    def run_line(block, key: str) -> CostLine | None:
        try:
            component = domain.component(block)
            work = cost_profile(component)
            base = resolve_model(domain, work.base_model) if work.base_model else None
            line = stages.training_run(component.name, work, base, corpus, rates, acc, emb, key=key)
        except NotSized as exc:
            not_sized(exc, key)
            return None
        except FourfoldError as exc:
            notes.append(f"{key}: not estimated ({exc})")
            return None
        works[key] = work
        return line

    training = MethodCosts("training", "Training from scratch", m.training.use if m.training else "none in the manifest", m.training is not None)
    combination_lines: list[CostLine] = []
    if m.training is not None:
        line = run_line(m.training, "training")
        if line is not None:
            training.lines.append(line)
            combination_lines.append(line)
            training.lines.append(stages.retrain_per_day(line, changes, acc, key="training-retrain"))
    reference = stages.reference_training(corpus, rates, acc)
    training.lines.append(reference)
    training.lines.append(stages.retrain_per_day(reference, changes, acc, key="training-125m-retrain"))

    fine_tuning = MethodCosts("fine-tuning", "Fine-tuning", ", ".join(b.use for b in m.fine_tuning) or "none in the manifest", bool(m.fine_tuning))
    for i, block in enumerate(m.fine_tuning):
        line = run_line(block, f"fine_tuning[{i}]")
        if line is not None:
            fine_tuning.lines.append(line)
            combination_lines.append(line)
    if not m.fine_tuning:
        # What the registered causal-LM fine-tuners would cost with their defaults.
        for name, spec in domain.host.components("fine_tuner").items():
            if spec.cls.produces != "causal-lm":
                continue
            try:
                tuner = domain.build("fine_tuner", name, spec.cls.Config())
                work = cost_profile(tuner)
                if not work.base_model:
                    continue
                base = resolve_model(domain, work.base_model)
                line = stages.training_run(name, work, base, corpus, rates, acc, emb, key=f"fine-tune-{name}")
            except (ValueError, FourfoldError) as exc:  # defaults that need settings, or no description: not an option here
                notes.append(f"fine-tuning with '{name}': not estimated ({exc})")
                continue
            line.what += " (defaults, pairs derived from the knowledge)"
            works[line.key] = work
            fine_tuning.lines.append(line)
    for line in [x for x in fine_tuning.lines if x.phase == ONE_TIME]:
        fine_tuning.lines.append(stages.retrain_per_day(line, changes, acc, key=f"{line.key}-retrain"))

    # -- the manifest's combination -------------------------------------------------------
    combination_lines += [build, refresh]
    if manifest_serving:
        combination_lines.append(manifest_serving)
    questions = None
    if options.questions_per_day is not None:
        questions = Figure(options.questions_per_day, "questions/day", "given", {"questions": Input(options.questions_per_day, "per day", "flag --questions-per-day")})
        for key, line in list(serving_lines.items()):
            day = per_day(line, options.questions_per_day, acc)
            if line is manifest_serving:
                combination_lines.append(day)
            for method in (prompting, generation):
                if line in method.lines:
                    method.lines.append(day)
    combination = MethodCosts("combination", "This manifest", plan.label + (" + training" if m.training else "") + (" + fine-tuning" if m.fine_tuning else ""), True, combination_lines)
    totals = {phase: _sum(combination_lines, phase) for phase in (ONE_TIME, PER_DAY, PER_1000)}
    methods = [retrieval, prompting, generation, fine_tuning, training]
    advice = Advice(
        domain=domain.name,
        manifest=str(m.path),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        machine={**(calibration.get("machine") or {}), "label": rates.label},
        calibration={"created": calibration.get("created"), "quick": calibration.get("quick"), "duration_s": calibration.get("duration_s"),
                     "skipped": calibration.get("skipped") or {}},
        accelerator=acc,
        corpus=corpus,
        changes=changes,
        questions_per_day=questions,
        methods=methods,
        combination=combination,
        totals=totals,
        recommendation={},
        notes=notes,
        retrieval_quality=retrieval_quality(domain, notes),
        unsized=unsized,
        works=works,
    )
    advice.recommendation = recommend(domain, advice, plan)
    advice.took_s = time.perf_counter() - started
    return advice
