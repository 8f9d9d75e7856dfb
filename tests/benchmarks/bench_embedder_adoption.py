"""Does a domain-tuned embedder inside ``hybrid`` beat the shipped ``hybrid`` on questions
it never saw, and what does the whole adoption flow cost?

    python tests/benchmarks/bench_embedder_adoption.py [--dataset obliqa] [--max-minutes 11]
        [--corpus-limit N] [--questions-limit N] [--home DIR] [--margin 0.01]

The flow ``fourfold index adopt-embedder`` runs, on a retrieval dataset of
../shared/data: DEV questions are split by a hash into the ``tune`` and ``check``
halves, and a fifth of the tune half is set aside as the ``weights`` slice;
``embedder-contrastive`` is trained on the (question, relevant passage) pairs of the rest
of the tune half; the corpus is embedded again with the tuned model; ``dense`` and
``hybrid`` are scored by nDCG@10 on the check half with the base and the tuned embedder
(the retrieval section ``fourfold eval compare --embedder`` reports), and the tuned
embedder would be adopted when tuned ``hybrid`` beats base ``hybrid`` by ``--margin``.
Then ``hybrid`` with the tuned embedder is scored on the weights slice with each fusion
setting of ``fourfold.adoption.FUSION_GRID`` (the built index searched again), and the
best is scored on the check half: the weights adopt-embedder would suggest, and what
they give.

``--corpus-limit`` keeps every passage a DEV question needs plus distractors up to N
(a reduced run, when the full flow does not fit the time at hand); the figures are then
not comparable with full-corpus ones, and the report says so.

Targets (obliqa, full corpus): tuned ``hybrid`` ≥ 0.72 nDCG@10 on the check half (the
shipped ``hybrid`` scores 0.670 on DEV); the whole flow ≤ 20 minutes on this machine.
policyqa and liveqa-medquad are reported the same way (``--dataset``).

Measured once, 2 shared CPU cores under heavy load from other processes, a reduced run
(``--corpus-limit 2500 --max-minutes 4``: every passage a DEV question needs plus
distractors, 2,500 of 13,012; only 8 training steps fitted the budget), 1,658 check
questions: dense 0.575 → 0.687, hybrid 0.744 → 0.761 nDCG@10 (base → tuned), adopted at
margin 0.01; whole flow 26.6 min (training 8.6, scoring base 10.9, tuned 7.1). The
reduced corpus makes every figure higher than on the full one.

Full corpus (13,012 passages, 1,658 check questions), a quiet machine: with one epoch
(64 steps) dense 0.435 → 0.624, hybrid 0.671 → 0.703, whole flow 5.6 min (training 3.3);
with ``--epochs 3`` (192 steps) dense 0.436 → 0.621, hybrid 0.671 → 0.708, whole flow
12.1 min. Adopted both times; the 0.72 target is not reached (more steps of the same
training stop helping dense search at about 0.62).

With the weights slice kept from training (default settings, full corpus, 1,647 pairs,
51 steps; measured once on 2 shared CPU cores loaded by other work): dense 0.439 →
0.613, hybrid 0.672 → 0.702 at the shipped weights (``scores``, dense 1.0, BM25 1.5),
adopted. On the 335 weights-slice questions the shipped weights scored best (0.702; dense
0.5 / 1.5 / 2 / 3 / 4: 0.687 / 0.697 / 0.692 / 0.677 / 0.665; ``rrf`` dense 1 / 2: 0.678
/ 0.675), so the chosen weights are the shipped ones and tuned hybrid stays 0.702 on the
check half: on obliqa BM25 remains the stronger ranking even after tuning, and more
dense weight costs nDCG. The weight search took 57 s (8 settings); the whole flow 25.0
min under that load (training 10.8, scoring base 9.3, tuned 3.9).

policyqa, the same way and load (1,071 passages, 1,801 pairs, 56 steps, 1,525 check
questions): dense 0.292 → 0.411, hybrid 0.363 → 0.390 at the shipped weights, adopted;
here tuned dense beats tuned hybrid at the shipped weights. On the 302 weights-slice
questions more dense weight helps all the way up the grid (dense 0.5 / 1 / 1.5 / 2 / 3 / 4:
0.342 / 0.363 / 0.377 / 0.391 / 0.396 / 0.409; ``rrf`` 1 / 2: 0.370 / 0.395); with the
chosen dense 4.0 tuned hybrid scores 0.424 on the check half (+0.035 over the shipped
weights, +0.013 over tuned dense). 4.0 is the grid's end, so a larger weight was not
tried. Weight search 54 s, check-half scoring of the chosen weights 26 s, whole flow 8.4
min (training 4.8).

With the grid widened to dense 6 and 8 (policyqa again, 2 shared cores while the test
suite ran; 1,801 pairs, 56 steps): dense 0.292 → 0.406, hybrid 0.363 → 0.388 at the
shipped weights, adopted. On the 302 weights-slice questions dense 4 / 6 / 8 score 0.415 /
0.413 / 0.420 (a plateau; 0.5 to 3 and ``rrf`` as before, within 0.01), so dense 8 is
chosen and tuned hybrid scores 0.428 on the check half (+0.004 over dense 4 last time).
Weight search 91 s (10 settings), whole flow 11.0 min (training 5.2).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
TARGET_NDCG = 0.72
TARGET_MINUTES = 20.0


class Printer:
    """A :class:`fourfold.Progress` printing one line per stage."""

    def start(self, stage: str, total: int | None = None) -> None:
        print(f"  {stage}" + (f" ({total})" if total else ""), flush=True)

    def advance(self, n: int = 1) -> None:
        pass


def reduced_dataset(source: Path, target: Path, corpus_limit: int) -> Path:
    """A copy of ``source`` whose corpus holds every judged passage plus distractors
    (chosen by a hash of their id) up to ``corpus_limit`` passages."""
    qrels = (source / "qrels.tsv").read_text(encoding="utf-8").splitlines()
    needed = {line.split("\t")[1] for line in qrels[1:] if line.strip()}
    rows = [json.loads(line) for line in (source / "corpus.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    others = sorted((r for r in rows if r["id"] not in needed), key=lambda r: hashlib.sha256(r["id"].encode()).hexdigest())
    keep = [r for r in rows if r["id"] in needed] + others[: max(0, corpus_limit - len(needed))]
    target.mkdir(parents=True, exist_ok=True)
    (target / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in keep), encoding="utf-8")
    for name in ("queries.jsonl", "qrels.tsv", "answers.jsonl"):
        if (source / name).is_file():
            shutil.copy(source / name, target / name)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="obliqa", help="a folder name under ../shared/data")
    parser.add_argument("--max-minutes", type=float, default=11.0, help="training-loop budget")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=3e-5)
    parser.add_argument("--corpus-limit", type=int, default=None, help="reduced run: at most N passages")
    parser.add_argument("--margin", type=float, default=0.01)
    parser.add_argument("--home", type=Path, default=None, help="state dir (default /tmp/fourfold-bench-adoption-<dataset>)")
    args = parser.parse_args()
    home = args.home or Path(f"/tmp/fourfold-bench-adoption-{args.dataset}")
    os.environ["FOURFOLD_HOME"] = str(home)

    from fourfold.adoption import FUSION_GRID, fusion_variant
    from fourfold.domain import Domain
    from fourfold.evaluation.compare import embedder_variants
    from fourfold.evaluation.datasets import load_dataset, set_aside
    from fourfold.evaluation.retrieval import corpus_chunks, evaluate_retrieval
    from fourfold.knowledge import text_for_embedding
    from fourfold.manifest import load_manifest
    from fourfold.training import run_fine_tuning

    started = time.perf_counter()
    source = DATA / args.dataset
    folder = home / "bench"
    dataset_dir = reduced_dataset(source, folder / "data", args.corpus_limit) if args.corpus_limit else source
    dataset = load_dataset(dataset_dir)
    tune, check = dataset.judged_queries("tune"), dataset.judged_queries("check")
    train, weights = set_aside(tune)  # as adopt-embedder does: the weights slice is kept from training
    passages = {c.source: text_for_embedding(c) for c in corpus_chunks(dataset)}
    pairs = [{"question": dataset.queries[q], "passage": passages[p]} for q in train for p, g in sorted(dataset.qrels[q].items()) if g > 0 and p in passages]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs), encoding="utf-8")
    artifact = f"{args.dataset}-tuned".replace("_", "-")
    settings = {"data": "pairs.jsonl", "epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.learning_rate,
                "max_minutes": args.max_minutes, "eval_fraction": 0.05, "max_eval_passages": 1000}
    manifest = folder / "domain.yaml"
    manifest.write_text(
        f"fourfold: 1\ndomain: bench-{artifact}\ntitle: embedder adoption on {args.dataset}\n"
        f"embedding: {{use: minilm, with: {{model: 'artifact:{artifact}'}}}}\n"
        f"fine_tuning: [{json.dumps({'use': 'embedder-contrastive', 'artifact': artifact, 'with': settings})}]\n"
        "retrieval: {use: hybrid}\n",
        encoding="utf-8",
    )
    corpus_note = f"{len(dataset.corpus)} passages" + (f" (reduced from the full corpus by --corpus-limit {args.corpus_limit})" if args.corpus_limit else "")
    print(f"{args.dataset}: {len(tune)} tune questions ({len(train)} for training: {len(pairs)} pairs; {len(weights)} for the fusion "
          f"weights), {len(check)} check questions, {corpus_note}", flush=True)

    print("training (fourfold fine-tune):", flush=True)
    t = time.perf_counter()
    [run] = run_fine_tuning(Domain.from_file(manifest), Printer())
    train_s = time.perf_counter() - t

    results = {}
    variants = dict(embedder_variants(load_manifest(manifest), []))
    for label, variant in variants.items():
        print(f"dense and hybrid with the {label} embedder (check half):", flush=True)
        t = time.perf_counter()
        evaluation = evaluate_retrieval(dataset_dir, ["dense", "hybrid"], split="check", manifest=variant, progress=Printer())
        results[label] = {r.retriever: r.metrics["ndcg@10"] for r in evaluation.results}
        results[label]["seconds"] = time.perf_counter() - t

    # the fusion weights for the tuned embedder, chosen on the weights slice as adopt-embedder does;
    # the tuned index is built already, so each setting only searches it again
    print(f"hybrid fusion settings with the tuned embedder ({len(weights)} weights-slice questions):", flush=True)
    t = time.perf_counter()
    tuned_manifest = variants[f"artifact:{artifact}"]

    def hybrid(settings: dict, split: str, ids: list[str] | None = None) -> float:
        evaluation = evaluate_retrieval(dataset_dir, ["hybrid"], split=split, query_ids=ids, manifest=fusion_variant(tuned_manifest, settings))
        return evaluation.results[0].metrics["ndcg@10"]

    shipped = {"fusion": "scores", "dense_weight": 1.0, "sparse_weight": 1.5}
    best, best_score = shipped, -1.0
    for settings in [shipped, *(g for g in FUSION_GRID if g != shipped)]:  # ties keep the shipped settings
        score = hybrid(settings, "tune", weights)
        print(f"    {settings['fusion']:6} dense {settings['dense_weight']:<4} sparse {settings['sparse_weight']:<4} {score:.4f}", flush=True)
        if score > best_score:
            best, best_score = settings, score
    search_s = time.perf_counter() - t
    t = time.perf_counter()
    tuned_chosen = hybrid(best, "check") if best != shipped else results[f"artifact:{artifact}"]["hybrid"]
    chosen_s = time.perf_counter() - t
    total_min = (time.perf_counter() - started) / 60

    base, tuned = results["base"], results[f"artifact:{artifact}"]
    chosen = f"{best['fusion']}, dense {best['dense_weight']}, sparse {best['sparse_weight']}"
    print()
    print(f"{'nDCG@10 on ' + str(len(check)) + ' check questions':48}{'dense':>8}{'hybrid':>8}")
    print(f"{'base all-MiniLM-L6-v2 (shipped weights)':48}{base['dense']:>8.4f}{base['hybrid']:>8.4f}")
    print(f"{'tuned (' + artifact + '), shipped weights':48}{tuned['dense']:>8.4f}{tuned['hybrid']:>8.4f}")
    print(f"{'tuned, chosen weights (' + chosen + ')':48}{'':>8}{tuned_chosen:>8.4f}")
    adopt = tuned["hybrid"] >= base["hybrid"] + args.margin
    print(f"adoption: tuned hybrid {tuned['hybrid']:.4f} vs base {base['hybrid']:.4f} + margin {args.margin}: {'adopted' if adopt else 'not adopted'}")
    m = run.artifact.metrics
    print(f"training {train_s / 60:.1f} min ({m.get('final_step')} steps, {m.get('train_pairs')} pairs{', reused' if run.reused else ''}); "
          f"scoring base {base['seconds'] / 60:.1f} min, tuned {tuned['seconds'] / 60:.1f} min; weight search {search_s:.0f} s "
          f"({len(FUSION_GRID)} settings), chosen weights on the check half {chosen_s:.0f} s; whole flow {total_min:.1f} min")
    if args.corpus_limit:
        print("reduced corpus: the targets apply to the full corpus only")
        return 0
    met = max(tuned["hybrid"], tuned_chosen) >= TARGET_NDCG and total_min <= TARGET_MINUTES
    print(f"targets (tuned hybrid >= {TARGET_NDCG}, flow <= {TARGET_MINUTES:.0f} min): {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
