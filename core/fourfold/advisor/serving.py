"""What answering costs: per question, then per 1,000 questions and per day.

A question costs a search (query embedding + store lookup, measured) when the prompt
strategy retrieves, and a generation, as the generator describes it
(:class:`fourfold.GenerationWork`): a language model's prefill (reading the prompt) plus
decoding (writing the answer); nothing here for a model that runs elsewhere; else the
time per question the calibration measured for that generator. The prompt is built for
real by the manifest's prompt strategy from passages of the corpus and counted with the
generator's tokenizer; the answer length is an assumption (``--answer-tokens``, capped
by the generator's ``max_tokens``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fourfold.advisor.accelerator import Accelerator
from fourfold.advisor.costs import PER_1000, PER_DAY, CostLine, cost_line
from fourfold.advisor.figures import Figure, Input
from fourfold.advisor.profile import CorpusProfile
from fourfold.advisor.rates import Rates
from fourfold.advisor.resolve import ResolvedModel, cost_profile, resolve_model
from fourfold.sizing import GenerationWork, ModelShape

if TYPE_CHECKING:
    from fourfold.domain import Domain

__all__ = ["ServingPlan", "serving_per_question", "per_1000", "per_day", "SAMPLE_QUESTION", "DEFAULT_ANSWER_TOKENS", "REASONING_FACTOR"]

SAMPLE_QUESTION = "What should I know about this, and what should I do first?"
DEFAULT_ANSWER_TOKENS = 80
REASONING_FACTOR = 3.0  # step-by-step writes its reasoning before the answer: ~2 answers' worth more
_CHARS_PER_TOKEN = 4.0


@dataclass
class ServingPlan:
    """One way of answering: prompt strategy, retriever (or none) and generator."""

    prompt: str
    retriever: str | None
    generator: str
    prompt_config: Any = None
    generator_config: Any = None
    top_k: int = 5
    model: str | None = None  # the generator's model reference, for the label

    @property
    def label(self) -> str:
        parts = [self.prompt, self.retriever or "no retrieval", self.generator]
        if self.model and self.model != self.generator:
            parts[-1] = f"{self.generator} ({self.model})"
        return " + ".join(parts)

    def generation_work(self, domain: "Domain") -> GenerationWork:
        """The generator's cost description (:class:`NotSized` when it has none)."""
        work = cost_profile(domain.build("generator", self.generator, self.generator_config))
        self.model = self.model or work.model_ref
        return work


def _prompt_tokens(domain: "Domain", plan: ServingPlan, corpus: CorpusProfile, model: ResolvedModel | None, chat: bool, question: str) -> tuple[float, str]:
    """Tokens of the prompt the strategy builds for ``question`` with ``top_k`` passages
    of the corpus, in the generator's tokenizer when it exists."""
    from fourfold.types import Passage

    strategy = domain.build("prompt_strategy", plan.prompt, plan.prompt_config)
    passages = [Passage(c, 1.0) for c in corpus.sample_chunks[: plan.top_k]] if strategy.uses_retrieval else []
    prompt = strategy.build(question, passages, [])
    messages = [{"role": m.role, "content": m.content} for m in prompt.messages]
    chars = sum(len(m["content"]) for m in messages)
    if model is not None and model.folder is not None:
        try:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(str(model.folder))
            if getattr(tok, "chat_template", None) and chat:
                ids = tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
                ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
                return float(len(ids)), f"{plan.prompt} prompt with {len(passages)} corpus passages, counted with {model.ref}'s tokenizer"
            text = "\n\n".join(m["content"] for m in messages)
            return float(len(tok(text, add_special_tokens=False)["input_ids"])), f"{plan.prompt} prompt with {len(passages)} passages, {model.ref}'s tokenizer"
        except Exception:
            pass
    return chars / _CHARS_PER_TOKEN, f"{plan.prompt} prompt with {len(passages)} passages: {chars} characters / 4 (tokenizer not available)"


