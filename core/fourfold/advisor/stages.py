"""One-time and recurring costs of the stages that build a domain: indexing, refreshing,
training and fine-tuning. Each returns a :class:`CostLine` whose wall time here is a sum
of parts, each part with its derivation. A training or fine-tuning run is sized from the
component's own description (:class:`fourfold.TrainingWork`), by its method:
``pretrain``, ``fine-tune`` (LoRA when it has an adapter rank) or ``contrastive``."""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fourfold.advisor.accelerator import Accelerator
from fourfold.advisor.costs import ONE_TIME, PER_DAY, CostLine, cost_line
from fourfold.advisor.figures import Figure, Input
from fourfold.advisor.profile import ChangeProfile, CorpusProfile
from fourfold.advisor.rates import Rates
from fourfold.advisor.resolve import ResolvedModel
from fourfold.errors import FourfoldError
from fourfold.sizing import ModelShape, TrainingWork

__all__ = [
    "index_build",
    "refresh_per_day",
    "training_run",
    "reference_training",
    "retrain_per_day",
    "FineTuneData",
    "fine_tune_data",
    "REFERENCE_MODEL",
    "TOKENS_PER_PARAMETER",
]

TOKENS_PER_PARAMETER = 20  # compute-optimal data for a model (Hoffmann et al. 2022)
REFERENCE_MODEL = {"vocab": 50257, "width": 768, "layers": 12, "context": 1024, "heads": 12}  # GPT-2 small, 124M
_FAMILIES = {"gpt2": "GPT-2", "llama": "Llama-style model", "bert": "BERT-style encoder"}


def _f(value: float, unit: str, formula: str, **inputs: Input) -> Figure:
    return Figure(value, unit, formula, dict(inputs))


# -------------------------------------------------------------------------
# retrieval
# -------------------------------------------------------------------------


def index_build(corpus: CorpusProfile, rates: Rates, acc: Accelerator, emb: ModelShape | None) -> CostLine:
    """A full build of the index: read and chunk every file (measured), load the embedder,
    embed every chunk, write and optimise the store."""
    tokens_per_chunk = corpus.embedded_tokens / max(corpus.chunks, 1)
    parts = {
        "load and chunk": _f(corpus.load_s, "s", "measured by reading the corpus" + (" (sample, scaled)" if corpus.sampled else "")),
        "embedder load": rates.embedder_load(),
        "embed": rates.embed_seconds(corpus.padded_tokens),
        "write": rates.store_write_seconds(corpus.chunks),
    }
    flops = _embed_flops(corpus.embedded_tokens, tokens_per_chunk, emb)
    return cost_line("index-build", ONE_TIME, f"index {corpus.documents:,} documents ({corpus.chunks:,} chunks)", flops, parts, acc,
                     facts={"chunks": Figure(corpus.chunks, "chunks"), "embedded tokens": Figure(corpus.embedded_tokens, "tokens")})


def _embed_flops(tokens: float, tokens_per_text: float, emb: ModelShape | None) -> Figure:
    if emb is None:
        return Figure(None, "FLOPs", note="the embedder does not expose its model; FLOPs unknown")
    per_token = emb.forward_flops_per_token(tokens_per_text, bidirectional=True)
    return Figure(tokens * per_token, "FLOPs", "tokens × (2·Nc + 4·L·T·d)",
                  {"tokens": Input(round(tokens), "tokens", "embedded"), "Nc": Input(emb.compute_parameters, "parameters", emb.source),
                   "L": Input(emb.layers, "layers", "embedder"), "T": Input(round(tokens_per_text), "tokens", "mean per text"), "d": Input(emb.width, "", "embedder width")})


