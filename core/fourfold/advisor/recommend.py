"""The recommendation: a combination of methods, and the reasons for each choice, each
reason quoting the figures it rests on.

The rules, in order of how much they decide:

1. Knowledge that changes is kept fresh by retrieval: a refresh costs in proportion to
   the change, while a trained or fine-tuned model learns new text only by being
   trained again. Retrieval also gives citations, so answers can be checked.
2. Training from scratch pays only with a corpus near the compute-optimal ~20 tokens
   per parameter (Hoffmann et al. 2022); smaller corpora teach a model wording, not
   facts. The cost of a 124M-parameter model is stated either way.
3. Fine-tuning (LoRA) is for answer style and format, from instruction pairs, when it
   is cheap enough to redo; it is not a way to add facts that change.
4. The generator follows the question volume: if a language model would keep this
   machine busier than half the day, the extractive generator (or an accelerator) is
   recommended.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fourfold.advisor.costs import CostLine
from fourfold.advisor.figures import human_money, human_number, human_seconds
from fourfold.advisor.stages import TOKENS_PER_PARAMETER

if TYPE_CHECKING:
    from fourfold.advisor.advise import Advice
    from fourfold.advisor.serving import ServingPlan
    from fourfold.domain import Domain

__all__ = ["recommend", "BUSY_LIMIT_PERCENT", "FINE_TUNE_HOURS_LIMIT"]

BUSY_LIMIT_PERCENT = 50.0
FINE_TUNE_HOURS_LIMIT = 1.0


def _here(line: CostLine | None) -> str:
    return human_seconds(line.here.value) if line and line.here.value is not None else "n/a"


def _acc(line: CostLine | None, advice: "Advice") -> str:
    if line is None or line.accelerator.value is None:
        return "n/a"
    return f"{human_seconds(line.accelerator.value)} on an {advice.accelerator.name} ({human_money(line.cost.value or 0)})"


def recommend(domain: "Domain", advice: "Advice", plan: "ServingPlan") -> dict[str, Any]:
    m = domain.manifest
    corpus = advice.corpus
    docs_per_day = advice.changes.documents_per_day.value or 0.0
    reasons: list[dict[str, str]] = []
    chosen: dict[str, str] = {}

    def reason(topic: str, text: str) -> None:
        reasons.append({"topic": topic, "text": text})

    # 1. retrieval -------------------------------------------------------------------------
    build, refresh = advice.line("index-build"), advice.line("refresh")
    chosen["retrieval"] = m.retrieval.use
    retrain = advice.line("fine-tune-lora-retrain") or advice.line("fine_tuning[0]-retrain") or advice.line("training-retrain")
    cadence = "daily" if docs_per_day >= 1 else ("weekly or more often" if docs_per_day * 7 >= 1 else "rarely")
    text = (
        f"Knowledge changes {cadence} ({docs_per_day:.3g} documents/day, {advice.changes.source}). "
        f"Indexing all {corpus.documents:,} documents ({human_number(corpus.tokens)} tokens) costs {_here(build)} here once; "
        f"keeping it fresh costs {_here(refresh)} of this machine per day, because a refresh embeds only what changed."
    )
    if retrain is not None and retrain.here.value:
        base = advice.line(retrain.key[: -len("-retrain")])
        what = base.what if base is not None else retrain.key
        text += f" Teaching the same changes to a model instead, by running {what} again, would cost {_here(retrain)} per day here."
    if docs_per_day >= 1:
        text += " Knowledge that changes daily favours retrieval."
    text += " Retrieval also lets every answer cite the passage it comes from."
    reason("retrieval", text)

    # 2. prompt -----------------------------------------------------------------------------
    serving = advice.line("serving")
    plain = advice.line("serving-plain")
    step = advice.line("serving-step-by-step")
    retrieval_prompts = ("grounded-citations", "few-shot", "step-by-step")
    chosen["prompt"] = m.prompt.use if m.prompt.use in retrieval_prompts else "grounded-citations"
    text = f"'{chosen['prompt']}' answers only from the retrieved passages and cites them; 1,000 answers cost {_here(serving)} here."
    if plain is not None:
        text += f" The 'plain' prompt (no retrieval) costs {_here(plain)} per 1,000 but answers from the model's memory, without sources."
    if step is not None and serving is not None and step.here.value and serving.here.value:
        text += (f" 'step-by-step' writes its reasoning first: {_here(step)} per 1,000 "
                 f"({step.here.value / serving.here.value:.2g}× the time); worth it only with a generator large enough to reason.")
    reason("prompt", text)

    # 3. generator --------------------------------------------------------------------------
    chosen["generator"] = plan.generator
    q = advice.questions_per_day.value if advice.questions_per_day else None
    extractive = advice.line("serving-extractive") if plan.generator != "extractive" else serving
    if plan.generator != "extractive" and serving is not None:
        busy = serving.here.value * (q or 0) / 1000 / 86400 * 100 if q else None
        if busy is not None and busy > BUSY_LIMIT_PERCENT and extractive is not None:
            chosen["generator"] = "extractive"
            reason("generator", f"At {q:,.0f} questions/day, '{plan.generator}' would keep this machine busy {busy:.0f}% of the day "
                                f"({_here(serving)} per 1,000 answers); 'extractive' needs {_here(extractive)} per 1,000. "
                                f"Keep '{plan.generator}' only on an accelerator: {_acc(serving, advice)} per 1,000.")
        else:
            load = f" At {q:,.0f} questions/day it keeps this machine busy {busy:.1f}% of the day." if busy is not None else " Pass --questions-per-day to check capacity."
            alt = f"; 'extractive' would need {_here(extractive)} (quotes only, no language model)" if extractive is not None else ""
            reason("generator", f"'{plan.generator}' writes fluent answers: {_here(serving)} per 1,000 here{alt}.{load}")
    else:
        lm = advice.line("serving-smollm2")
        alt = f"; 'smollm2' would need {_here(lm)} per 1,000 for fluent answers" if lm is not None else ""
        reason("generator", f"'extractive' quotes the retrieved sentences with citations: {_here(serving)} per 1,000 answers here{alt}.")

    # 4. fine-tuning -----------------------------------------------------------------------
    tuned = [line for line in advice.combination.lines if line.key.startswith("fine_tuning[")]
    if tuned:
        parts = []
        keep = []
        blocks = {f"fine_tuning[{i}]": block for i, block in enumerate(m.fine_tuning)}
        for line in tuned:
            block, work = blocks[line.key], advice.works.get(line.key)
            hours = (line.here.value or 0) / 3600
            data = work.examples_file.name if work is not None and work.examples_file else None
            cheap = hours <= FINE_TUNE_HOURS_LIMIT
            method = work.method if work is not None else None
            if method == "fine-tune" and data and cheap:
                keep.append(block.use)
                parts.append(f"{line.what}: {_here(line)} here, {_acc(line, advice)}; it teaches answer style from {data}, not facts.")
            elif method == "contrastive" and cheap:
                keep.append(block.use)
                parts.append(f"{line.what}: {_here(line)} here; a domain-tuned embedder is the lever for retrieval quality (check it with fourfold eval compare).")
            else:
                why = "pairs derived from the knowledge teach wording that retrieval already supplies" if not data else f"it takes more than {FINE_TUNE_HOURS_LIMIT:g} h here"
                parts.append(f"{line.what}: {_here(line)} here, {_acc(line, advice)}; skip it or run it on an accelerator: {why}.")
        chosen["fine_tuning"] = ", ".join(keep) or "none"
        again = next((x for x in advice.methods if x.key == "fine-tuning"), None)
        redo = again.line(f"{tuned[0].key}-retrain") if again else None
        tail = f" Redoing it as knowledge changes would cost {_here(redo)} per day here." if redo is not None and redo.here.value else ""
        reason("fine-tuning", " ".join(parts) + tail)
    else:
        lora = advice.line("fine-tune-lora")
        chosen["fine_tuning"] = "none"
        reason("fine-tuning", "No fine-tuning: retrieval supplies the facts. "
               + (f"If answers need a house style, {lora.what} would cost {_here(lora)} here ({_acc(lora, advice)}); "
                  "give it instruction/response pairs written in that style." if lora is not None else ""))

    # 5. training from scratch ---------------------------------------------------------------
    ref = advice.line("training-125m")
    own = advice.line("training")
    needed = ref.facts["tokens needed"].value if ref else 0
    shortfall = needed / max(corpus.tokens, 1)
    chosen["training"] = "none"
    text = (f"Training from scratch is not recommended: a {ref.facts['parameters'].value / 1e6:.0f}M-parameter model trained compute-optimally "
            f"({TOKENS_PER_PARAMETER} tokens per parameter) needs {human_number(needed)} tokens and costs {_acc(ref, advice)} "
            f"— {_here(ref)} on this machine; this corpus has {human_number(corpus.tokens)} tokens ({shortfall:,.0f}× too few)." if ref else "")
    if own is not None:
        epochs = own.facts.get("epochs")
        text += (f" The manifest's own model ({own.what}) costs {_here(own)} here"
                 + (f" and repeats the corpus {epochs.value:.3g} times" if epochs and epochs.value else "")
                 + "; expect it to learn the corpus' wording, not to answer reliably: keep it as an experiment, with retrieval carrying the facts.")
        if shortfall < 1:
            chosen["training"] = m.training.use if m.training else "none"
    reason("training", text)

    label = f"{chosen['retrieval']} retrieval + {chosen['prompt']} + {chosen['generator']}"
    if chosen["fine_tuning"] != "none":
        label += f" + {chosen['fine_tuning']}"
    if chosen["training"] != "none":
        label += f" + {chosen['training']}"
    manifest_choice = {
        "retrieval": m.retrieval.use,
        "prompt": m.prompt.use,
        "generator": m.generation.use,
        "fine_tuning": ", ".join(b.use for b in m.fine_tuning) or "none",
        "training": m.training.use if m.training else "none",
    }
    differs = [f"{k}: manifest '{manifest_choice[k]}' → recommended '{v}'" for k, v in chosen.items() if manifest_choice.get(k) != v]
    return {"combination": chosen, "label": label, "reasons": reasons, "differs_from_manifest": differs, "manifest": manifest_choice}
