"""The ``causal-lm`` trainer: a BPE tokenizer and a small GPT-2-style model trained from
scratch on the domain's knowledge text."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Sequence

from pydantic import Field, model_validator

import fourfold



class CausalLMTrainer(fourfold.Trainer):
    """Trains a tokenizer and a decoder-only transformer on the domain's own text."""

    name = "causal-lm"
    description = "BPE tokenizer + small GPT-2-style model trained from scratch on the knowledge text."

    class Config(fourfold.ComponentConfig):
        vocab_size: int = Field(4096, ge=300, le=65536, description="BPE vocabulary size.")
        min_frequency: int = Field(2, ge=1, description="Fewest occurrences for a BPE merge.")
        layers: int = Field(2, ge=1, le=48, description="Transformer blocks.")
        width: int = Field(128, ge=16, le=4096, description="Hidden size.")
        heads: int = Field(4, ge=1, le=64, description="Attention heads (must divide width).")
        context: int = Field(128, ge=8, le=4096, description="Tokens per training sequence (and the model's maximum).")
        steps: int | None = Field(300, ge=1, description="Optimiser steps (None: train until max_minutes).")
        max_minutes: float | None = Field(None, gt=0, description="Training time budget; stops early when spent.")
        learning_rate: float = Field(1e-3, gt=0, lt=1)
        batch_size: int = Field(16, ge=1, le=4096, description="Sequences per step.")
        warmup_steps: int = Field(20, ge=0)
        weight_decay: float = Field(0.01, ge=0)
        dropout: float = Field(0.0, ge=0, lt=1)
        eval_fraction: float = Field(0.05, gt=0, le=0.5, description="Share of the text held out for perplexity.")
        max_eval_blocks: int = Field(256, ge=1, description="Cap on held-out sequences (evaluation time).")
        save_every: int = Field(50, ge=1, description="Steps between checkpoints (resume points).")
        seed: int = 0

        @model_validator(mode="after")
        def _check(self) -> "CausalLMTrainer.Config":
            if self.width % self.heads:
                raise ValueError(f"heads ({self.heads}) must divide width ({self.width})")
            if self.steps is None and self.max_minutes is None:
                raise ValueError("give 'steps', 'max_minutes' or both; otherwise training never stops")
            return self

    def inputs(self) -> dict[str, Any]:
        return {}

    def cost_profile(self) -> fourfold.TrainingWork:
        cfg = self.config
        model = fourfold.ModelShape.gpt2(
            vocab=cfg.vocab_size, width=cfg.width, layers=cfg.layers, context=cfg.context, heads=cfg.heads,
            source="causal-lm config (vocabulary at most vocab_size; BPE may learn fewer)",
        )
        return fourfold.TrainingWork(
            method="pretrain", batch_size=cfg.batch_size, sequence_tokens=cfg.context, steps=cfg.steps, max_minutes=cfg.max_minutes,
            model=model, held_out_fraction=cfg.eval_fraction, max_held_out=cfg.max_eval_blocks, save_every=cfg.save_every,
        )

    @classmethod
    def calibration_configs(cls, *, quick: bool = False) -> list[dict[str, Any]]:
        # Two small sizes: the difference in step time between them is compute, the rest
        # is the Trainer's per-step overhead.
        common = {"warmup_steps": 2, "save_every": 100_000, "max_eval_blocks": 8, "eval_fraction": 0.05, "learning_rate": 0.003}
        sizes = (
            {"vocab_size": 1024, "layers": 1, "width": 64, "heads": 2, "context": 64, "batch_size": 8, "steps": 24},
            {"vocab_size": 2048, "layers": 2, "width": 128, "heads": 4, "context": 128, "batch_size": 8, "steps": 12},
        )
        return [{**size, **common, "steps": max(8, size["steps"] * 2 // 3) if quick else size["steps"]} for size in sizes]

    def train(
        self, texts: Sequence[str], output_dir: Path, progress: fourfold.Progress, *, work_dir: Path | None = None
    ) -> fourfold.TrainingResult:
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast, Trainer

        from .hf import WORK_FOLDER, ProgressCallback, TimeBudgetCallback, checkpoint_step, loss_curve, perplexity, quiet, resume_point, select_device, training_arguments
        from .text_data import BlockDataset, eval_batches, split_blocks, token_blocks, train_tokenizer

        cfg = self.config
        output_dir = Path(output_dir)
        own_work_dir = work_dir is None
        work_dir = Path(work_dir) if work_dir is not None else output_dir / WORK_FOLDER
        work_dir.mkdir(parents=True, exist_ok=True)
        settings = self.context.settings if self.context else None
        device = select_device(settings)
        texts = [t for t in texts if t and t.strip()]
        if not texts:
            raise fourfold.TrainingError("the domain's knowledge has no text to train on")

        # The tokenizer is part of the run's state: train it once, reuse it on resume.
        tok_dir = work_dir / "tokenizer"
        progress.start("tokenizer", total=None)
        if (tok_dir / "tokenizer.json").exists():
            tokenizer = PreTrainedTokenizerFast.from_pretrained(tok_dir)
        else:
            tokenizer = train_tokenizer(texts, cfg.vocab_size, cfg.min_frequency, tok_dir.with_name("tokenizer.tmp"))
            # The tokenizer is a folder of files: it is saved beside its place and renamed into
            # it whole (fourfold.write_atomic is for single files), so a resumed run finds a
            # complete tokenizer or none.
            tok_dir.with_name("tokenizer.tmp").rename(tok_dir)
        blocks = token_blocks(texts, tokenizer, cfg.context)
        train_blocks, held_out = split_blocks(blocks, cfg.eval_fraction, cfg.max_eval_blocks)

        torch.manual_seed(cfg.seed)
        model_config = GPT2Config(
            vocab_size=len(tokenizer),
            n_positions=cfg.context,
            n_embd=cfg.width,
            n_layer=cfg.layers,
            n_head=cfg.heads,
            resid_pdrop=cfg.dropout,
            embd_pdrop=cfg.dropout,
            attn_pdrop=cfg.dropout,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        model = GPT2LMHeadModel(model_config)
        model.loss_type = "ForCausalLM"  # what transformers falls back to anyway, minus a warning
        batches = eval_batches(held_out, cfg.batch_size)
        progress.start("evaluate (before)", total=None)
        before = perplexity(model.to(device.torch_device), batches, device)

        checkpoints = work_dir / "checkpoints"
        resume = resume_point(checkpoints)
        budget = TimeBudgetCallback(cfg.max_minutes, work_dir)
        tracker = ProgressCallback(progress, "train", tokens_per_step=cfg.batch_size * cfg.context)
        args = training_arguments(cfg, checkpoints, device, weight_decay=cfg.weight_decay)
        trainer = quiet(
            Trainer(
                model=model,
                args=args,
                train_dataset=BlockDataset(train_blocks),
                processing_class=tokenizer,
                callbacks=[tracker, budget],
            )
        )
        started = time.perf_counter()
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        train_seconds = time.perf_counter() - started

        progress.start("evaluate (after)", total=None)
        after = perplexity(trainer.model, batches, device)
        trainer.model.config.use_cache = True
        trainer.model.generation_config.pad_token_id = tokenizer.pad_token_id
        trainer.model.generation_config.eos_token_id = tokenizer.eos_token_id
        trainer.model.save_pretrained(output_dir)
        tokenizer.save_pretrained(output_dir)
        if own_work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)

        params = sum(p.numel() for p in trainer.model.parameters())
        return fourfold.TrainingResult(
            output_dir=output_dir,
            kind="causal-lm",
            metrics={
                "before": {"heldout_loss": before["loss"], "heldout_perplexity": before["perplexity"]},
                "after": {"heldout_loss": after["loss"], "heldout_perplexity": after["perplexity"]},
                "heldout_tokens": after["tokens"],
                "train_tokens": int(train_blocks.numel()),
                "parameters": params,
                "vocab_size": len(tokenizer),
                "final_step": trainer.state.global_step,
                "resumed_from_step": checkpoint_step(resume),
                "stopped_by_time_budget": budget.stopped_by_budget,
                "train_seconds": round(train_seconds, 2),
                "device": device.describe(),
                "loss_curve": loss_curve(trainer.state.log_history),
                **tracker.throughput(),
            },
        )
