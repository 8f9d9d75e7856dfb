"""``fourfold calibrate``: measure what this machine does per second, once, through the
real components.

Each measurement runs registered components on real text (a few consumer-health pages
shipped in ``calibration_text/``, written for fourfold and illustrative only), chosen
and sized through the plugin API only — their ``calibration_configs()`` and
``cost_profile()`` — never by name:

- the domain's embedder on chunk-sized passages (tokens/s), its load time and query
  latency;
- the retriever's store: points written per second, optimise time, search latency;
- the first trainer that offers calibration runs, at two small sizes (tokens/s, step
  time, set-up time) — two sizes separate the per-step overhead from the FLOP rate;
- the first causal-LM fine-tuner that offers one, on the small model just trained
  (step time, set-up time);
- every generator that offers calibration runs: time per question for one without a
  model; load time, prefill and decode tokens/s for one with a model, plus (not with
  ``--quick``) one forward+backward pass of the largest model for the FLOP rate at
  that size;
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

from fourfold.advisor.profile import padded_tokens
from fourfold.advisor.resolve import cost_profile, embedder_work
from fourfold.components import NullProgress, Progress
from fourfold.errors import FourfoldError
from fourfold.files import write_json_atomic
from fourfold.settings import Settings, get_settings
from fourfold.sizing import ModelShape

if TYPE_CHECKING:
    from fourfold.domain import Domain
    from fourfold.plugins import PluginHost

__all__ = [
    "CALIBRATION_FILE",
    "CALIBRATION_FORMAT",
    "SAMPLE_FOLDER",
    "calibration_file",
    "load_calibration",
    "run_calibration",
    "describe_machine",
]

CALIBRATION_FILE = "calibration.json"
CALIBRATION_FORMAT = 2  # 1 kept builtins' figures under their names; read and converted
SAMPLE_FOLDER = Path(__file__).resolve().parent / "calibration_text"
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
    if data.get("format") == 1:
        return _from_format_1(data)
    if data.get("format") != CALIBRATION_FORMAT:
        return None
    return data


def _from_format_1(data: dict[str, Any]) -> dict[str, Any]:
    """A format-1 record (figures under the builtins' names) in today's layout."""
    data = {**data, "format": CALIBRATION_FORMAT}
    if "lora" in data:
        data["fine_tuning"] = {"fine_tuner": "lora", **data.pop("lora")}
    generators = {}
    for name in ("extractive", "transformers", "smollm2"):
        g = data.pop(name, None)
        if g:
            reused = name == "transformers" or g.get("checkpoint") == "reused"
            generators[name] = {**g, **({"model_load_s": g["load_s"]} if reused and "load_s" in g else {})}
    data["generators"] = generators
    data["skipped"] = {(f"generator {k}" if k in ("extractive", "transformers", "smollm2") else k): v for k, v in (data.get("skipped") or {}).items()}
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

    def durations(self) -> list[float]:
        """Step durations of the stage that advanced most: the optimiser steps."""
        marks = max(self.marks.values(), key=len, default=[])
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
        self.generators: dict[str, Any] = {}

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
        work = embedder_work(self.domain)
        batch = work.batch_size if work is not None else 32
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
            "batch_size": batch if work is not None else None,
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

    def _time_run(self, component: Any, out: Path, run: Callable[[_StepClock], Any]) -> dict[str, Any]:
        """Run one calibration run of a trainer or fine-tuner: its steps timed by the
        progress it reports, its FLOPs from its cost description, its size from the model
        it saved."""
        work = cost_profile(component)
        _import_training_libraries()  # measured on their own ("imports"), not as set-up
        clock = _StepClock()
        started = time.perf_counter()
        run(clock)
        total = time.perf_counter() - started
        durations = clock.durations()
        if not durations:
            raise FourfoldError(f"{component.name} reported no steps to its progress (one advance per optimiser step)")
        step_s, first_extra = _steady_step(durations)
        steps, loop_s = len(durations), sum(durations)
        return {"work": work, "shape": ModelShape.from_folder(out), "steps": steps, "loop_s": round(loop_s, 4), "step_s": round(step_s, 5),
                "first_step_extra_s": round(first_extra, 4), "total_s": round(total, 4), "setup_s": round(total - steps * step_s, 4)}

    def training(self) -> dict[str, Any]:
        spec, configs = _offering(self.domain.host.components("trainer").values(), lambda cls: cls.calibration_configs(quick=self.quick))
        texts = [d.text for d in self.domain.knowledge_documents()]
        points = []
        for i, values in enumerate(configs):
            trainer = self.domain.build("trainer", spec.name, spec.cls.Config.model_validate(values))
            out = self.work / f"trainer-{i}"
            t = self._time_run(trainer, out, lambda clock: trainer.train(texts, out, clock, work_dir=self.work / f"trainer-{i}-work"))
            work, shape = t.pop("work"), t.pop("shape")
            seq = work.sequence_tokens
            tokens_step = work.batch_size * seq
            held_tokens = work.max_held_out * seq
            points.append({
                "config": values, "parameters": shape.parameters, "compute_parameters": shape.compute_parameters, **t,
                "tokens_per_step": tokens_step, "flops_per_step": tokens_step * shape.training_flops_per_token(seq),
                "tokens_per_s": round(tokens_step / t["step_s"], 1), "heldout_tokens": held_tokens,
                "eval_flops": 2 * held_tokens * shape.forward_flops_per_token(seq),
            })
            if i == 0:
                self.small_model = out
        return {"trainer": spec.name, "plugin": spec.plugin, "points": points}

    def fine_tuning(self) -> dict[str, Any]:
        if self.small_model is None:
            raise FourfoldError("needs the small model of the trainer measurement")
        tuners = [s for s in self.domain.host.components("fine_tuner").values() if s.cls.produces == "causal-lm"]
        spec, configs = _offering(tuners, lambda cls: cls.calibration_configs(str(self.small_model), quick=self.quick))
        tuner = self.domain.build("fine_tuner", spec.name, spec.cls.Config.model_validate(configs[0]))
        out = self.work / "fine-tuner"
        t = self._time_run(tuner, out, lambda clock: tuner.fine_tune(out, clock, work_dir=self.work / "fine-tuner-work"))
        work, _ = t.pop("work"), t.pop("shape")
        shape = ModelShape.from_folder(self.small_model)
        seq = work.sequence_tokens  # examples padded to at most this many tokens: an upper bound
        tokens_step = work.batch_size * seq
        adapters = shape.lora_parameters(work.adapter_rank) if work.adapter_rank else 0
        per_token = shape.lora_flops_per_token(seq, adapters) if work.adapter_rank else shape.training_flops_per_token(seq)
        return {
            "fine_tuner": spec.name, "plugin": spec.plugin, "base_parameters": shape.parameters, "compute_parameters": shape.compute_parameters,
            "trainable_parameters": adapters or shape.parameters, "tokens_per_step": tokens_step, "flops_per_step": tokens_step * per_token,
            "heldout_tokens": work.max_held_out * seq, **t,
        }

    # -- generation -------------------------------------------------------------------------

    def generators_(self) -> None:
        """Every generator that offers calibration runs, each a step of its own."""
        model = str(self.small_model) if self.small_model is not None else None
        for spec in self.domain.host.components("generator").values():
            configs = spec.cls.calibration_configs(model, quick=self.quick)
            if configs:
                self.step(f"generator {spec.name}", lambda spec=spec, config=configs[0]: self._generator(spec, config))
        largest = max(((g.get("compute_parameters") or 0, name) for name, g in self.generators.items() if g.get("folder")), default=None)
        if largest is not None and not self.quick:
            name = largest[1]
            self.step(f"generator {name} training pass", lambda: self.generators[name].update(train_step=_training_pass(Path(self.generators[name]["folder"]), self.chunks)))
        for g in self.generators.values():
            g.pop("folder", None)
        if self.generators:
            self.result["generators"] = self.generators

    def _generator(self, spec: Any, config: dict[str, Any]) -> None:
        gen = self.domain.build("generator", spec.name, spec.cls.Config.model_validate(config))
        work = cost_profile(gen)
        if work.remote:
            return
        if work.model is None and work.model_ref is None:
            self.generators[spec.name] = {"plugin": spec.plugin, **self._per_question(gen)}
            return
        started = time.perf_counter()
        gen.prepare(NullProgress())  # may download or convert the model the first time
        load_s = time.perf_counter() - started
        work = cost_profile(gen)  # now with the model's folder
        if work.model_folder is None:
            raise FourfoldError(f"generator '{spec.name}' describes no model folder after prepare(); its tokens cannot be counted")
        folder = Path(work.model_folder)
        shape = work.model or ModelShape.from_folder(folder)
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        record = {"plugin": spec.plugin, "parameters": shape.parameters, "compute_parameters": shape.compute_parameters, "load_s": round(load_s, 4),
                  **_prefill(folder, tokenizer, self.chunks, min(256, shape.context), repeats=1 if self.quick else 3)}
        record.update(self._decode(gen, tokenizer, "List five fruits.", int(config.get("max_tokens") or work.max_tokens or 16)))
        self.generators[spec.name] = {**record, "folder": str(folder)}

    def _per_question(self, gen: Any) -> dict[str, Any]:
        from fourfold.types import GenerationLimits

        if not self.passages:
            raise FourfoldError("needs the passages of the store measurement")
        strategy = self.domain.prompt_strategy
        questions = _QUESTIONS[:2] if self.quick else _QUESTIONS[:4]
        times = []
        for q in questions:
            prompt = strategy.build(q, self.passages.get(q) or [], [])
            t = time.perf_counter()
            gen.generate(prompt, GenerationLimits(max_tokens=200))
            times.append((time.perf_counter() - t) * 1000)
        return {"questions": len(times), "passages": 4, "ms_per_question": round(sum(times) / len(times), 3), "note": "first sight of each passage (nothing cached)"}

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


def _offering(specs: Any, configs_of: Callable[[type], list[dict[str, Any]]]) -> tuple[Any, list[dict[str, Any]]]:
    """The first component (registration order: builtins first) that offers calibration
    runs, and its runs."""
    specs = list(specs)
    for spec in specs:
        configs = configs_of(spec.cls)
        if configs:
            return spec, configs
    names = ", ".join(s.name for s in specs) or "none registered"
    raise FourfoldError(f"no component offers calibration runs (calibration_configs) among: {names}")


def _load_causal_lm(folder: Path) -> tuple[Any, float]:
    """The model in ``folder`` loaded with transformers, and the seconds it took."""
    import torch
    from transformers import AutoModelForCausalLM

    started = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    return model, time.perf_counter() - started


def _prefill(folder: Path, tokenizer: Any, chunks: list, tokens: int, *, repeats: int) -> dict[str, Any]:
    """Load time of the model in ``folder`` and its prefill rate on ``tokens`` tokens of
    the sample text."""
    import torch

    model, load_s = _load_causal_lm(folder)
    model.eval()
    text = " ".join(c.text for c in chunks[:3])
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"][:, :tokens]
    with torch.inference_mode():
        model(input_ids=ids[:, :16])  # warm up
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            model(input_ids=ids)
            times.append(time.perf_counter() - t)
    prefill_s = sum(times) / len(times)
    return {"model_load_s": round(load_s, 4), "prefill_tokens": int(ids.shape[1]), "prefill_s": round(prefill_s, 4),
            "prefill_tokens_per_s": round(ids.shape[1] / prefill_s, 1)}


def _training_pass(folder: Path, chunks: list) -> dict[str, Any]:
    """One forward + backward pass over 2 × 128 tokens of the model in ``folder``, after a
    warm-up pass: the FLOP rate of training a model of this size (the small trainer
    points are overhead-bound). On a GPU the model is moved there and run under bf16
    autocast, as the trainers do."""
    import torch
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    text = " ".join(c.text for c in chunks[:6])
    shape = ModelShape.from_folder(folder)
    batch = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"][:, : min(128, shape.context)].repeat(2, 1)
    tokens = int(batch.numel())
    flops = tokens * shape.training_flops_per_token(batch.shape[1])
    model, _ = _load_causal_lm(folder)
    cuda = torch.cuda.is_available()
    if cuda:
        model, batch = model.to("cuda"), batch.to("cuda")
    model.train()
    try:
        for attempt in range(2):  # the first pass pays for allocating gradients and picking kernels
            if cuda:
                torch.cuda.synchronize()
            t = time.perf_counter()
            with torch.autocast("cuda", dtype=torch.bfloat16) if cuda else _NoAutocast():
                loss = model(input_ids=batch, labels=batch).loss
            loss.backward()
            if cuda:
                torch.cuda.synchronize()
            seconds = time.perf_counter() - t
            model.zero_grad(set_to_none=False)
    finally:
        del model
        if cuda:
            torch.cuda.empty_cache()
    return {
        "tokens": tokens,
        "seconds": round(seconds, 4),
        "flops": flops,
        "flops_per_s": flops / seconds,
        "device": "cuda (bf16 autocast)" if cuda else "cpu",
        "note": "one forward + backward pass (no optimiser step) of the full model",
    }


class _NoAutocast:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> bool:
        return False


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

    :param quick: fewer texts and steps, nothing that takes long the first time (a
        generator's model conversion) and no training pass of a large model (about half
        the time; rougher figures, and none for 100M+ parameter training).
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
        run.step("fine_tuning", run.fine_tuning)
        run.generators_()
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