def refresh_per_day(corpus: CorpusProfile, changes: ChangeProfile, rates: Rates, acc: Accelerator, emb: ModelShape | None) -> CostLine:
    """A day of background refreshes: every refresh lists and hashes the files (a refresh
    with no change costs only that); changed documents are read, chunked, embedded and
    written — a refresh is proportional to the change, not to the corpus."""
    docs = changes.documents_per_day.value or 0.0
    per_day = changes.refreshes_per_day.value or 0.0
    chunks_per_doc = corpus.chunks / max(corpus.documents, 1)
    chunks = changes.chunks_per_day.value if changes.chunks_per_day is not None else docs * chunks_per_doc
    tokens_per_chunk = corpus.embedded_tokens / max(corpus.chunks, 1)
    publishing = min(per_day, docs) if docs else 0.0
    store = rates.data.get("store") or {}
    parts = {
        "scan and hash": _f(per_day * corpus.scan_s, "s", "refreshes × scan time",
                            refreshes=Input(round(per_day, 3), "per day", changes.refreshes_per_day.formula), scan=Input(round(corpus.scan_s, 4), "s", "measured")),
        "load and chunk": _f(docs * corpus.load_s / max(corpus.documents, 1), "s", "changed documents × load time per document",
                             documents=Input(round(docs, 3), "per day", changes.source), load=Input(round(corpus.load_s / max(corpus.documents, 1), 4), "s/document", "measured")),
        "embed": rates.embed_seconds(chunks * corpus.padded_tokens / max(corpus.chunks, 1)),
        "write": _f(publishing * (store.get("commit_s", 0) + store.get("open_s", 0)) + chunks / max(store.get("points_per_s", 1e9), 1e-9), "s",
                    "publishing refreshes × (commit + open) + chunks / write rate",
                    publishing=Input(round(publishing, 3), "per day", "min(refreshes, changed documents)"),
                    chunks=Input(round(chunks, 2), "per day", changes.source)),
    }
    flops = _embed_flops(chunks * tokens_per_chunk, tokens_per_chunk, emb)
    what = f"{per_day:.3g} scheduled refreshes, {docs:.3g} documents changed ({changes.source})"
    return cost_line("refresh", PER_DAY, what, flops, parts, acc,
                     facts={"changed documents": changes.documents_per_day, "refreshes": changes.refreshes_per_day})


# -------------------------------------------------------------------------
# training and fine-tuning
# -------------------------------------------------------------------------


def _steps_within(steps: int | None, minutes: float | None, step_s: float) -> tuple[int, str]:
    limit = steps if steps else 10**12
    if minutes:
        # the time-budget callback stops after the step that crosses the budget
        by_time = max(1, math.ceil(minutes * 60 / max(step_s, 1e-9)))
        if by_time < limit:
            return by_time, f"time budget {minutes:g} min / step time"
    return int(limit), "configured steps"


def training_run(
    name: str, work: TrainingWork, base: ResolvedModel | None, corpus: CorpusProfile, rates: Rates, acc: Accelerator,
    emb: ModelShape | None, *, key: str,
) -> CostLine:
    """One run of trainer or fine-tuner ``name`` as ``work`` describes it; ``base`` is its
    resolved ``base_model`` (None when it has none)."""
    if work.method == "pretrain":
        return _pretrain(name, work, base, corpus, rates, acc, key=key)
    if work.method == "contrastive":
        return _contrastive(work, base, corpus, rates, acc, emb, key=key)
    if base is None:
        raise FourfoldError(f"{name}: a fine-tune run needs a base model to size, and it names none")
    return _fine_tune(name, work, base, corpus, rates, acc, key=key)


