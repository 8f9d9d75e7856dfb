"""Does contrastive fine-tuning of the embedder pay off on questions it never saw?

    python tests/benchmarks/bench_embedder_finetune.py [--epochs 1] [--batch-size 32]
        [--max-minutes 11] [--home DIR]

obliqa DEV questions are split in two by a hash of their id (fourfold's own ``tune`` /
``check`` halves). ``embedder-contrastive`` is trained on the (question, relevant
passage) pairs of the ``tune`` half only, exactly as a manifest would run it
(``fourfold fine-tune``), and ``dense`` retrieval (qdrant-edge, exact cosine over all
13,012 passages) is scored by nDCG@10 on the ``check`` half with the packaged
all-MiniLM-L6-v2 and with the fine-tuned artifact.

The corpus is embedded once per model; vectors are cached in the state dir
(``--home``, default ``/tmp/fourfold-bench-embedder``), so a re-run with the same
artifact only searches. Prints before/after nDCG@10, Recall@10, MRR@10, the gain and the
training time, and whether the gain (>= 0.03) and the time (<= 15 min) targets are met.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

OBLIQA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "obliqa"
ARTIFACT = "obliqa-minilm"
TARGET_GAIN = 0.03
TARGET_MINUTES = 15.0


class Printer:
    """A :class:`fourfold.Progress` printing one line per stage (and every ~10%)."""

    def __init__(self) -> None:
        self.stage, self.total, self.done, self.started, self.next_report = "", None, 0, time.perf_counter(), 0

    def start(self, stage: str, total: int | None = None) -> None:
        self.stage, self.total, self.done, self.started = stage, total, 0, time.perf_counter()
        self.next_report = (total or 0) // 10
        print(f"  {stage}" + (f" ({total})" if total else ""), flush=True)

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.total and self.done >= self.next_report and self.done < self.total:
            self.next_report += max(1, self.total // 10)
            print(f"    {self.done}/{self.total} after {time.perf_counter() - self.started:.0f}s", flush=True)


def write_inputs(folder: Path, args) -> tuple[Path, Path, int, int]:
    """The training pairs (tune half), a manifest that fine-tunes on them, and one whose
    embedder is the result."""
    from fourfold.evaluation.datasets import load_dataset
    from fourfold.evaluation.retrieval import corpus_chunks
    from fourfold.knowledge import text_for_embedding

    dataset = load_dataset(OBLIQA)
    tune = dataset.judged_queries("tune")
    check = dataset.judged_queries("check")
    assert not set(tune) & set(check)
    passages = {c.source: text_for_embedding(c) for c in corpus_chunks(dataset)}  # what the index embeds
    pairs = [
        {"question": dataset.queries[q], "passage": passages[pid]}
        for q in tune
        for pid, grade in sorted(dataset.qrels[q].items())
        if grade > 0
    ]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs), encoding="utf-8")
    settings = {
        "data": "pairs.jsonl",
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "max_minutes": args.max_minutes,
        "eval_fraction": 0.05,
        "max_eval_passages": 1000,
    }
    train = folder / "obliqa-train.yaml"
    train.write_text(
        "fourfold: 1\ndomain: obliqa-bench\ntitle: obliqa embedder fine-tuning\n"
        f"fine_tuning: [{json.dumps({'use': 'embedder-contrastive', 'artifact': ARTIFACT, 'with': settings})}]\n",
        encoding="utf-8",
    )
    serve = folder / "obliqa-serve.yaml"
    serve.write_text(
        "fourfold: 1\ndomain: obliqa-bench\ntitle: obliqa with the fine-tuned embedder\n"
        f"embedding: {{use: minilm, with: {{model: 'artifact:{ARTIFACT}'}}}}\nretrieval: {{use: dense}}\n",
        encoding="utf-8",
    )
    return train, serve, len(pairs), len(tune)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=3e-5)
    parser.add_argument(
        "--max-minutes", type=float, default=11.0,
        help="training-loop budget (stops early when spent); loading and the artifact's own before/after check come on top",
    )
    parser.add_argument("--home", type=Path, default=Path("/tmp/fourfold-bench-embedder"))
    parser.add_argument("--force", action="store_true", help="train again even if the artifact is current")
    args = parser.parse_args()
    os.environ["FOURFOLD_HOME"] = str(args.home)

    from fourfold.domain import Domain
    from fourfold.evaluation.retrieval import evaluate_retrieval
    from fourfold.manifest import load_manifest
    from fourfold.training import run_fine_tuning

    train_manifest, serve_manifest, n_pairs, n_tune = write_inputs(args.home / "bench", args)
    print(f"obliqa DEV: {n_tune} tune questions ({n_pairs} pairs) for training; scoring on the check half", flush=True)

    print("dense retrieval with the packaged all-MiniLM-L6-v2 (check half):", flush=True)
    before = evaluate_retrieval(OBLIQA, ["dense"], split="check", progress=Printer())

    print("fine-tuning (fourfold fine-tune):", flush=True)
    started = time.perf_counter()
    [run] = run_fine_tuning(Domain.from_file(train_manifest), Printer(), force=args.force)
    wall = time.perf_counter() - started
    metrics = run.artifact.metrics

    print("dense retrieval with the fine-tuned artifact (check half):", flush=True)
    after = evaluate_retrieval(OBLIQA, ["dense"], split="check", manifest=load_manifest(serve_manifest), progress=Printer())

    b, a = before.results[0], after.results[0]
    gain = a.metrics["ndcg@10"] - b.metrics["ndcg@10"]
    stage_minutes = (run.artifact.info["duration_s"] if run.reused else wall) / 60
    print()
    print(f"{'':30}{'nDCG@10':>10}{'Recall@10':>11}{'MRR@10':>9}   ({b.queries} unseen questions, {before.corpus} passages)")
    for label, r in (("all-MiniLM-L6-v2", b), ("fine-tuned (" + ARTIFACT + ")", a)):
        m = r.metrics
        print(f"{label:30}{m['ndcg@10']:>10.4f}{m['recall@10']:>11.4f}{m['mrr@10']:>9.4f}")
    print(f"gain nDCG@10: {gain:+.4f} (target >= {TARGET_GAIN}) -> {'met' if gain >= TARGET_GAIN else 'NOT met'}")
    print(
        f"training: {metrics['final_step']} steps, {metrics['train_pairs']} pairs, {metrics['train_seconds'] / 60:.1f} min "
        f"of training, {wall / 60:.1f} min for the whole stage{' (reused artifact)' if run.reused else ''}; "
        f"{metrics.get('pairs_per_s')} pairs/s on {metrics['device']}"
    )
    print(f"time target (whole stage <= {TARGET_MINUTES:.0f} min): {'met' if stage_minutes <= TARGET_MINUTES else 'NOT met'}")
    print(f"artifact's own held-out check: nDCG@10 {metrics['before']['ndcg@10']} -> {metrics['after']['ndcg@10']}")
    return 0 if gain >= TARGET_GAIN and stage_minutes <= TARGET_MINUTES else 1


if __name__ == "__main__":
    sys.exit(main())
