"""The ``lora`` and ``full`` fine-tuners: a causal language model taught to answer
instructions from domain data, measured by held-out perplexity before and after."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, model_validator

import fourfold

from .pairs import INSTRUCTION_FIELDS, Example, file_digest, pairs_from_knowledge, read_pairs, split_examples

# LoRA targets by architecture. GPT-2 keeps its projections in Conv1D layers, whose
# weights are stored transposed: peft needs fan_in_fan_out=True for them.
_LORA_TARGETS = {
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}
_CONV1D_MODELS = {"gpt2"}


class CausalFineTuneConfig(fourfold.ComponentConfig):
    base: str = Field(
        "smollm2",
        description="Model to adapt: 'smollm2' (SmolLM2-135M-Instruct), 'artifact:NAME' (e.g. a model trained "
        "by causal-lm) or a folder relative to the manifest.",
    )
    data: str | None = Field(
        None,
        description="JSONL file of {\"instruction\", \"response\"} objects, relative to the manifest. "
        "Unset: questions about each knowledge section, answered by the section's text.",
    )
    steps: int | None = Field(100, ge=1, description="Optimiser steps (None: until max_minutes).")
    max_minutes: float | None = Field(None, gt=0, description="Training time budget; stops early when spent.")
    learning_rate: float = Field(2e-4, gt=0, lt=1)
    batch_size: int = Field(4, ge=1, le=1024)
    max_length: int = Field(256, ge=16, le=8192, description="Tokens per example (prompt + response), longer ones are cut.")
    warmup_steps: int = Field(5, ge=0)
    eval_fraction: float = Field(0.1, gt=0, le=0.5, description="Share of examples held out for perplexity.")
    max_eval_examples: int = Field(64, ge=1)
    max_examples: int = Field(5000, ge=2, description="Cap on examples derived from the knowledge base.")
    save_every: int = Field(25, ge=1, description="Steps between checkpoints (resume points).")
    seed: int = 0

    @model_validator(mode="after")
    def _stops(self):
        if self.steps is None and self.max_minutes is None:
            raise ValueError("give 'steps', 'max_minutes' or both; otherwise training never stops")
        return self


class _CausalFineTuner(fourfold.FineTuner):
    """Shared by ``lora`` and ``full``: data, formatting, evaluation, Trainer run."""

    produces = "causal-lm"
    method: ClassVar[str] = ""

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
            raise fourfold.TrainingError(f"{self._setting('data')}: data file {path} does not exist")
        return {"data": {"file": self.config.data, "sha256": file_digest(path)}}  # as written: moving the folder retrains nothing

    def _data_path(self) -> Path:
        return self.context.path(self.config.data) if self.context else Path(self.config.data).resolve()

    def cost_profile(self) -> fourfold.TrainingWork:
        cfg = self.config
        return fourfold.TrainingWork(
            method="fine-tune", batch_size=cfg.batch_size, sequence_tokens=cfg.max_length, steps=cfg.steps, max_minutes=cfg.max_minutes,
            base_model=cfg.base, examples_file=self._data_path() if cfg.data else None, max_examples=cfg.max_examples,
            held_out_fraction=cfg.eval_fraction, max_held_out=cfg.max_eval_examples, adapter_rank=self._adapter_rank(),
            save_every=cfg.save_every,
        )

    def _adapter_rank(self) -> int | None:
        return None

    @classmethod
    def calibration_configs(cls, base_model: str, *, quick: bool = False) -> list[dict[str, Any]]:
        return [{"base": base_model, "steps": 4 if quick else 8, "batch_size": 4, "max_length": 64, "warmup_steps": 1,
                 "save_every": 100_000, "max_eval_examples": 8}]

    def _setting(self, key: str) -> str:
        return f"fine-tuner '{self.name}' setting '{key}'"

    def examples(self) -> list[Example]:
        if self.config.data is not None:
            return read_pairs(self._data_path(), INSTRUCTION_FIELDS, self._setting("data"))
        return pairs_from_knowledge(self.context.knowledge_documents(), max_chars=1200, limit=self.config.max_examples)

    # -- the model --------------------------------------------------------------------

    def load_base(self, device):
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        folder = self.context.resolve_model(self.config.base)
        if not (folder / "config.json").is_file():
            raise fourfold.TrainingError(
                f"{self._setting('base')}: '{self.config.base}' resolved to {folder}, which is not a transformers model folder"
            )
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        config = AutoConfig.from_pretrained(str(folder))
        quantization = getattr(config, "quantization_config", None) or {}
        if isinstance(quantization, dict) and quantization.get("quant_method") == "gguf":
            # A checkpoint converted from GGUF holds plain de-quantised weights but may keep
            # the GGUF note in its config, which makes transformers refuse to train it.
            del config.quantization_config
        model = AutoModelForCausalLM.from_pretrained(str(folder), config=config, dtype=torch.float32)
        if getattr(model, "loss_type", None) is None:
            model.loss_type = "ForCausalLM"  # transformers' fallback anyway, minus a warning
        return folder, tokenizer, model.to(device.torch_device)

    def prepare(self, model):
        """The model the Trainer optimises (a peft model for LoRA)."""
        return model

    def finish(self, trained, output_dir: Path):
        """The plain transformers model to save in ``output_dir``."""
        return trained

    # -- the run ----------------------------------------------------------------------

    def fine_tune(self, output_dir: Path, progress: fourfold.Progress, *, work_dir: Path | None = None) -> fourfold.TrainingResult:
        import torch
        from transformers import Trainer

        from .hf import WORK_FOLDER, ProgressCallback, TimeBudgetCallback, checkpoint_step, loss_curve, perplexity, quiet, resume_point, select_device, training_arguments

        cfg = self.config
        output_dir = Path(output_dir)
        own_work_dir = work_dir is None
        work_dir = Path(work_dir) if work_dir is not None else output_dir / WORK_FOLDER
        work_dir.mkdir(parents=True, exist_ok=True)
        device = select_device(self.context.settings if self.context else None)
        progress.start("read data", total=None)
        train_examples, held_out = split_examples(self.examples(), cfg.eval_fraction, cfg.max_eval_examples)
        progress.start("load base model", total=None)
        base_folder, tokenizer, model = self.load_base(device)
        # Never longer than the model's position table (a from-scratch model may be short).
        positions = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", None)
        max_length = min(cfg.max_length, positions or cfg.max_length)
        train_set = [f for f in (encode(e, tokenizer, max_length) for e in train_examples) if f]
        eval_set = [f for f in (encode(e, tokenizer, max_length) for e in held_out) if f]
        if not train_set or not eval_set:
            raise fourfold.TrainingError(
                f"no example keeps any response tokens within {max_length} tokens; raise 'max_length'"
            )
        eval_batches = [collate(eval_set[i : i + cfg.batch_size], tokenizer.pad_token_id) for i in range(0, len(eval_set), cfg.batch_size)]
        progress.start("evaluate (before)", total=None)
        before = perplexity(model, eval_batches, device)

        torch.manual_seed(cfg.seed)
        model = self.prepare(model)
        checkpoints = work_dir / "checkpoints"
        resume = resume_point(checkpoints)
        budget = TimeBudgetCallback(cfg.max_minutes, work_dir)
        tracker = ProgressCallback(progress, "fine-tune")
        args = training_arguments(cfg, checkpoints, device)
        trainer = quiet(
            Trainer(
                model=model,
                args=args,
                train_dataset=_ListDataset(train_set),
                data_collator=lambda features: collate(features, tokenizer.pad_token_id),
                processing_class=tokenizer,
                callbacks=[tracker, budget],
            )
        )
        started = time.perf_counter()
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        train_seconds = time.perf_counter() - started
        tokens = sum(len(f["input_ids"]) for f in train_set)

        progress.start("evaluate (after)", total=None)
        after = perplexity(trainer.model, eval_batches, device)
        trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
        progress.start("save", total=None)
        final = self.finish(trainer.model, output_dir)
        final.config.use_cache = True
        final.save_pretrained(output_dir)
        tokenizer.save_pretrained(output_dir)
        if own_work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)
        throughput = tracker.throughput()
        if throughput.get("steps_per_s"):
            throughput["tokens_per_s"] = round(throughput["steps_per_s"] * cfg.batch_size * tokens / len(train_set), 1)
        return fourfold.TrainingResult(
            output_dir=output_dir,
            kind="causal-lm",
            metrics={
                "method": self.method,
                "before": {"heldout_loss": before["loss"], "heldout_perplexity": before["perplexity"]},
                "after": {"heldout_loss": after["loss"], "heldout_perplexity": after["perplexity"]},
                "heldout_examples": len(eval_set),
                "heldout_tokens": after["tokens"],
                "train_examples": len(train_set),
                "base_folder": str(base_folder),
                "trainable_parameters": trainable,
                "final_step": trainer.state.global_step,
                "resumed_from_step": checkpoint_step(resume),
                "stopped_by_time_budget": budget.stopped_by_budget,
                "train_seconds": round(train_seconds, 2),
                "device": device.describe(),
                "loss_curve": loss_curve(trainer.state.log_history),
                **throughput,
            },
        )


class LoraFineTuner(_CausalFineTuner):
    """Low-rank adapters (peft) on a causal LM; saves the merged model and the adapter."""

    name = "lora"
    method = "lora"
    description = "LoRA (peft) on smollm2, a causal-lm artifact or a model folder; instruction/response pairs."

    class Config(CausalFineTuneConfig):
        rank: int = Field(8, ge=1, le=256, description="LoRA rank r.")
        alpha: float = Field(16, gt=0, description="LoRA scaling alpha (the update is scaled by alpha/rank).")
        dropout: float = Field(0.05, ge=0, lt=1)
        target_modules: list[str] | None = Field(
            None, description="Module names to adapt. Unset: attention and MLP projections for known architectures."
        )

    def _adapter_rank(self) -> int | None:
        return self.config.rank

    def prepare(self, model):
        from peft import LoraConfig, get_peft_model

        model_type = model.config.model_type
        targets = self.config.target_modules or _LORA_TARGETS.get(model_type) or "all-linear"
        lora = LoraConfig(
            r=self.config.rank,
            lora_alpha=self.config.alpha,
            lora_dropout=self.config.dropout,
            target_modules=targets,
            fan_in_fan_out=model_type in _CONV1D_MODELS,
            task_type="CAUSAL_LM",
        )
        return get_peft_model(model, lora)

    def finish(self, trained, output_dir: Path):
        # The adapter alone is small and documents the change; the merged model is what
        # generators load, with no peft needed at serving time.
        trained.save_pretrained(output_dir / "adapter")
        return trained.merge_and_unload()


class FullFineTuner(_CausalFineTuner):
    """Every weight of a (small) causal LM trained on instruction/response pairs."""

    name = "full"
    method = "full"
    description = "Full fine-tune of a small causal LM (all weights) on instruction/response pairs."

    class Config(CausalFineTuneConfig):
        learning_rate: float = Field(5e-5, gt=0, lt=1)


# -- examples as token ids ------------------------------------------------------------


def encode(example: Example, tokenizer, max_length: int) -> dict[str, list[int]] | None:
    """Token ids of an instruction/response pair in the model's chat format, with the
    loss on the response only. None when no response token fits in ``max_length``."""
    user = [{"role": "user", "content": example.first}]
    if tokenizer.chat_template:
        prompt_text = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
        full_text = tokenizer.apply_chat_template(
            user + [{"role": "assistant", "content": example.second}], tokenize=False
        )
        if full_text.startswith(prompt_text):
            response_text = full_text[len(prompt_text) :]
        else:  # templates that rewrite earlier turns: fall back to plain concatenation
            response_text = example.second
    else:
        prompt_text = f"Question: {example.first}\nAnswer: "
        response_text = example.second
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(response_text, add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    if eos is not None and eos not in response_ids:
        response_ids.append(eos)
    # Keep the start of the response: cut the prompt's head when the two do not fit.
    room_for_prompt = max(0, max_length - min(len(response_ids), max_length // 2))
    prompt_ids = prompt_ids[-room_for_prompt:] if room_for_prompt else []
    ids = (prompt_ids + response_ids)[:max_length]
    labels = ([-100] * len(prompt_ids) + response_ids)[:max_length]
    if all(label == -100 for label in labels):
        return None
    return {"input_ids": ids, "labels": labels}


def collate(features: list[dict[str, list[int]]], pad_id: int):
    import torch

    width = max(len(f["input_ids"]) for f in features)
    ids = torch.full((len(features), width), pad_id, dtype=torch.long)
    labels = torch.full((len(features), width), -100, dtype=torch.long)
    mask = torch.zeros((len(features), width), dtype=torch.long)
    for i, f in enumerate(features):
        n = len(f["input_ids"])
        ids[i, :n] = torch.tensor(f["input_ids"])
        labels[i, :n] = torch.tensor(f["labels"])
        mask[i, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


class _ListDataset:
    def __init__(self, items: list):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.items[i]