def serving_per_question(
    domain: "Domain",
    plan: ServingPlan,
    corpus: CorpusProfile,
    rates: Rates,
    acc: Accelerator,
    emb: ModelShape | None,
    *,
    answer_tokens: int = DEFAULT_ANSWER_TOKENS,
    question: str = SAMPLE_QUESTION,
) -> tuple[dict[str, Figure], Figure, Figure, dict[str, Figure]]:
    """``(parts of the time here, FLOPs, accelerator time, facts)`` for one question."""
    parts: dict[str, Figure] = {}
    facts: dict[str, Figure] = {}
    flops = 0.0
    acc_s = 0.0
    strategy_uses_retrieval = plan.retriever is not None
    if strategy_uses_retrieval:
        parts["search"] = rates.query_seconds()
        if emb is not None:
            q = emb.forward_flops_per_token(16, bidirectional=True) * 16
            flops += q
            acc_s += q / acc.effective_flops
    work = plan.generation_work(domain)
    if work.remote:
        facts["generator"] = Figure(None, "", note="a remote model: its cost is the provider's price, not estimated here")
        return parts, Figure(flops, "FLOPs", "retrieval only"), Figure(acc_s, "s", "FLOPs / (peak × MFU)"), facts
    if work.model is None and work.model_ref is None:
        parts["generate"] = rates.generator_seconds(plan.generator)
        formula = "query embedding"
        if emb is not None and work.embedded_tokens_per_question:
            # candidate sentences of ~40 tokens embedded per question
            g = work.embedded_tokens_per_question * emb.forward_flops_per_token(40, bidirectional=True)
            flops += g
            acc_s += g / acc.effective_flops
            formula += f" + embeddings of {work.embedded_tokens_per_question} tokens (sentences of ~40)"
        facts["generator"] = Figure(None, "", note=f"{plan.generator}: no language model; time per question as measured")
        return parts, Figure(flops, "FLOPs", formula), Figure(acc_s, "s", "FLOPs / (peak × MFU)"), facts
    if work.model is not None:
        model = ResolvedModel(plan.generator, work.model, Path(work.model_folder) if work.model_folder else None, True)
    else:
        model = resolve_model(domain, str(work.model_ref))
    shape = model.shape
    max_tokens = work.max_tokens or answer_tokens
    answer = float(min(answer_tokens, max_tokens))
    if plan.prompt == "step-by-step":
        answer = min(float(max_tokens), answer * REASONING_FACTOR)
    prompt_tokens, how = _prompt_tokens(domain, plan, corpus, model, work.chat, question)
    prefill_flops = prompt_tokens * shape.forward_flops_per_token(prompt_tokens)
    decode_flops = answer * shape.forward_flops_per_token(prompt_tokens + answer / 2)
    parts["read prompt"] = rates.prefill_seconds(prompt_tokens, prefill_flops, shape.compute_parameters)
    per_token = rates.decode_seconds_per_token(shape.compute_parameters)
    parts["write answer"] = Figure(answer * per_token.value, "s", "answer tokens × time per token",
                                   {"answer tokens": Input(answer, "tokens", f"assumption: {answer_tokens} (--answer-tokens), at most max_tokens {max_tokens}" + (", ×3 for step-by-step reasoning" if plan.prompt == "step-by-step" else "")),
                                    "time per token": Input(round(per_token.value, 5), "s", per_token.explain())})
    flops += prefill_flops + decode_flops
    # Decoding one token at batch 1 reads every weight: bound by memory bandwidth (bf16 weights).
    weight_read = shape.parameters * 2 / acc.memory_bandwidth
    decode_acc = answer * max(shape.forward_flops_per_token(prompt_tokens) / acc.effective_flops, weight_read)
    acc_s += prefill_flops / acc.effective_flops + decode_acc
    facts["prompt tokens"] = Figure(prompt_tokens, "tokens", note=how)
    facts["answer tokens"] = Figure(answer, "tokens", note="assumption")
    facts["generator parameters"] = Figure(shape.parameters, "parameters", note=model.note or shape.source)
    acc_fig = Figure(acc_s, "s", "prompt FLOPs / (peak × MFU) + answer tokens × max(FLOPs per token / (peak × MFU), bf16 weight bytes / memory bandwidth)",
                     {"answer tokens": Input(answer, "tokens", "assumption"), "weight read per token": Input(round(weight_read, 7), "s", f"{shape.parameters:,} × 2 bytes / {acc.memory_bandwidth / 1e12:.2f} TB/s"),
                      "batch": Input(1, "", "assumption: one question at a time (batching several divides the decode cost)")})
    return parts, Figure(flops, "FLOPs", "prompt tokens × (2·Nc + 2·L·P·d) + answer tokens × (2·Nc + 2·L·(P + A/2)·d)",
                         {"Nc": Input(shape.compute_parameters, "parameters", shape.source), "P": Input(round(prompt_tokens), "tokens", how), "A": Input(answer, "tokens", "assumption")}), acc_fig, facts


def per_1000(domain: "Domain", plan: ServingPlan, corpus: CorpusProfile, rates: Rates, acc: Accelerator, emb: ModelShape | None, *, answer_tokens: int, key: str = "serving") -> CostLine:
    parts, flops, acc_s, facts = serving_per_question(domain, plan, corpus, rates, acc, emb, answer_tokens=answer_tokens)
    per_q_here = sum(p.value or 0 for p in parts.values())
    facts["per question here"] = Figure(per_q_here, "s", "sum of the parts")
    facts["per question on the accelerator"] = acc_s
    scaled = {k: Figure((v.value or 0) * 1000, "s", f"1,000 × ({v.formula or 'measured'})", {"per question": Input(v.value, "s", v.explain())}) for k, v in parts.items()}
    total_flops = Figure((flops.value or 0) * 1000, "FLOPs", f"1,000 × ({flops.formula})", flops.inputs)
    acc_total = Figure((acc_s.value or 0) * 1000, "s", f"1,000 × ({acc_s.formula})", acc_s.inputs)
    return cost_line(key, PER_1000, f"answer 1,000 questions: {plan.label}", total_flops, scaled, acc, accelerator=acc_total, facts=facts)


def per_day(line: CostLine, questions_per_day: float, acc: Accelerator) -> CostLine:
    """Serving ``questions_per_day`` at the per-1,000 rate of ``line``."""
    k = questions_per_day / 1000
    q = Input(questions_per_day, "questions/day", "flag --questions-per-day")
    parts = {"answers": Figure((line.here.value or 0) * k, "s", "questions per day / 1,000 × time per 1,000", {"questions": q, "per 1,000": Input(line.here.value, "s", "above")})}
    flops = Figure((line.flops.value or 0) * k, "FLOPs", "questions per day / 1,000 × FLOPs per 1,000")
    acc_time = Figure((line.accelerator.value or 0) * k, "s", "questions per day / 1,000 × accelerator time per 1,000")
    share = Figure(parts["answers"].value / 86400 * 100, "%", "time here / 86,400 s", note="share of this machine's day spent answering (one answer at a time)")
    how = line.what.split(": ", 1)[1] if ": " in line.what else line.what
    return cost_line(f"{line.key}-per-day", PER_DAY, f"answer {questions_per_day:,.0f} questions a day: {how}", flops, parts, acc, accelerator=acc_time, facts={"machine busy": share})

