"""``fourfold calibrate``: measure what this machine does per second, once, through the
real components.

Each measurement runs the builtin component the product uses, on real text (a few
consumer-health pages shipped in ``calibration_text/``, written for fourfold and
illustrative only):

- the embedder on chunk-sized passages (tokens/s), its load time and query latency;
- the retriever's store: points written per second, optimise time, search latency;
- the ``causal-lm`` trainer at two small sizes (tokens/s, step time, set-up time) — two
  sizes separate the per-step overhead from the FLOP rate;
- the ``lora`` fine-tuner on the small model just trained (step time, set-up time);
- generators: ``extractive`` (ms per question), ``transformers`` on the small model
  and ``smollm2`` (prefill and decode tokens/s, load time), plus one forward+backward
  pass of SmolLM2 for the FLOP rate of a 135M-parameter model;
- the disk's write rate (checkpoints).

GPU: the embedder and the trainers use CUDA (bf16) when torch sees a GPU, so their
figures are GPU figures then; each figure records the device it was measured on.

The figures go to ``<state dir>/calibration.json``; :mod:`fourfold.advisor.rates` turns
them into the rates the advisor uses, each with its derivation.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from fourfold.components import NullProgress, Progress
from fourfold.errors import FourfoldError
from fourfold.files import write_json_atomic
from fourfold.settings import Settings, get_settings

if TYPE_CHECKING:
    from fourfold.domain import Domain
    from fourfold.plugins import PluginHost

__all__ = [
    "CALIBRATION_FILE",
    "CALIBRATION_FORMAT",
    "SAMPLE_FOLDER",
    "TRAINING_POINTS",
    "calibration_file",
    "load_calibration",
    "run_calibration",
    "describe_machine",
    "padded_tokens",
]

CALIBRATION_FILE = "calibration.json"
CALIBRATION_FORMAT = 1
SAMPLE_FOLDER = Path(__file__).resolve().parent / "calibration_text"

# Two small causal-LM sizes: the difference in step time between them is compute, the
# rest is the Trainer's per-step overhead.
TRAINING_POINTS = (
    {"vocab_size": 1024, "layers": 1, "width": 64, "heads": 2, "context": 64, "batch_size": 8, "steps": 24},
    {"vocab_size": 2048, "layers": 2, "width": 128, "heads": 4, "context": 128, "batch_size": 8, "steps": 12},
)
_TRAINING_COMMON = {"warmup_steps": 2, "save_every": 100_000, "max_eval_blocks": 8, "eval_fraction": 0.05, "learning_rate": 0.003}
_QUESTIONS = (
    "How can I sleep better at night?",
    "What raises cholesterol?",
    "How do I treat a mild sunburn?",
    "When should I see a doctor about back pain?",
    "What are the symptoms of anxiety?",
    "How do I rest my eyes when using a screen?",
)


def calibration_file(settings: Settings | None = None) -> Path:
    return (settings or get_settings()).state_dir / CALIBRATION_FILE


def load_calibration(settings: Settings | None = None) -> dict[str, Any] | None:
    """The stored calibration, or None when there is none (or it is from another format)."""
    path = calibration_file(settings)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise FourfoldError(f"{path}: unreadable calibration ({exc}); run 'fourfold calibrate' again") from None
    if data.get("format") != CALIBRATION_FORMAT:
        return None
    return data


# -------------------------------------------------------------------------
# the machine
# -------------------------------------------------------------------------


def describe_machine(settings: Settings | None = None) -> dict[str, Any]:
    """CPU model, cores, torch threads, GPU (if torch sees one) and the load right now."""
    import torch

    settings = settings or get_settings()
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    gpu = None
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        gpu = {
            "name": torch.cuda.get_device_name(0),
            "count": torch.cuda.device_count(),
            "memory_gb": round(props.total_memory / 2**30, 1),
            "bf16": bool(torch.cuda.is_bf16_supported()),
        }
    return {
        "device": "cuda" if gpu else "cpu",
        "device_name": gpu["name"] if gpu else cpu,
        "cpu": cpu,
        "cores": cores,
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(terse=True),
    }


# -------------------------------------------------------------------------
# the run
# -------------------------------------------------------------------------


def padded_tokens(lengths: list[int], batch_size: int) -> int:
    """Tokens the encoder computes for texts of ``lengths``: it sorts them longest first
    and pads each batch of ``batch_size`` to its longest text."""
    ordered = sorted(lengths, reverse=True)
    return sum(ordered[i] * len(ordered[i : i + batch_size]) for i in range(0, len(ordered), batch_size))


class _StepClock:
    """A :class:`fourfold.Progress` that notes when each unit of work of a stage ends:
    the trainers advance their progress once per optimiser step, so this gives the
    duration of every step of a real run."""

    def __init__(self) -> None:
        self.stage: str | None = None
        self.marks: dict[str, list[float]] = {}

    def start(self, stage: str, total: int | None = None) -> None:
        self.stage = stage
        self.marks.setdefault(stage, []).append(time.perf_counter())

    def advance(self, n: int = 1) -> None:
        if self.stage is not None:
            self.marks[self.stage].append(time.perf_counter())

    def durations(self, stage: str) -> list[float]:
        marks = self.marks.get(stage) or []
        return [b - a for a, b in zip(marks, marks[1:])]


def _steady_step(durations: list[float]) -> tuple[float, float]:
    """(mean step time after the first step, extra time of the first step).

    The mean, not the median: the figure predicts wall time, and on a shared machine
    the stalls are part of it."""
    if len(durations) < 3:
        value = sum(durations) / max(len(durations), 1)
        return value, 0.0
    steady = sum(durations[1:]) / (len(durations) - 1)
    return steady, max(0.0, durations[0] - steady)


def _calibration_domain(host: "PluginHost", settings: Settings) -> "Domain":
    from fourfold.domain import Domain
    from fourfold.manifest import Manifest

    manifest = Manifest.model_validate(
        {
            "fourfold": 1,
            "domain": "calibration",
            "title": "Calibration sample",
            "knowledge": {"sources": [{"path": str(SAMPLE_FOLDER), "include": ["*.md"]}]},
        }
    )
    return Domain(manifest, host, settings)


class _Run:
    """One calibration run: measurements in order, each skipped with a reason on failure."""

    def __init__(self, domain: "Domain", progress: Progress, quick: bool, work: Path, log: Callable[[str], None]):
        self.domain = domain
        self.progress = progress
        self.quick = quick
        self.work = work
        self.log = log
        self.result: dict[str, Any] = {}
        self.skipped: dict[str, str] = {}
        self.chunks: list = []
        self.texts: list[str] = []
        self.vectors = None
        self.passages: dict[str, list] = {}
        self.small_model: Path | None = None

    def step(self, name: str, fn: Callable[[], Any]) -> None:
        self.progress.start(name, None)
        started = time.perf_counter()
        try:
            value = fn()
        except Exception as exc:  # one failing measurement must not lose the others
            self.skipped[name] = f"{type(exc).__name__}: {exc}"
            self.log(f"{name}: skipped ({type(exc).__name__}: {exc})")
            return
        if value is not None:
            self.result[name] = value
        self.log(f"{name}: {time.perf_counter() - started:.1f} s")

    # -- libraries ----------------------------------------------------------------------

    def imports(self) -> dict[str, Any]:
        """Seconds a fresh process spends importing the training libraries (torch,
        transformers' Trainer, peft): part of every training or fine-tuning run started
        from the command line, and more than the whole run for a small LoRA."""
        import subprocess
        import sys

        code = (
            "import time; t = time.perf_counter(); import torch; "
            "import transformers; from transformers import Trainer, TrainingArguments, AutoModelForCausalLM; "
            "import peft; print(time.perf_counter() - t)"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
        return {"training_libraries_s": round(float(done.stdout.strip().splitlines()[-1]), 3)}

    # -- text ---------------------------------------------------------------------------

    def sample(self) -> dict[str, Any]:
        from fourfold import knowledge as kn
        from fourfold.knowledge import text_for_embedding

        domain = self.domain
        manifest = domain.manifest
        assert manifest.knowledge is not None
        scan = kn.scan_sources(manifest)
        started = time.perf_counter()
        for file in sorted(scan.files, key=lambda f: f.relpath):
            doc = kn.load_document(domain, file)
            self.chunks += kn.chunk_document(doc, file, embedder=domain.embedder, chunking=manifest.knowledge.chunking, tags=())
        self.texts = [text_for_embedding(c) for c in self.chunks]
        return {"files": len(scan.files), "chunks": len(self.chunks), "load_and_chunk_s": round(time.perf_counter() - started, 4)}

    # -- embedder ---------------------------------------------------------------------

    def embedder(self) -> dict[str, Any]:
        import torch

        emb = self.domain.embedder
        started = time.perf_counter()
        emb.embed_query("warm up")
        load_s = time.perf_counter() - started
        # Whole batches of the embedder's own batch size, as a refresh sends them
        # (smaller batches run slower per token); two passes show how steady it is.
        batch = int(getattr(emb.config, "batch_size", 32) or 32)
        n = batch * (1 if self.quick else 2)
        texts = (self.texts * (n // max(len(self.texts), 1) + 1))[:n]
        tokens = sum(min(len(emb.token_spans(t)) + 2, emb.max_tokens) for t in texts)
        rates, vectors, seconds, padded = [], [], 0.0, 0
        for start in range(0, n, batch):
            part = texts[start : start + batch]
            lengths = [min(len(emb.token_spans(t)) + 2, emb.max_tokens) for t in part]
            t = time.perf_counter()
            vectors.append(emb.embed_documents(part))
            took = time.perf_counter() - t
            seconds += took
            part_padded = padded_tokens(lengths, batch)
            padded += part_padded
            rates.append(part_padded / took)
        import numpy as np

        self.vectors = np.vstack(vectors)
        query_ms = []
        for q in _QUESTIONS:
            t = time.perf_counter()
            emb.embed_query(q)
            query_ms.append((time.perf_counter() - t) * 1000)
        return {
            "name": emb.name,
            "model_id": emb.model_id,
            "device": "cuda" if torch.cuda.is_available() else "cpu",
            "bf16": getattr(emb, "bf16_active", None),
            "load_s": round(load_s, 4),
            "texts": len(texts),
            "tokens": tokens,
            "seconds": round(seconds, 4),
            "tokens_per_s": round(tokens / seconds, 1),
            "padded_tokens": padded,
            "padded_tokens_per_s": round(padded / seconds, 1),
            "passes_padded_tokens_per_s": [round(r, 1) for r in rates],
            "mean_tokens_per_text": round(tokens / len(texts), 1),
            "query_ms": round(sum(query_ms) / len(query_ms), 3),
        }

    # -- store ----------------------------------------------------------------------------

    def store(self) -> dict[str, Any]:
        import dataclasses

        import numpy as np

        from fourfold.types import chunk_point_id

        domain = self.domain
        retriever = domain.retriever
        store = retriever.open_store()
        emb = domain.embedder
        count = 256 if self.quick else 1024
        base = self.chunks[: len(self.vectors)]
        points, vectors = [], []
        for i in range(count):
            c = base[i % len(base)]
            points.append(dataclasses.replace(c, id=chunk_point_id(emb.model_id, c.source, c.text_hash, i), ordinal=i))
            vectors.append(self.vectors[i % len(base)])
        matrix = np.vstack(vectors).astype(np.float32) if store.needs_vectors else None
        location = self.work / "store" / "v000001" / "store"
        location.parent.mkdir(parents=True)
        started = time.perf_counter()
        writer = store.create_version(location, None)
        for i in range(0, count, 256):
            writer.upsert(points[i : i + 256], None if matrix is None else matrix[i : i + 256])
        write_s = time.perf_counter() - started
        t = time.perf_counter()
        writer.commit()
        commit_s = time.perf_counter() - t
        t = time.perf_counter()
        reader = store.open_version(location)
        open_s = time.perf_counter() - t
        try:
            retriever.search(reader, "warm up", top_k=5)
            search_ms = []
            for q in _QUESTIONS:
                t = time.perf_counter()
                self.passages[q] = retriever.search(reader, q, top_k=4)
                search_ms.append((time.perf_counter() - t) * 1000)
        finally:
            reader.close()
        try:
            store.delete_version(location)
        except Exception:
            pass
        return {
            "retriever": retriever.name,
            "store_id": store.store_id,
            "points": count,
            "write_s": round(write_s, 4),
            "points_per_s": round(count / write_s, 1),
            "commit_s": round(commit_s, 4),
            "open_s": round(open_s, 4),
            "search_ms": round(sum(search_ms) / len(search_ms), 3),
            "search_note": "end to end: includes embedding the query",
        }

    # -- training ---------------------------------------------------------------------------

    def training(self) -> dict[str, Any]:
        from fourfold.advisor.models import gpt2_shape

        spec = self.domain.host.get("trainer", "causal-lm")
        if spec is None:
            raise FourfoldError("no 'causal-lm' trainer is registered")
        texts = [d.text for d in self.domain.knowledge_documents()]
        points = []
        for i, point in enumerate(TRAINING_POINTS):
            values = {**point, **_TRAINING_COMMON}
            if self.quick:
                values["steps"] = max(8, point["steps"] * 2 // 3)
            trainer = self.domain.build("trainer", "causal-lm", spec.cls.Config(**values))
            out = self.work / f"causal-lm-{i}"
            clock = _StepClock()
            _import_training_libraries()  # measured on their own ("imports"), not as set-up
            started = time.perf_counter()
            result = trainer.train(texts, out, clock, work_dir=self.work / f"causal-lm-{i}-work")
            total = time.perf_counter() - started
            m = result.metrics
            step_s, first_extra = _steady_step(clock.durations("train"))
            shape = gpt2_shape(vocab=int(m["vocab_size"]), width=point["width"], layers=point["layers"], context=point["context"], heads=point["heads"])
            steps = int(m.get("steps_this_run") or m.get("final_step") or values["steps"])
            loop_s = float(m.get("seconds_this_run") or m.get("train_seconds"))
            tokens_step = point["batch_size"] * point["context"]
            points.append(
                {
                    "config": values,
                    "parameters": int(m["parameters"]),
                    "compute_parameters": shape.compute_parameters,
                    "train_tokens": int(m.get("train_tokens", 0)),
                    "steps": steps,
                    "tokens_per_step": tokens_step,
                    "flops_per_step": tokens_step * shape.training_flops_per_token(point["context"]),
                    "loop_s": round(loop_s, 4),
                    "step_s": round(step_s or loop_s / steps, 5),
                    "first_step_extra_s": round(first_extra, 4),
                    "tokens_per_s": m.get("tokens_per_s"),
                    "total_s": round(total, 4),
                    "setup_s": round(total - steps * (step_s or loop_s / steps), 4),
                    "heldout_tokens": int(m.get("heldout_tokens", 0)),
                    "eval_flops": 2 * int(m.get("heldout_tokens", 0)) * shape.forward_flops_per_token(point["context"]),
                    "device": m.get("device"),
                }
            )
            if i == 0:
                self.small_model = out
        return {"trainer": "causal-lm", "points": points}

    def lora(self) -> dict[str, Any]:
        from fourfold.advisor.models import shape_from_folder

        if self.small_model is None:
            raise FourfoldError("needs the small model of the causal-lm measurement")
        spec = self.domain.host.get("fine_tuner", "lora")
        if spec is None:
            raise FourfoldError("no 'lora' fine-tuner is registered")
        steps = 4 if self.quick else 8
        config = spec.cls.Config(
            base=str(self.small_model), steps=steps, batch_size=4, max_length=64, warmup_steps=1, save_every=100_000,
            max_eval_examples=8, rank=8,
        )
        tuner = self.domain.build("fine_tuner", "lora", config)
        _import_training_libraries()  # measured on their own ("imports"), not as set-up
        out = self.work / "lora"
        clock = _StepClock()
        started = time.perf_counter()
        result = tuner.fine_tune(out, clock, work_dir=self.work / "lora-work")
        total = time.perf_counter() - started
        m = result.metrics
        step_s, first_extra = _steady_step(clock.durations("fine-tune"))
        shape = shape_from_folder(self.small_model)
        loop_s = float(m.get("seconds_this_run") or m.get("train_seconds"))
        steps_done = int(m.get("steps_this_run") or m.get("final_step") or steps)
        tokens_per_example = 0.0
        if m.get("tokens_per_s") and m.get("steps_per_s"):
            tokens_per_example = float(m["tokens_per_s"]) / (float(m["steps_per_s"]) * 4)
        tokens_step = 4 * tokens_per_example
        lora_params = int(m.get("trainable_parameters") or shape.lora_parameters(8))
        return {
            "fine_tuner": "lora",
            "base_parameters": shape.parameters,
            "compute_parameters": shape.compute_parameters,
            "trainable_parameters": lora_params,
            "steps": steps_done,
            "tokens_per_step": round(tokens_step, 1),
            "flops_per_step": tokens_step * shape.lora_flops_per_token(tokens_per_example or 32, lora_params),
            "loop_s": round(loop_s, 4),
            "step_s": round(step_s or loop_s / max(steps_done, 1), 5),
            "first_step_extra_s": round(first_extra, 4),
            "total_s": round(total, 4),
            "setup_s": round(total - steps_done * (step_s or loop_s / max(steps_done, 1)), 4),
            "heldout_tokens": int(m.get("heldout_tokens", 0)),
            "train_examples": int(m.get("train_examples", 0)),
            "device": m.get("device"),
        }

    # -- generation -------------------------------------------------------------------------

    def extractive(self) -> dict[str, Any]:
        from fourfold.types import GenerationLimits

        gen = self.domain.build("generator", "extractive")
        strategy = self.domain.prompt_strategy
        questions = _QUESTIONS[:2] if self.quick else _QUESTIONS[:4]
        times = []
        for q in questions:
            passages = self.passages.get(q) or []
            prompt = strategy.build(q, passages, [])
            t = time.perf_counter()
            gen.generate(prompt, GenerationLimits(max_tokens=200))
            times.append((time.perf_counter() - t) * 1000)
        return {"questions": len(times), "passages": 4, "ms_per_question": round(sum(times) / len(times), 3), "note": "sentence vectors not cached yet (first sight)"}

    def _decode(self, generator, tokenizer, question: str, max_tokens: int) -> dict[str, Any]:
        """Time to first text and decode rate through the generator's own stream."""
        from fourfold.types import GenerationLimits, Message, Prompt

        prompt = Prompt(messages=[Message("user", question)], question=question, passages=[])
        started = time.perf_counter()
        first_at = None
        first_text = ""
        text = ""
        for piece in generator.stream(prompt, GenerationLimits(max_tokens=max_tokens, timeout_s=120)):
            if first_at is None:
                first_at = time.perf_counter()
                first_text = piece
            text += piece
        end = time.perf_counter()
        total_tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"])
        first_tokens = len(tokenizer(first_text, add_special_tokens=False)["input_ids"])
        rest = total_tokens - first_tokens
        out = {"generated_tokens": total_tokens, "first_text_s": round((first_at or end) - started, 4), "total_s": round(end - started, 4)}
        if first_at is not None and rest >= 2 and end > first_at:
            out["decode_tokens_per_s"] = round(rest / (end - first_at), 2)
        elif total_tokens and end > started:
            out["decode_tokens_per_s"] = round(total_tokens / (end - started), 2)
        return out

    def transformers_small(self) -> dict[str, Any]:
        from transformers import AutoTokenizer

        from fourfold.advisor.models import shape_from_folder

        if self.small_model is None:
            raise FourfoldError("needs the small model of the causal-lm measurement")
        spec = self.domain.host.get("generator", "transformers")
        gen = self.domain.build(
            "generator", "transformers", spec.cls.Config(model=str(self.small_model), max_tokens=24, repetition_penalty=1.0, prompt_format="plain")
        )
        started = time.perf_counter()
        gen.prepare(NullProgress())
        load_s = time.perf_counter() - started
        tokenizer = AutoTokenizer.from_pretrained(str(self.small_model))
        decode = self._decode(gen, tokenizer, "What raises cholesterol?", 24)
        shape = shape_from_folder(self.small_model)
        return {"model": "causal-lm (calibration)", "parameters": shape.parameters, "compute_parameters": shape.compute_parameters, "load_s": round(load_s, 4), **decode}

    def smollm2(self) -> dict[str, Any] | None:
        import torch

        from fourfold.advisor.models import shape_from_folder

        settings = self.domain.settings
        checkpoint = settings.state_dir / "models" / "smollm2"
        converted = (checkpoint / "config.json").is_file()
        if not converted and self.quick:
            self.skipped["smollm2"] = "not converted yet and --quick given: run 'fourfold calibrate' without --quick (converts once)"
            return None
        spec = self.domain.host.get("generator", "smollm2")
        if spec is None:
            raise FourfoldError("no 'smollm2' generator is registered")
        gen = self.domain.build("generator", "smollm2", spec.cls.Config(max_tokens=16))
        started = time.perf_counter()
        gen.prepare(NullProgress())  # converts the GGUF the first time
        load_s = time.perf_counter() - started
        out: dict[str, Any] = {"checkpoint": "reused" if converted else "converted now", "load_s": round(load_s, 4)}
        if not converted:
            out["note"] = "the first load converted the GGUF into a checkpoint in the state dir; later loads take well under a second"
        folder = Path(gen.model_path())
        shape = shape_from_folder(folder)
        out.update(parameters=shape.parameters, compute_parameters=shape.compute_parameters)
        local = gen.loaded() if hasattr(gen, "loaded") else None
        if local is None:
            raise FourfoldError("the smollm2 generator does not expose its loaded model")
        model, tokenizer = local.model, local.tokenizer
        text = " ".join(c.text for c in self.chunks[:3])
        ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"][:, :256]
        with torch.inference_mode():
            model(input_ids=ids[:, :16])  # warm up
            times = []
            for _ in range(1 if self.quick else 3):
                t = time.perf_counter()
                model(input_ids=ids)
                times.append(time.perf_counter() - t)
            prefill_s = sum(times) / len(times)
        out["prefill_tokens"] = int(ids.shape[1])
        out["prefill_s"] = round(prefill_s, 4)
        out["prefill_tokens_per_s"] = round(ids.shape[1] / prefill_s, 1)
        out.update(self._decode(gen, tokenizer, "List five fruits.", 16))
        if not self.quick:
            out["train_step"] = _training_pass(folder, local, ids, shape)
        return out

    # -- disk -------------------------------------------------------------------------------

    def disk(self) -> dict[str, Any]:
        size = (16 if self.quick else 64) * 2**20
        block = bytes(2**20)
        path = self.work / "disk.bin"
        started = time.perf_counter()
        with path.open("wb") as fh:
            for _ in range(size // len(block)):
                fh.write(block)
            fh.flush()
            os.fsync(fh.fileno())
        seconds = time.perf_counter() - started
        path.unlink()
        return {"bytes": size, "seconds": round(seconds, 4), "write_bytes_per_s": round(size / seconds)}


def _import_training_libraries() -> None:
    import peft  # noqa: F401
    from transformers import Trainer, TrainingArguments  # noqa: F401


def _training_pass(folder: Path, local: Any, ids: Any, shape: Any) -> dict[str, Any]:
    """One forward + backward pass over 2 × 128 tokens of the full model, after a short
    warm-up pass: the FLOP rate of training a model of this size (the small causal-LM
    points are overhead-bound). On a GPU a copy is moved there and run under bf16
    autocast, as the trainers do."""
    import torch

    batch = ids[:, :128].repeat(2, 1)
    tokens = int(batch.numel())
    flops = tokens * shape.training_flops_per_token(batch.shape[1])
    if torch.cuda.is_available():
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).to("cuda").train()
        batch = batch.to("cuda")
        try:
            for attempt in range(2):  # the first pass pays for kernel selection
                torch.cuda.synchronize()
                t = time.perf_counter()
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    loss = model(input_ids=batch, labels=batch).loss
                loss.backward()
                torch.cuda.synchronize()
                seconds = time.perf_counter() - t
                model.zero_grad(set_to_none=True)
        finally:
            del model
            torch.cuda.empty_cache()
        device = "cuda (bf16 autocast)"
    else:
        model = local.model
        with local.lock:
            flags = [p.requires_grad for p in model.parameters()]
            model.train()
            try:
                for p in model.parameters():
                    p.requires_grad_(True)
                # A short pass first: the first backward allocates every gradient buffer.
                warm = batch[:1, :32]
                model(input_ids=warm, labels=warm).loss.backward()
                model.zero_grad(set_to_none=False)
                t = time.perf_counter()
                loss = model(input_ids=batch, labels=batch).loss
                loss.backward()
                seconds = time.perf_counter() - t
            finally:
                model.zero_grad(set_to_none=True)
                for p, flag in zip(model.parameters(), flags):
                    p.requires_grad_(flag)
                model.eval()
        device = "cpu"
    return {
        "tokens": tokens,
        "seconds": round(seconds, 4),
        "flops": flops,
        "flops_per_s": flops / seconds,
        "device": device,
        "note": "one forward + backward pass (no optimiser step) of the full model",
    }


def run_calibration(
    *,
    quick: bool = False,
    progress: Progress | None = None,
    settings: Settings | None = None,
    host: "PluginHost | None" = None,
    log: Callable[[str], None] | None = None,
    save: bool = True,
) -> dict[str, Any]:
    """Measure this machine and (unless ``save`` is false) store the figures in
    ``<state dir>/calibration.json``.

    :param quick: fewer texts and steps, no SmolLM2 conversion and no SmolLM2 training
        pass (about half the time; rougher figures, and none for 100M+ parameter
        training unless an earlier full calibration is merged in).
    :returns: the record written.
    """
    from fourfold.plugins import get_host

    settings = settings or get_settings()
    host = host or get_host()
    progress = progress or NullProgress()
    log = log or (lambda _line: None)
    started = time.perf_counter()
    machine = describe_machine(settings)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".calibration-", dir=settings.state_dir))
    try:
        run = _Run(_calibration_domain(host, settings), progress, quick, work, log)
        run.step("sample", run.sample)
        run.step("embedder", run.embedder)
        if "embedder" in run.result:
            run.step("store", run.store)
        run.step("imports", run.imports)
        run.step("training", run.training)
        run.step("lora", run.lora)
        if run.passages:
            run.step("extractive", run.extractive)
        run.step("transformers", run.transformers_small)
        run.step("smollm2", run.smollm2)
        run.step("disk", run.disk)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    record = {
        "format": CALIBRATION_FORMAT,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "quick": quick,
        "duration_s": round(time.perf_counter() - started, 2),
        "machine": machine,
        "load_average_after": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        **run.result,
        "skipped": run.skipped,
    }
    if save:
        write_json_atomic(calibration_file(settings), record)
    return record
