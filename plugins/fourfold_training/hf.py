"""What every transformers-Trainer run here shares: device choice, checkpoints that
survive a kill, progress and time-budget callbacks, loss curves and perplexity."""

from __future__ import annotations

import json
import math
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
from transformers import TrainerCallback

import fourfold

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
ELAPSED_FILE = "elapsed.json"
WORK_FOLDER = ".work"  # checkpoints inside output_dir when the caller gives no work_dir


@dataclass(frozen=True)
class Device:
    """Where training runs: CUDA with bf16 when there is a GPU, else the CPU in fp32."""

    name: str
    bf16: bool

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.name)

    def trainer_args(self) -> dict[str, Any]:
        return {"use_cpu": self.name == "cpu", "bf16": self.bf16}

    def describe(self) -> str:
        if self.name == "cuda":
            return f"cuda ({torch.cuda.get_device_name(0)}, {'bf16' if self.bf16 else 'fp32'})"
        return f"cpu ({torch.get_num_threads()} threads, fp32)"


def select_device(settings: fourfold.Settings | None = None) -> Device:
    """CUDA + bf16 when available (bf16 needs Ampere or newer); otherwise CPU."""
    if settings is not None and settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    if torch.cuda.is_available():
        return Device("cuda", bool(torch.cuda.is_bf16_supported()))
    return Device("cpu", False)


def training_arguments(cfg: Any, checkpoints: Path, device: "Device", **extra: Any):
    """The Trainer arguments every fourfold trainer and fine-tuner shares, from a config
    with ``steps`` (None: until the time budget), ``batch_size``, ``learning_rate``,
    ``warmup_steps``, ``save_every`` and ``seed``: checkpoints every ``save_every`` steps
    (two kept, for resuming), quiet logging, no evaluation by the Trainer."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(checkpoints),
        max_steps=cfg.steps or 1_000_000,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        # A pure time budget has no known end for a decaying schedule.
        lr_scheduler_type="cosine" if cfg.steps else "constant_with_warmup",
        warmup_steps=cfg.warmup_steps,
        logging_steps=max(1, (cfg.steps or 1000) // 50),
        logging_first_step=True,
        save_strategy="steps",
        save_steps=cfg.save_every,
        save_total_limit=2,
        eval_strategy="no",
        report_to=[],
        disable_tqdm=True,
        seed=cfg.seed,
        data_seed=cfg.seed,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        **device.trainer_args(),
        **extra,
    )


def quiet(trainer):
    """The Trainer prints its logs and tqdm bars when not attached to a logger; fourfold
    reports through :class:`fourfold.Progress` instead and keeps the logs in the
    artifact's loss curve."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback as TqdmCallback
    from transformers.utils import logging as hf_logging

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(TqdmCallback)
    hf_logging.disable_progress_bar()
    return trainer


# -- checkpoints ----------------------------------------------------------------------


def complete_checkpoints(folder: Path) -> list[Path]:
    """Checkpoint folders the Trainer finished writing, oldest first.

    The Trainer writes ``trainer_state.json`` last, so a checkpoint a kill cut short
    lacks it (or holds a truncated one) and is not resumed from.
    """
    if not folder.is_dir():
        return []
    found = []
    for entry in folder.iterdir():
        m = _CHECKPOINT.match(entry.name)
        if not m or not entry.is_dir():
            continue
        try:
            json.loads((entry / "trainer_state.json").read_text())
        except (OSError, ValueError):
            continue
        found.append((int(m.group(1)), entry))
    return [p for _, p in sorted(found)]


def resume_point(folder: Path) -> Path | None:
    """The newest complete checkpoint in ``folder``; incomplete ones are removed so the
    Trainer's own rotation never trips over them."""
    complete = complete_checkpoints(folder)
    if folder.is_dir():
        for entry in folder.iterdir():
            if _CHECKPOINT.match(entry.name) and entry not in complete:
                shutil.rmtree(entry, ignore_errors=True)
    return complete[-1] if complete else None


def checkpoint_step(checkpoint: Path | None) -> int:
    if checkpoint is None:
        return 0
    m = _CHECKPOINT.match(checkpoint.name)
    return int(m.group(1)) if m else 0


