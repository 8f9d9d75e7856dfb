"""All four methods end to end, as a user runs them, against the 10-minute CPU target.

    python tests/benchmarks/bench_all_methods.py [--manifest deploy/manifests/clinic-all-methods.yaml]
        [--question "How do I stop a nosebleed?"] [--home DIR]

Runs, each as its own process in a fresh state dir: ``fourfold train`` (from scratch),
``fourfold fine-tune`` (LoRA on the trained model), ``fourfold index build`` (hybrid
retrieval) and ``fourfold ask`` (grounded prompt → the fine-tuned generator), then
``fourfold train`` again to show the artifact is reused. Prints each step's wall time,
the artifacts' before → after metrics and the answer with its citations.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TARGET_S = 600


def fourfold(args: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "fourfold", *args], env=env, capture_output=True, text=True)
    took = time.perf_counter() - started
    if done.returncode != 0:
        print(done.stdout + done.stderr, file=sys.stderr)
        raise SystemExit(f"fourfold {' '.join(args)} failed with status {done.returncode}")
    return took, done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=REPO / "deploy" / "manifests" / "clinic-all-methods.yaml")
    parser.add_argument("--question", default="How do I stop a nosebleed?")
    parser.add_argument("--home", type=Path, default=None, help="state dir (default: a new temporary one)")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="fourfold-bench-all-"))
    env = {**os.environ, "FOURFOLD_HOME": str(home), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    manifest = str(args.manifest)
    print(f"manifest: {manifest}\nstate dir: {home}", flush=True)

    steps = [
        ("train", ["train", manifest, "--json"]),
        ("fine-tune", ["fine-tune", manifest, "--json"]),
        ("index build", ["index", "build", manifest, "--json"]),
        ("ask", ["ask", manifest, args.question, "--json"]),
    ]
    total = 0.0
    outputs = {}
    for label, command in steps:
        took, done = fourfold(command, env)
        total += took
        outputs[label] = json.loads(done.stdout)
        print(f"{label:12} {took:7.1f} s", flush=True)
    print(f"{'total':12} {total:7.1f} s (target <= {TARGET_S} s: {'met' if total <= TARGET_S else 'NOT met'})")

    took, done = fourfold(["train", manifest, "--json"], env)
    reused = json.loads(done.stdout)[0]["reused"]
    print(f"train again  {took:7.1f} s (artifact reused: {reused})")

    print("\nartifacts:")
    for run in outputs["train"] + [r for r in outputs["fine-tune"] if r["stage"] != "training"]:
        m = run["metrics"]
        extra = f", {m['tokens_per_s']:,.0f} tokens/s" if m.get("tokens_per_s") else ""
        print(
            f"  {run['name']:12} {run['kind']:9} by {run['component']:10} held-out perplexity "
            f"{m['before']['heldout_perplexity']:,.1f} → {m['after']['heldout_perplexity']:,.1f}, "
            f"{m['final_step']} steps{extra}"
        )
    report = outputs["index build"]
    print(f"\nindex: {report.get('version')} with {report.get('chunks_total')} chunks from {report.get('documents_total')} documents")
    answer = outputs["ask"]
    print(f"\nQ: {args.question}\nA: {answer['text']}")
    for c in answer["citations"]:
        print(f"  [{c['n']}] {c['source']}" + (f" › {c['heading']}" if c["heading"] else ""))
    print(f"  ({answer['timings'].get('total_ms', 0):.0f} ms; flags: {', '.join(answer['flags']) or 'none'})")
    return 0 if total <= TARGET_S and reused else 1


if __name__ == "__main__":
    sys.exit(main())
