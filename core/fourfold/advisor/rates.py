"""Rates of this machine, derived from ``calibration.json``, each as a :class:`Figure`
that shows the measurements it comes from.

Training time per optimiser step is modelled as ``c0 + FLOPs per step / F(Nc)``: a fixed
per-step overhead of the training loop (data loading, optimiser, Python) plus compute at
an effective FLOP rate ``F`` that depends on the model's size — a CPU (or GPU) uses its
cores better on bigger matrix products. Two small runs of a trainer of different size
give ``c0`` and ``F`` at small sizes; a forward+backward pass of the largest generator
model timed (SmolLM2, 135M, with the builtins) gives ``F`` at that size; in between,
``F`` is interpolated on ``log(Nc)``, and beyond the largest measured size it is held
constant. A fine-tuning run's ``c0`` is measured on its own.

Decoding one token is modelled as ``c_dec + 2·Nc / F_dec`` from the generator models
whose generation was timed.
"""

from __future__ import annotations

import math
from typing import Any

from fourfold.advisor.figures import Figure, Input
from fourfold.errors import FourfoldError

__all__ = ["Rates", "MissingCalibration"]

# Fallbacks when a measurement is missing, each said to be an assumption where used.
_DECODE_VS_TRAIN = 3.0  # batch-1 decoding uses the cores a third as well as training


class MissingCalibration(FourfoldError):
    """The calibration lacks a figure an estimate needs."""