# -- callbacks ------------------------------------------------------------------------


class ProgressCallback(TrainerCallback):
    """Reports optimiser steps to a :class:`fourfold.Progress` and measures the
    throughput of this process's share of the run."""

    def __init__(self, progress: fourfold.Progress, stage: str, tokens_per_step: int | None = None):
        self.progress = progress
        self.stage = stage
        self.tokens_per_step = tokens_per_step
        self.first_step = 0
        self.last_step = 0
        self.started = 0.0
        self.seconds = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self.first_step = self.last_step = state.global_step
        self.progress.start(self.stage, total=state.max_steps or None)
        if state.global_step:
            self.progress.advance(state.global_step)
        self.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.progress.advance(state.global_step - self.last_step)
        self.last_step = state.global_step

    def on_train_end(self, args, state, control, **kwargs):
        self.seconds = time.perf_counter() - self.started

    @property
    def steps(self) -> int:
        return self.last_step - self.first_step

    def throughput(self) -> dict[str, float]:
        out: dict[str, float] = {"steps_this_run": self.steps, "seconds_this_run": round(self.seconds, 3)}
        if self.seconds > 0:
            out["steps_per_s"] = round(self.steps / self.seconds, 3)
            if self.tokens_per_step:
                out["tokens_per_s"] = round(self.steps * self.tokens_per_step / self.seconds, 1)
        return out


class TimeBudgetCallback(TrainerCallback):
    """Stops training once ``max_minutes`` of training time are spent, counting the
    time of earlier, interrupted runs too (kept in ``elapsed.json`` beside the
    checkpoints)."""

    def __init__(self, max_minutes: float | None, work_dir: Path):
        self.budget = max_minutes * 60 if max_minutes else None
        self.file = work_dir / ELAPSED_FILE
        try:
            self.before = float(json.loads(self.file.read_text())["seconds"])
        except (OSError, ValueError, KeyError, TypeError):
            self.before = 0.0
        self.started = time.perf_counter()
        self.stopped_by_budget = False

    def elapsed(self) -> float:
        return self.before + time.perf_counter() - self.started

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self.budget is not None and self.elapsed() >= self.budget:
            self.stopped_by_budget = True
            control.should_training_stop = True
            control.should_save = True
        return control

    def on_save(self, args, state, control, **kwargs):
        fourfold.write_json_atomic(self.file, {"seconds": self.elapsed(), "step": state.global_step})


def loss_curve(log_history: Iterable[dict[str, Any]]) -> list[list[float]]:
    """``[[step, training loss], …]`` from a Trainer's log history."""
    return [[int(e["step"]), round(float(e["loss"]), 4)] for e in log_history if "loss" in e and "step" in e]


# -- evaluation -----------------------------------------------------------------------


@torch.no_grad()
def perplexity(model: torch.nn.Module, batches: Sequence[dict[str, torch.Tensor]], device: Device) -> dict[str, float]:
    """Token-weighted mean loss and perplexity of ``model`` on ``batches`` (each with
    ``input_ids``, ``labels`` using -100 for ignored positions, optional
    ``attention_mask``)."""
    was_training = model.training
    model.eval()
    total_loss = 0.0
    total_tokens = 0
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.bf16 else _nullcontext()
    try:
        for batch in batches:
            batch = {k: v.to(device.torch_device) for k, v in batch.items()}
            labels = batch.pop("labels")
            with autocast:
                logits = model(**batch).logits.float()
            shift_logits = logits[:, :-1, :].reshape(-1, logits.size(-1))
            shift_labels = labels[:, 1:].reshape(-1)
            n = int((shift_labels != -100).sum())
            if n == 0:
                continue
            loss = torch.nn.functional.cross_entropy(shift_logits, shift_labels, ignore_index=-100, reduction="sum")
            total_loss += float(loss)
            total_tokens += n
    finally:
        model.train(was_training)
    if total_tokens == 0:
        return {"loss": float("nan"), "perplexity": float("nan"), "tokens": 0}
    mean = total_loss / total_tokens
    return {"loss": round(mean, 4), "perplexity": round(math.exp(min(mean, 50.0)), 3), "tokens": total_tokens}


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
