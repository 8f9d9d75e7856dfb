"""pubmedqa DEV side by side: SmolLM2 without retrieval, with hybrid retrieval, and a
LoRA of SmolLM2 tuned on the other half of the questions, against the majority class.

    python tests/benchmarks/bench_method_comparison.py [--limit 60] [--steps 40] [--home DIR]
        [--report comparison.html] [--dataset ../shared/data/pubmedqa]

Steps, each as its own ``fourfold`` process in one state dir:

1. ``fourfold calibrate`` (so the advisor's estimates stand beside the measurements);
2. instruction pairs from the *tune* half of the DEV questions: the user message the
   medical manifest's grounded prompt builds from the question's abstract, answered
   with the yes/no/maybe label and the abstract's conclusion (``long_answer``);
3. ``fourfold fine-tune`` of a manifest with one ``lora`` block on ``smollm2``;
4. ``fourfold eval compare deploy/manifests/medical.yaml --split check --artifact …``:
   the *check* half only, so the LoRA is scored on questions it never saw.

Prints the comparison table (accuracy, grounding, latency, measured and estimated cost)
and writes the HTML report.
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
DATA = REPO.parent / "shared" / "data" / "pubmedqa"
MANIFEST = REPO / "deploy" / "manifests" / "medical.yaml"
ARTIFACT = "pubmedqa-lora"
SUFFIX = " Answer with yes, no or maybe first, then explain briefly."


def fourfold(args: list[str], env: dict[str, str], *, show: bool = False) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "fourfold", *args], env=env, capture_output=not show, text=True)
    took = time.perf_counter() - started
    if done.returncode != 0:
        print((done.stdout or "") + (done.stderr or ""), file=sys.stderr)
        raise SystemExit(f"fourfold {' '.join(args)} failed with status {done.returncode}")
    return took, done.stdout or ""


def write_pairs(dataset: Path, out: Path) -> int:
    """Instruction pairs from the tune half, in the words the medical manifest's prompt
    strategy gives the model at answer time."""
    from fourfold.domain import Domain
    from fourfold.evaluation.answers import load_answers
    from fourfold.evaluation.datasets import load_dataset
    from fourfold.evaluation.retrieval import corpus_chunks
    from fourfold.types import Passage

    data = load_dataset(dataset)
    key = load_answers(dataset)
    chunks = {c.source: c for c in corpus_chunks(data)}
    strategy = Domain.from_file(MANIFEST).prompt_strategy
    long_answers = {json.loads(line)["id"]: json.loads(line).get("long_answer", "") for line in (dataset / "answers.jsonl").open()}
    n = 0
    with out.open("w", encoding="utf-8") as fh:
        for qid in data.judged_queries("tune"):
            relevant = [doc for doc, grade in data.qrels[qid].items() if grade > 0 and doc in chunks]
            if not relevant or qid not in key.labels:
                continue
            prompt = strategy.build(data.queries[qid] + SUFFIX, [Passage(chunks[relevant[0]], 1.0)], [])
            user = next(m.content for m in prompt.messages if m.role == "user")
            answer = f"{key.labels[qid].capitalize()}. {long_answers.get(qid, '')} [1]".strip()
            fh.write(json.dumps({"instruction": user, "response": answer}) + "\n")
            n += 1
    return n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DATA)
    parser.add_argument("--limit", type=int, default=60, help="check-half questions answered per configuration")
    parser.add_argument("--steps", type=int, default=40, help="LoRA optimiser steps (batch 4)")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--home", type=Path, default=None, help="state dir (default: a new temporary one)")
    parser.add_argument("--report", type=Path, default=Path("method-comparison.html"))
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="fourfold-bench-compare-"))
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "FOURFOLD_HOME": str(home), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    os.environ.update({"FOURFOLD_HOME": str(home), "HF_HUB_OFFLINE": "1"})
    print(f"state dir: {home}", flush=True)

    took, _ = fourfold(["calibrate", "--json"], env)
    print(f"calibrate: {took:.0f} s", flush=True)

    work = home / "bench"
    work.mkdir(exist_ok=True)
    pairs = write_pairs(args.dataset, work / "pubmedqa-tune.jsonl")
    manifest = work / "pubmedqa-lora.yaml"
    manifest.write_text(
        "fourfold: 1\ndomain: pubmedqa-lora\ntitle: LoRA of SmolLM2 on pubmedqa (tune half)\n"
        "fine_tuning:\n"
        f"  - use: lora\n    artifact: {ARTIFACT}\n"
        f"    with: {{base: smollm2, data: pubmedqa-tune.jsonl, steps: {args.steps}, batch_size: 4, max_length: 384, "
        "rank: 8, alpha: 16, learning_rate: 0.0003, max_eval_examples: 16, save_every: 20}\n",
        encoding="utf-8",
    )
    took, out = fourfold(["fine-tune", str(manifest), "--json"], env)
    tuned = json.loads(out)[0]
    print(f"fine-tune: {took:.0f} s on {pairs} pairs; held-out perplexity "
          f"{tuned['metrics']['before']['heldout_perplexity']} → {tuned['metrics']['after']['heldout_perplexity']}", flush=True)

    took, out = fourfold([
        "eval", "compare", str(MANIFEST), "--dataset", str(args.dataset), "--split", "check", "--limit", str(args.limit), "--generator", "smollm2",
        "--artifact", ARTIFACT, "--max-tokens", str(args.max_tokens), "--report", str(args.report), "--json",
    ], env)
    result = json.loads(out)
    print(f"eval compare: {took:.0f} s for {result['questions']} questions of the check half\n")
    print(f"{'configuration':58} {'accuracy':>9} {'unmapped':>9} {'grounded':>9} {'p50 s':>7} {'s/q':>6} {'est s/q':>8}")
    for b in result["baselines"]:
        print(f"{b['label']:58} {b['value']:9.3f}")
    for c in result["configs"]:
        m, est = c["metric"], (c.get("estimate") or {}).get("seconds_per_question") or {}
        g = c["grounding"]["score"]
        print(f"{c['label'][:58]:58} {m['accuracy']:9.3f} {m['unmapped']:9d} {('%.3f' % g) if g is not None else 'n/a':>9} "
              f"{c['latency_ms']['p50'] / 1000:7.2f} {c['measured']['seconds_per_question']:6.2f} {est.get('value') or 0:8.2f}")
    for r in result["retrieval"]:
        print(f"retrieval {r['retriever']:8} nDCG@10 {r['metrics']['ndcg@10']:.4f}  Recall@10 {r['metrics']['recall@10']:.4f}  MRR@10 {r['metrics']['mrr@10']:.4f}")
    print(f"\nreport: {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
