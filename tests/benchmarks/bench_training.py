"""Training from scratch: throughput and what it learns, at two model sizes.

    python tests/benchmarks/bench_training.py [--steps 120] [--sizes small,medium]
        [--knowledge DIR] [--home DIR]

Runs the ``causal-lm`` trainer through ``fourfold train``'s own stage (BPE tokenizer on
the knowledge, GPT-2-style model, transformers Trainer, checkpoints) on the markdown and
text files of ../shared/data/kb-medical, once per size, and prints training tokens/s,
parameters, held-out perplexity before → after, and model FLOPs/s (6·N + attention per
token). On a CUDA device it trains in bf16 and also prints model FLOPs utilisation
against the GPU's dense bf16 peak.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

KB_MEDICAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "kb-medical"

SIZES = {
    "small": {"layers": 2, "width": 128, "heads": 4, "context": 128, "batch_size": 16},
    "medium": {"layers": 4, "width": 256, "heads": 4, "context": 256, "batch_size": 8},
    "large": {"layers": 8, "width": 512, "heads": 8, "context": 512, "batch_size": 8},
}

# Dense bf16 tensor-core peaks (FLOP/s) for model FLOPs utilisation.
GPU_PEAKS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12, "L4": 121e12}


def flops_per_token(parameters: int, size: dict) -> float:
    """Training FLOPs per token: 6 × the parameters used as matrices (blocks and the
    output layer, i.e. all but the position table; the input lookup is tied to the
    output layer) plus attention scores (Kaplan et al. 2020: 6·n_layer·n_ctx·d_model
    for forward and backward)."""
    matmul_parameters = parameters - size["context"] * size["width"]
    return 6 * matmul_parameters + 6 * size["layers"] * size["context"] * size["width"]


def gpu_peak() -> tuple[str, float | None]:
    import torch

    if not torch.cuda.is_available():
        return "cpu", None
    name = torch.cuda.get_device_name(0)
    return name, next((peak for key, peak in GPU_PEAKS.items() if key in name), None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--sizes", default="small,medium", help=f"comma-separated, of: {', '.join(SIZES)}")
    parser.add_argument("--knowledge", type=Path, default=KB_MEDICAL)
    parser.add_argument("--home", type=Path, default=None, help="state dir (default: a temporary one)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="fourfold-bench-training-"))
    home.mkdir(parents=True, exist_ok=True)
    os.environ["FOURFOLD_HOME"] = str(home)

    from fourfold.domain import Domain
    from fourfold.training import run_training

    device, peak = gpu_peak()
    print(f"knowledge: {args.knowledge} (md, txt); device: {device}; {args.steps} steps per size", flush=True)
    results = []
    for name in args.sizes.split(","):
        size = SIZES[name]
        config = {**size, "steps": args.steps, "save_every": max(10, args.steps // 4), "warmup_steps": min(20, args.steps // 10)}
        manifest = home / f"bench-{name}.yaml"
        manifest.write_text(
            "fourfold: 1\ndomain: bench\ntitle: training benchmark\n"
            f"knowledge: {{sources: [{{path: '{args.knowledge}', include: ['**/*.md', '**/*.txt']}}]}}\n"
            f"training: {json.dumps({'use': 'causal-lm', 'artifact': f'bench-{name}', 'with': config})}\n",
            encoding="utf-8",
        )
        started = time.perf_counter()
        run = run_training(Domain.from_file(manifest), force=True)
        wall = time.perf_counter() - started
        m = run.artifact.metrics
        model_flops = flops_per_token(m["parameters"], size) * m["tokens_per_s"]
        row = {
            "size": name,
            **size,
            "parameters": m["parameters"],
            "tokens_per_s": m["tokens_per_s"],
            "model_tflops": round(model_flops / 1e12, 4),
            "mfu": round(model_flops / peak, 4) if peak else None,
            "ppl_before": m["before"]["heldout_perplexity"],
            "ppl_after": m["after"]["heldout_perplexity"],
            "train_s": m["train_seconds"],
            "stage_s": round(wall, 1),
            "train_tokens": m["train_tokens"],
            "device": m["device"],
        }
        results.append(row)
        print(
            f"{name:7} {size['layers']}x{size['width']} ctx {size['context']} batch {size['batch_size']}: "
            f"{m['parameters'] / 1e6:.2f} M params, {m['tokens_per_s']:,.0f} tokens/s, "
            f"{row['model_tflops']:.4f} model TFLOP/s" + (f" (MFU {row['mfu']:.1%})" if peak else "") + ", "
            f"held-out perplexity {row['ppl_before']:,.0f} → {row['ppl_after']:,.1f}, "
            f"training {m['train_seconds']:.0f} s, stage {wall:.0f} s",
            flush=True,
        )
    if len(results) == 2:
        a, b = results
        print(f"{b['size']} vs {a['size']}: {b['parameters'] / a['parameters']:.1f}x parameters, "
              f"{a['tokens_per_s'] / b['tokens_per_s']:.1f}x fewer tokens/s")
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