class Rates:
    """What this machine does per second, from a calibration record."""

    def __init__(self, calibration: dict[str, Any]):
        self.data = calibration
        self.machine = calibration.get("machine") or {}
        self.generators: dict[str, dict[str, Any]] = calibration.get("generators") or {}
        self._fit_training()
        self._fit_decode()

    # -- labels ----------------------------------------------------------------------------

    @property
    def label(self) -> str:
        m = self.machine
        if m.get("gpu"):
            return f"{m['gpu']['name']} (GPU) + {m.get('cores')} CPU cores"
        return f"{m.get('cpu', 'CPU')} ({m.get('cores')} cores, {m.get('torch_threads')} torch threads)"

    def _src(self, what: str) -> str:
        return f"calibration: {what}"

    # -- embedder and store --------------------------------------------------------------

    def _need(self, key: str) -> dict[str, Any]:
        value = self.data.get(key)
        if not value:
            why = (self.data.get("skipped") or {}).get(key, "not measured")
            raise MissingCalibration(f"the calibration has no '{key}' figures ({why}); run 'fourfold calibrate'")
        return value

    def embed_seconds(self, padded_tokens: float) -> Figure:
        """Embedding time for ``padded_tokens`` (texts batched by length and padded, as
        the embedder does), at the measured padded-token rate."""
        e = self._need("embedder")
        rate = e.get("padded_tokens_per_s") or e["tokens_per_s"]
        return Figure(
            padded_tokens / rate, "s", "padded tokens / embedder rate",
            {"padded tokens": Input(round(padded_tokens), "tokens", "chunk lengths in the embedder's tokenizer, batched longest first and padded"),
             "embedder rate": Input(rate, "tokens/s", self._src(f"{e['texts']} chunk-sized passages on {e['device']}, padded tokens"))},
        )

    def embedder_load(self) -> Figure:
        e = self._need("embedder")
        return Figure(e["load_s"], "s", "measured", {"embedder load": Input(e["load_s"], "s", self._src("first call"))})

    def query_seconds(self) -> Figure:
        """Search latency per question, query embedding included."""
        s = self.data.get("store")
        if s:
            return Figure(s["search_ms"] / 1000, "s", "measured", {"search": Input(s["search_ms"], "ms", self._src(f"{s['retriever']} top-4, query embedding included"))})
        e = self._need("embedder")
        return Figure(e["query_ms"] / 1000, "s", "measured", {"query embedding": Input(e["query_ms"], "ms", self._src("embedder, one query"))}, note="search time itself not measured")

    def store_write_seconds(self, points: float) -> Figure:
        s = self._need("store")
        return Figure(
            points / s["points_per_s"] + s["commit_s"] + s["open_s"], "s", "points / write rate + commit + open",
            {"points": Input(round(points), "points", "chunks"),
             "write rate": Input(s["points_per_s"], "points/s", self._src(f"{s['store_id']}, {s['points']} points")),
             "commit": Input(s["commit_s"], "s", self._src("optimise and close")),
             "open": Input(s["open_s"], "s", self._src("open for validation"))},
        )

    # -- training ---------------------------------------------------------------------------

    def _fit_training(self) -> None:
        points = ((self.data.get("training") or {}).get("points")) or []
        self.train_points = [(float(p["compute_parameters"]), float(p["flops_per_step"]), float(p["step_s"])) for p in points]
        self.c0 = 0.0
        self.c0_note = ""
        anchors: list[tuple[float, float]] = []  # (Nc, FLOP/s of compute alone)
        if len(self.train_points) >= 2:
            (na, fa, sa), (nb, fb, sb) = self.train_points[0], self.train_points[-1]
            if sb > sa and fb > fa:
                f_small = (fb - fa) / (sb - sa)
                self.c0 = max(0.0, sa - fa / f_small)
                self.c0_note = "from two trainer sizes: c0 = step_A − FLOPs_A / F with F = ΔFLOPs/Δstep"
            else:
                self.c0_note = "the two trainer sizes did not separate (noisy machine); c0 taken as 0"
        if self.train_points:
            n, f, s = self.train_points[-1]
            anchors.append((n, f / max(s - self.c0, s * 0.2)))
        for g in self.generators.values():
            if g.get("train_step"):
                anchors.append((float(g["compute_parameters"]), float(g["train_step"]["flops_per_s"])))
        self.anchors = sorted(anchors)

    def train_flops_rate(self, compute_parameters: float) -> Figure:
        """``F(Nc)``: effective training FLOP/s for a model of ``Nc`` multiplied weights."""
        if not self.anchors:
            raise MissingCalibration("the calibration has no training figures; run 'fourfold calibrate'")
        lo_n, lo_f = self.anchors[0]
        hi_n, hi_f = self.anchors[-1]
        n = max(compute_parameters, 1.0)
        inputs = {f"F at {lo_n:,.0f} Nc": Input(round(lo_f), "FLOP/s", self._src("trainer runs"))}
        if len(self.anchors) > 1:
            inputs[f"F at {hi_n:,.0f} Nc"] = Input(round(hi_f), "FLOP/s", self._src("forward+backward of a generator's model"))
        if n <= lo_n or len(self.anchors) == 1:
            note = "" if n <= lo_n else "no measurement at this size: the largest measured size's rate is used (larger models usually run faster per FLOP, so time is overestimated)"
            return Figure(lo_f, "FLOP/s", "F measured at the nearest size", inputs, note=note)
        if n >= hi_n:
            return Figure(hi_f, "FLOP/s", "F measured at the nearest size", inputs)
        t = (math.log(n) - math.log(lo_n)) / (math.log(hi_n) - math.log(lo_n))
        value = math.exp(math.log(lo_f) + t * (math.log(hi_f) - math.log(lo_f)))
        return Figure(value, "FLOP/s", "F interpolated on log(Nc) between measured sizes", inputs)

    def train_step_seconds(self, flops_per_step: float, compute_parameters: float, *, kind: str = "pretrain") -> Figure:
        """``c0 + FLOPs per step / F(Nc)`` (``kind`` ``fine-tune`` uses the fine-tuning
        loop's own c0)."""
        f = self.train_flops_rate(compute_parameters)
        c0, c0_src = self.c0, self.c0_note or "calibration"
        if kind == "fine-tune":
            c0, c0_src = self.fine_tune_step_overhead()
        value = c0 + flops_per_step / f.value
        return Figure(
            value, "s", "c0 + FLOPs per step / F(Nc)",
            {"c0": Input(round(c0, 5), "s", c0_src), "FLOPs per step": Input(flops_per_step, "FLOPs", "derived"),
             "F(Nc)": Input(round(f.value), "FLOP/s", f.formula)},
            note=f.note,
        )

    def fine_tune_step_overhead(self) -> tuple[float, str]:
        lo = self.data.get("fine_tuning")
        if not lo:
            return self.c0, "no fine-tuning calibration: the trainer's c0 used"
        f = self.train_flops_rate(lo["compute_parameters"]).value
        return max(0.0, lo["step_s"] - lo["flops_per_step"] / f), f"calibration: {lo['fine_tuner']} step {lo['step_s']:.3g} s on a {lo['base_parameters']:,}-parameter model, less its compute"

    def import_seconds(self) -> Figure:
        """Importing torch, transformers' Trainer and peft in a fresh process (0 with a
        calibration made before this was measured)."""
        value = (self.data.get("imports") or {}).get("training_libraries_s")
        if value is None:
            return Figure(0.0, "s", "not measured", note="re-run 'fourfold calibrate' to include it")
        return Figure(value, "s", "measured", {"import": Input(value, "s", self._src("cold import of torch, transformers' Trainer and peft"))})

    def setup_seconds(self, kind: str) -> Figure:
        """A run's fixed cost besides its steps (building the Trainer, tokenizing, saving a
        small model), less the held-out evaluation, which is estimated separately."""
        if kind == "fine-tune":
            lo = self._need("fine_tuning")
            eval_s = 2 * lo["heldout_tokens"] * 2 * lo["compute_parameters"] / self.train_flops_rate(lo["compute_parameters"]).value
            value = max(0.0, lo["setup_s"] - eval_s)
            return Figure(value, "s", "measured set-up − its evaluation",
                          {"set-up": Input(lo["setup_s"], "s", self._src(f"{lo['fine_tuner']} run on a small model: total − steps × steady step time"))})
        points = ((self.data.get("training") or {}).get("points")) or []
        if not points:
            raise MissingCalibration("the calibration has no training figures; run 'fourfold calibrate'")
        p = points[-1]
        eval_s = p["eval_flops"] / self.train_flops_rate(p["compute_parameters"]).value
        value = max(0.0, p["setup_s"] - eval_s)
        return Figure(value, "s", "measured set-up − its evaluation", {"set-up": Input(p["setup_s"], "s", self._src(f"{self.data['training'].get('trainer', 'trainer')} run: data, model, first-step warm-up, save; total − steps × steady step time"))})

    def forward_seconds(self, flops: float, compute_parameters: float) -> Figure:
        """Forward passes (held-out evaluation) at the training FLOP rate."""
        f = self.train_flops_rate(compute_parameters)
        return Figure(flops / f.value, "s", "FLOPs / F(Nc)", {"FLOPs": Input(flops, "FLOPs", "derived"), "F(Nc)": Input(round(f.value), "FLOP/s", f.formula)})

    def write_seconds(self, nbytes: float) -> Figure:
        d = self.data.get("disk")
        rate = d["write_bytes_per_s"] if d else 200e6
        return Figure(nbytes / rate, "s", "bytes / disk write rate",
                      {"bytes": Input(round(nbytes), "B", "weights (and optimiser state for checkpoints)"),
                       "disk write rate": Input(round(rate), "B/s", self._src("fsync'd write") if d else "assumption")})

    # -- generation ---------------------------------------------------------------------------

    def _fit_decode(self) -> None:
        pts = sorted((float(g["compute_parameters"]), 1.0 / float(g["decode_tokens_per_s"]), name)
                     for name, g in self.generators.items() if g.get("decode_tokens_per_s") and g.get("compute_parameters"))
        self.decode_points = pts
        self.c_dec = 0.0
        self.f_dec = None
        if len(pts) >= 2 and pts[-1][1] > pts[0][1]:
            (n1, t1, _), (n2, t2, _) = pts[0], pts[-1]
            self.f_dec = 2 * (n2 - n1) / (t2 - t1)
            self.c_dec = max(0.0, t1 - 2 * n1 / self.f_dec)
        elif pts and pts[-1][0] > 1e7:
            self.f_dec = 2 * pts[-1][0] / pts[-1][1]
        elif pts:
            self.c_dec = pts[0][1]

    def _largest(self, key: str) -> tuple[str, dict[str, Any]] | None:
        """The generator record with the largest model that has figure ``key``."""
        found = [(g.get("compute_parameters") or 0, name, g) for name, g in self.generators.items() if g.get(key)]
        if not found:
            return None
        _, name, g = max(found, key=lambda x: x[0])
        return name, g

    def decode_seconds_per_token(self, compute_parameters: float) -> Figure:
        inputs = {f"{name}": Input(round(1 / t, 2), "tokens/s", self._src(f"{name} decoding, {n:,.0f} Nc")) for n, t, name in self.decode_points}
        if self.f_dec:
            value = self.c_dec + 2 * compute_parameters / self.f_dec
            inputs["c_dec"] = Input(round(self.c_dec, 5), "s", "fit")
            inputs["F_dec"] = Input(round(self.f_dec), "FLOP/s", "fit")
            return Figure(value, "s", "c_dec + 2·Nc / F_dec", {**inputs, "Nc": Input(round(compute_parameters), "parameters", "model")})
        f = self.train_flops_rate(compute_parameters).value / _DECODE_VS_TRAIN
        value = self.c_dec + 2 * compute_parameters / f
        return Figure(value, "s", "c_dec + 2·Nc / (F(Nc)/3)", {**inputs, "F(Nc)/3": Input(round(f), "FLOP/s", "assumption: batch-1 decoding uses the cores a third as well as training")},
                      note="decoding of a model of 10M+ parameters not measured")

    def prefill_seconds(self, tokens: float, flops: float, compute_parameters: float) -> Figure:
        found = self._largest("prefill_tokens_per_s")
        if found:
            name, g = found
            rate = g["prefill_tokens_per_s"] * 2 * g["compute_parameters"]  # FLOP/s on the weight products
            return Figure(flops / rate, "s", "prompt FLOPs / prefill FLOP rate",
                          {"prompt tokens": Input(round(tokens), "tokens", "prompt"), "prompt FLOPs": Input(flops, "FLOPs", "derived"),
                           "prefill FLOP rate": Input(round(rate), "FLOP/s", self._src(f"{name}'s model read {g['prefill_tokens']} tokens at {g['prefill_tokens_per_s']} tokens/s"))})
        f = self.train_flops_rate(compute_parameters).value
        return Figure(flops / f, "s", "prompt FLOPs / F(Nc)", {"prompt FLOPs": Input(flops, "FLOPs", "derived"), "F(Nc)": Input(round(f), "FLOP/s", "training rate (prefill not measured)")})

    def model_load_seconds(self, weight_bytes: float) -> Figure:
        found = self._largest("model_load_s")
        if found:
            name, g = found
            per_byte = g["model_load_s"] / (g["parameters"] * 4)
            return Figure(weight_bytes * per_byte, "s", f"weight bytes × {name}'s model load time per byte",
                          {"weight bytes": Input(round(weight_bytes), "B", "model"), f"{name} load": Input(g["model_load_s"], "s", self._src("transformers load of its model"))})
        return Figure(0.5, "s", "assumption", {"load": Input(0.5, "s", "assumption")}, note="no model load measured")

    def generator_seconds(self, name: str) -> Figure:
        """Time per question of generator ``name``, as the calibration measured it."""
        g = self.generators.get(name) or {}
        if not g.get("ms_per_question"):
            why = (self.data.get("skipped") or {}).get(f"generator {name}", "not measured")
            raise MissingCalibration(f"the calibration did not time generator '{name}' ({why}); run 'fourfold calibrate'")
        return Figure(g["ms_per_question"] / 1000, "s", "measured",
                      {name: Input(g["ms_per_question"], "ms", self._src(f"{g['passages']} passages, first sight"))})