def _pretrain(name: str, c: TrainingWork, base: ResolvedModel | None, corpus: CorpusProfile, rates: Rates, acc: Accelerator, *, key: str) -> CostLine:
    """A causal LM trained on the domain's text packed into sequences: tokenizer, model,
    evaluation before and after, steps (or a time budget), checkpoints."""
    shape = c.model or (base.shape if base else None)
    if shape is None:
        raise FourfoldError(f"{name}: its cost description names neither a model nor a base model")
    context = c.sequence_tokens
    corpus_tokens = corpus.tokens + corpus.documents  # one end-of-text token per document
    blocks = max(corpus_tokens // context, 2)
    every = max(2, round(1 / c.held_out_fraction))
    held = min(c.max_held_out, max(1, (blocks - every // 2 + every - 1) // every))
    train_tokens = (blocks - held) * context
    tokens_step = c.batch_size * context
    flops_step = tokens_step * shape.training_flops_per_token(context)
    step = rates.train_step_seconds(flops_step, shape.compute_parameters)
    steps, why = _steps_within(c.steps, c.max_minutes, step.value)
    data = steps * tokens_step
    eval_flops = 2 * held * context * shape.forward_flops_per_token(context)
    parts = {
        "load knowledge": Figure(corpus.load_s, "s", "measured by reading the corpus"),
        "import libraries": rates.import_seconds(),
        "set-up": rates.setup_seconds("pretrain"),
        "evaluate before/after": rates.forward_seconds(eval_flops, shape.compute_parameters),
        "train": Figure(steps * step.value, "s", "steps × step time", {"steps": Input(steps, "steps", why), "step time": Input(step.value, "s", step.explain())}),
        "checkpoints": _scaled(rates.write_seconds(shape.parameters * 4 * 3), steps // c.save_every if c.save_every else 0, "checkpoints (weights + Adam state)"),
    }
    flops = Figure(data * shape.training_flops_per_token(context) + eval_flops, "FLOPs", "D × (6·Nc + 6·L·T·d) + evaluation",
                   {"D": Input(data, "tokens", f"{steps} steps × {c.batch_size} × {context} tokens"), "Nc": Input(shape.compute_parameters, "parameters", shape.source),
                    "L": Input(shape.layers, "", name), "T": Input(context, "tokens", name), "d": Input(shape.width, "", name)})
    facts = {
        "parameters": Figure(shape.parameters, "parameters", "as described by " + name, note=shape.source),
        "tokens trained": Figure(data, "tokens", "steps × batch × context"),
        "epochs": Figure(data / max(train_tokens, 1), "", "tokens trained / corpus tokens", {"corpus tokens": Input(train_tokens, "tokens", "embedder-tokenizer count, less held-out blocks")}),
        "tokens/s": Figure(tokens_step / step.value, "tokens/s", "tokens per step / step time"),
        "steps": Figure(steps, "steps", why),
    }
    family = _FAMILIES.get(shape.family, "model")
    what = f"train a {shape.parameters / 1e6:.3g}M-parameter {family} from scratch ({steps:,} steps, {data:,} tokens)"
    return cost_line(key, ONE_TIME, what, flops, parts, acc, facts=facts)


def reference_training(corpus: CorpusProfile, rates: Rates, acc: Accelerator) -> CostLine:
    """A 124M-parameter GPT-2 trained compute-optimally: 20 tokens per parameter."""
    r = REFERENCE_MODEL
    shape = ModelShape.gpt2(vocab=r["vocab"], width=r["width"], layers=r["layers"], context=r["context"], heads=r["heads"], source="GPT-2 small")
    data = TOKENS_PER_PARAMETER * shape.parameters
    per_token = shape.training_flops_per_token(r["context"])
    f = rates.train_flops_rate(shape.compute_parameters)
    flops = Figure(data * per_token, "FLOPs", "6·N·D (+ attention: 6·L·T·d per token)",
                   {"N": Input(shape.parameters, "parameters", "GPT-2 small"), "D": Input(data, "tokens", f"{TOKENS_PER_PARAMETER} tokens per parameter (Hoffmann et al. 2022)"),
                    "T": Input(r["context"], "tokens", "context")})
    parts = {"train": Figure(flops.value / f.value, "s", "FLOPs / F(Nc)", {"FLOPs": Input(flops.value, "FLOPs", "above"), "F(Nc)": Input(round(f.value), "FLOP/s", f.formula)}, note=f.note)}
    facts = {
        "parameters": Figure(shape.parameters, "parameters"),
        "tokens needed": Figure(data, "tokens"),
        "corpus tokens": Figure(corpus.tokens, "tokens"),
        "corpus repeats": Figure(data / max(corpus.tokens, 1), "×", "tokens needed / corpus tokens"),
    }
    return cost_line("training-125m", ONE_TIME, f"train a {shape.parameters / 1e6:.0f}M-parameter model from scratch, compute-optimally ({data / 1e9:.2g}B tokens)", flops, parts, acc, facts=facts)


def retrain_per_day(base: CostLine, changes: ChangeProfile, acc: Accelerator, *, key: str) -> CostLine:
    """Keeping a trained or fine-tuned model current: retrain after changes, at most once a day."""
    docs = changes.documents_per_day.value or 0.0
    runs = min(1.0, docs)
    times = Figure(runs, "runs/day", "min(1, changed documents per day)", {"changed documents": Input(round(docs, 3), "per day", changes.source)},
                   note="a model learns changed text only by being trained again; at most daily (answers up to a day stale)")
    parts = {f"{base.key} again": Figure((base.here.value or 0) * runs, "s", "runs per day × one run", {"runs": Input(runs, "per day", times.formula), "one run": Input(base.here.value, "s", "above")})}
    flops = Figure((base.flops.value or 0) * runs, "FLOPs", "runs per day × FLOPs of one run")
    acc_time = Figure((base.accelerator.value or 0) * runs, "s", "runs per day × accelerator time of one run")
    return cost_line(key, PER_DAY, f"retrain to keep up with {docs:.3g} changed documents/day", flops, parts, acc, accelerator=acc_time, facts={"runs": times})


def _scaled(fig: Figure, times: int, what: str) -> Figure:
    return Figure((fig.value or 0.0) * times, "s", f"{what} × time each", {"count": Input(times, "", "steps / save_every"), "each": Input(fig.value, "s", fig.explain())})


# -------------------------------------------------------------------------
# fine-tuning
# -------------------------------------------------------------------------


@dataclass
class FineTuneData:
    """Training examples as the fine-tuner will see them, sized in the base model's tokens."""

    examples: int
    tokens_per_example: float
    padded_tokens_per_example: float
    source: str

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _tokenizer(folder: Path | None):
    if folder is None:
        return None
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(folder))
    except Exception:
        return None


def fine_tune_data(work: TrainingWork, base: ResolvedModel, corpus: CorpusProfile, max_length: int) -> FineTuneData:
    """Examples and their token lengths: from the run's JSONL file (tokenized with the
    base model's tokenizer when it exists), else the knowledge sections the fine-tuner
    derives pairs from."""
    batch_size = work.batch_size
    tokenizer = _tokenizer(base.folder)
    overhead = 6
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        try:
            overhead = len(tokenizer.apply_chat_template([{"role": "user", "content": ""}, {"role": "assistant", "content": ""}], tokenize=True)) + 1
        except Exception:
            overhead = 32
    texts: list[str] = []
    data = work.examples_file
    if data:
        with Path(data).open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    try:
                        row = json.loads(line)
                    except ValueError:
                        continue
                    texts.append(" ".join(str(v) for v in row.values() if isinstance(v, str)))
        source = f"{Path(data).name} ({len(texts)} examples)"
    else:
        n = min(corpus.sections, work.max_examples or corpus.sections)
        mean_chars = corpus.section_chars / max(corpus.sections, 1) + 60
        texts = []
        source = f"pairs derived from {n} knowledge sections"
        if tokenizer is None:
            per = mean_chars * corpus.tokens / max(corpus.chars, 1)
            padded = min(max_length, per * 1.3 + overhead)
            return FineTuneData(n, min(max_length, per + overhead), padded, source + "; tokens by the embedder's tokenizer ×1.3 for padding")
        sample = " ".join(c.text for c in corpus.sample_chunks[:16])
        ratio = len(tokenizer(sample, add_special_tokens=False)["input_ids"]) / max(len(sample), 1)
        per = mean_chars * ratio
        return FineTuneData(n, min(max_length, per + overhead), min(max_length, per * 1.3 + overhead), source + "; padding assumed ×1.3")
    if tokenizer is not None:
        lengths = [min(max_length, len(tokenizer(t, add_special_tokens=False)["input_ids"]) + overhead) for t in texts]
        how = "base model's tokenizer"
    else:
        ratio = corpus.tokens / max(corpus.chars, 1)
        lengths = [min(max_length, len(t) * ratio + overhead) for t in texts]
        how = "embedder's tokenizer ratio (the base model does not exist yet)"
    if not lengths:
        return FineTuneData(0, 0.0, 0.0, source)
    # Batches pad to their longest example: the expected longest of a random batch.
    rng = random.Random(0)
    trials = [max(rng.sample(lengths, min(batch_size, len(lengths)))) for _ in range(200)]
    return FineTuneData(len(lengths), sum(lengths) / len(lengths), sum(trials) / len(trials), f"{source}; tokens by the {how}")


def _fine_tune(name: str, c: TrainingWork, base: ResolvedModel, corpus: CorpusProfile, rates: Rates, acc: Accelerator, *, key: str) -> CostLine:
    """A causal LM trained on examples, all weights or LoRA adapters: load the base,
    evaluate, train, evaluate, save."""
    shape = base.shape
    data = fine_tune_data(c, base, corpus, min(c.sequence_tokens, shape.context))
    n_eval = min(c.max_held_out, max(1, round(data.examples * c.held_out_fraction)), max(data.examples - 1, 1))
    seq = data.padded_tokens_per_example
    tokens_step = c.batch_size * seq
    rank = c.adapter_rank
    lora_params = shape.lora_parameters(rank) if rank else 0
    per_token = shape.lora_flops_per_token(seq, lora_params) if rank else shape.training_flops_per_token(seq)
    step = rates.train_step_seconds(tokens_step * per_token, shape.compute_parameters, kind="fine-tune")
    steps, why = _steps_within(c.steps, c.max_minutes, step.value)
    eval_flops = 2 * n_eval * data.tokens_per_example * shape.forward_flops_per_token(data.tokens_per_example)
    state_bytes = (lora_params if rank else shape.parameters) * 4 * 3
    parts = {
        "import libraries": rates.import_seconds(),
        "set-up": rates.setup_seconds("fine-tune"),
        "load base": rates.model_load_seconds(shape.weight_bytes),
        "evaluate before/after": rates.forward_seconds(eval_flops, shape.compute_parameters),
        "train": Figure(steps * step.value, "s", "steps × step time", {"steps": Input(steps, "steps", why), "step time": Input(step.value, "s", step.explain())}),
        "checkpoints": _scaled(rates.write_seconds(state_bytes), steps // c.save_every if c.save_every else 0, "checkpoints"),
        "save": rates.write_seconds(shape.weight_bytes + lora_params * 4),
    }
    d = steps * tokens_step
    formula = "D × (4·Nc + 6·Nlora + 6·L·T·d)" if rank else "D × (6·Nc + 6·L·T·d)"
    inputs = {"D": Input(round(d), "tokens", f"{steps} steps × {c.batch_size} × {seq:.0f} padded tokens"), "Nc": Input(shape.compute_parameters, "parameters", shape.source)}
    if rank:
        inputs["Nlora"] = Input(lora_params, "parameters", f"rank {rank} on the attention and MLP projections")
    flops = Figure(d * per_token + eval_flops, "FLOPs", formula + " + evaluation", inputs)
    facts = {
        "base parameters": Figure(shape.parameters, "parameters", note=base.note),
        "trainable parameters": Figure(lora_params or shape.parameters, "parameters"),
        "examples": Figure(data.examples, "examples", note=data.source),
        "tokens trained": Figure(d, "tokens"),
        "steps": Figure(steps, "steps", why),
    }
    method = f"LoRA rank {rank}" if rank else name
    return cost_line(key, ONE_TIME, f"{method} on {base.ref} ({steps:,} steps, {data.examples:,} examples)", flops, parts, acc, facts=facts)


def _contrastive(c: TrainingWork, base: ResolvedModel | None, corpus: CorpusProfile, rates: Rates, acc: Accelerator, emb: ModelShape | None, *, key: str) -> CostLine:
    """(question, passage) pairs with in-batch negatives; each step encodes a batch of
    questions and passages, and each pair's hard negatives (forward + backward)."""
    shape = base.shape if base is not None else emb
    if shape is None:
        return cost_line(key, ONE_TIME, "contrastive fine-tune of the embedder", Figure(None, "FLOPs", note="encoder shape unknown"), {}, acc)
    pairs = corpus.sections
    if c.examples_file:
        with Path(c.examples_file).open(encoding="utf-8") as fh:
            pairs = sum(1 for line in fh if line.strip())
    q_tokens, p_tokens = 16.0, min(float(c.sequence_tokens), corpus.embedded_tokens / max(corpus.chunks, 1))
    steps = c.steps or max(1, math.ceil((c.epochs or 1.0) * pairs / c.batch_size))
    passages = 1 + c.negatives_per_example  # its own passage and its hard negatives
    per_step = c.batch_size * (q_tokens * shape.training_flops_per_token(q_tokens, bidirectional=True)
                               + passages * p_tokens * shape.training_flops_per_token(p_tokens, bidirectional=True))
    step = rates.train_step_seconds(per_step, shape.compute_parameters)
    steps, why = _steps_within(steps, c.max_minutes, step.value)
    eval_tokens = min(c.max_held_out, corpus.chunks) * p_tokens * 2
    parts = {
        "train": Figure(steps * step.value, "s", "steps × step time", {"steps": Input(steps, "steps", why), "step time": Input(step.value, "s", step.explain())}),
        "evaluate before/after": rates.embed_seconds(eval_tokens * corpus.padded_tokens / max(corpus.embedded_tokens, 1)),
    }
    flops = Figure(steps * per_step, "FLOPs", "steps × batch × 3 × (question + passages × passage forward FLOPs)",
                   {"pairs": Input(pairs, "pairs", "data file" if c.examples_file else "knowledge sections"), "batch": Input(c.batch_size, "", "config"),
                    "passages": Input(passages, "per pair", "its own and its hard negatives")})
    return cost_line(key, ONE_TIME, f"contrastive fine-tune of the embedder ({steps:,} steps)", flops, parts, acc)
