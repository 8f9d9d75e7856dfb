"""Does a domain-tuned embedder inside ``hybrid`` beat the shipped ``hybrid`` on questions
it never saw, and what does the whole adoption flow cost?

    python tests/benchmarks/bench_embedder_adoption.py [--dataset obliqa] [--max-minutes 11]
        [--epochs 1] [--hard-negatives 0] [--corpus-limit N] [--home DIR] [--margin 0.01]

The flow ``fourfold index adopt-embedder`` runs, on a retrieval dataset of
../shared/data: DEV questions are split by a hash into the ``tune`` and ``check``
halves, and a fifth of the tune half is set aside as the ``weights`` slice;
``embedder-contrastive`` is trained on the (question, relevant passage) pairs of the rest
of the tune half; the corpus is embedded again with the tuned model; ``dense`` and
``hybrid`` are scored by nDCG@10 on the check half with the base and the tuned embedder
(the retrieval section ``fourfold eval compare --embedder`` reports), and the tuned
embedder would be adopted when tuned ``hybrid`` beats base ``hybrid`` by ``--margin``.
Then ``hybrid`` with the tuned embedder is scored on the weights slice with the settings
``fourfold.adoption.choose_settings`` tries (fusion weights, candidate depth, BM25 title
weight, one at a time; a fusion setting searches the built index again, a title weight
builds an index of its own from cached vectors), and the best is scored on the check
half: the settings adopt-embedder would suggest, and what they give. When the chosen
title weight differs from the shipped one, ``hybrid`` with the base embedder and that
title weight is scored on the check half too, so the embedder's own share of the gain
shows. ``--hard-negatives N`` mines N negatives per pair from base ``hybrid``'s ranking
of the training questions (the passages it ranks highest that are not judged relevant).

``--corpus-limit`` keeps every passage a DEV question needs plus distractors up to N
(a reduced run, when the full flow does not fit the time at hand); the figures are then
not comparable with full-corpus ones, and the report says so.

Targets (obliqa, full corpus): tuned ``hybrid`` ≥ 0.72 nDCG@10 on the check half (the
shipped ``hybrid`` scores 0.670 on DEV); the whole flow ≤ 20 minutes on this machine.
policyqa and liveqa-medquad are reported the same way (``--dataset``).

Full corpus, defaults (one epoch, in-batch negatives, learning rate 3e-5), an empty
state dir (every vector embedded), a quiet machine. obliqa: 1,647 training pairs (51
steps), 335 weights-slice and 1,658 check questions:

    nDCG@10 on the check half              dense   hybrid
    base, shipped settings                 0.437   0.672
    tuned, shipped settings                0.613   0.703   (adopted at margin 0.01)
    base, title_weight 0                           0.692
    tuned, chosen settings                         0.722   (candidates 200, title_weight 0)

Whole flow 9.4 min (training 4.0, scoring base 1.4, tuned 1.3, settings search 2.0 for
25 settings, the chosen ones on the check half 0.7). The 0.72 target is met, by 0.002:
of the +0.050 over the shipped ``hybrid``, the BM25 title weight gives +0.020 (every
obliqa passage's title is its rulebook's name and a section number, which match
questions of other rules) and the tuned embedder +0.030 at either title weight.

policyqa, the same way (1,801 pairs, 56 steps, 302 weights-slice and 1,525 check
questions): dense 0.292 → 0.405, hybrid 0.363 → 0.386 at the shipped settings (adopted);
chosen dense_weight 8 and title_weight 3 give 0.427 (base with title_weight 3: 0.372).
Here titles help BM25 (privacy-policy section names), but once dense search carries
weight 8 they add little: dense 8 alone scored 0.428 before the title weight was
searched. Whole flow 6.0 min.

liveqa-medquad, the same way, has too few questions to tune on: 37 DEV questions give
13 for training (42 pairs, one step), 3 for the weights slice and 21 to check. Dense
0.390 → 0.466, hybrid 0.528 → 0.534 at the shipped settings: not adopted at margin
0.01. The settings chosen on the 3 weights-slice questions (``rrf``, title_weight 2)
give 0.563 on the check half (base with title_weight 2: 0.535); one question moves
these figures by up to 0.05. Whole flow 4.1 min (most of it embedding 15,678 passages
twice).

What did not move it, on obliqa (tuned ``hybrid`` at the shipped settings, check half):
three epochs (dense 0.621, hybrid 0.708, 12.1 min); learning rate 1e-4 for two epochs
(0.612, 0.704, training 8.3 min); one hard negative per pair from base ``hybrid``'s
ranking (0.608, 0.702; 5.5 s per training step of 32 pairs against 2.9 s without,
measured side by side). Tuned dense
stays at about 0.61-0.62 on 1,647 pairs, and the fusion with BM25 at 50 candidates
captures most of what the two rankings hold: taking, per question, the better of tuned
dense and BM25 would give 0.737.

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
    parser.add_argument("--hard-negatives", type=int, default=0,
                        help="negatives per pair, mined from base hybrid's ranking of the training questions (0: in-batch only)")
    parser.add_argument("--home", type=Path, default=None, help="state dir (default /tmp/fourfold-bench-adoption-<dataset>)")
    args = parser.parse_args()
    home = args.home or Path(f"/tmp/fourfold-bench-adoption-{args.dataset}")
    os.environ["FOURFOLD_HOME"] = str(home)

    from fourfold.adoption import choose_settings, fusion_variant
    from fourfold.domain import Domain
    from fourfold.evaluation.compare import embedder_variants
    from fourfold.evaluation.datasets import load_dataset, set_aside
    from fourfold.evaluation.retrieval import corpus_chunks, eval_domain, evaluate_retrieval, search_run
    from fourfold.knowledge import text_for_embedding
    from fourfold.manifest import load_manifest
    from fourfold.plugins import get_host
    from fourfold.training import run_fine_tuning

    started = time.perf_counter()
    source = DATA / args.dataset
    folder = home / "bench"
    dataset_dir = reduced_dataset(source, folder / "data", args.corpus_limit) if args.corpus_limit else source
    dataset = load_dataset(dataset_dir)
    tune, check = dataset.judged_queries("tune"), dataset.judged_queries("check")
    train, weights = set_aside(tune)  # as adopt-embedder does: the weights slice is kept from training
    passages = {c.source: text_for_embedding(c) for c in corpus_chunks(dataset)}
    artifact = f"{args.dataset}-tuned".replace("_", "-")
    settings = {"data": "pairs.jsonl", "epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.learning_rate,
                "max_minutes": args.max_minutes, "eval_fraction": 0.05, "max_eval_passages": 1000, "hard_negatives": args.hard_negatives}
    manifest = folder / "domain.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    manifest.write_text(
        f"fourfold: 1\ndomain: bench-{artifact}\ntitle: embedder adoption on {args.dataset}\n"
        f"embedding: {{use: minilm, with: {{model: 'artifact:{artifact}'}}}}\n"
        f"fine_tuning: [{json.dumps({'use': 'embedder-contrastive', 'artifact': artifact, 'with': settings})}]\n"
        "retrieval: {use: hybrid}\n",
        encoding="utf-8",
    )
    variants = dict(embedder_variants(load_manifest(manifest), []))
    mine_s = 0.0
    ranked: dict[str, list[str]] = {}
    if args.hard_negatives:
        # as adopt-embedder does: the passages base hybrid ranks highest that answer nothing
        print(f"hard negatives (base hybrid ranks the {len(train)} training questions):", flush=True)
        t = time.perf_counter()
        ranked = search_run(eval_domain(dataset, get_host(), variants["base"]), "hybrid", dataset, train, k=10, progress=Printer())
        mine_s = time.perf_counter() - t
    pairs = []
    for q in train:
        relevant = {p for p, g in dataset.qrels[q].items() if g > 0}
        negatives = [passages[p] for p in ranked.get(q, []) if p not in relevant and p in passages][: args.hard_negatives]
        pairs += [{"question": dataset.queries[q], "passage": passages[p], "negatives": negatives} for p in sorted(relevant) if p in passages]
    (folder / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs), encoding="utf-8")
    corpus_note = f"{len(dataset.corpus)} passages" + (f" (reduced from the full corpus by --corpus-limit {args.corpus_limit})" if args.corpus_limit else "")
    print(f"{args.dataset}: {len(tune)} tune questions ({len(train)} for training: {len(pairs)} pairs; {len(weights)} for the fusion "
          f"weights), {len(check)} check questions, {corpus_note}", flush=True)

    print("training (fourfold fine-tune):", flush=True)
    t = time.perf_counter()
    [run] = run_fine_tuning(Domain.from_file(manifest), Printer())
    train_s = time.perf_counter() - t

    results = {}
    for label, variant in variants.items():
        print(f"dense and hybrid with the {label} embedder (check half):", flush=True)
        t = time.perf_counter()
        evaluation = evaluate_retrieval(dataset_dir, ["dense", "hybrid"], split="check", manifest=variant, progress=Printer())
        results[label] = {r.retriever: r.metrics["ndcg@10"] for r in evaluation.results}
        results[label]["seconds"] = time.perf_counter() - t

    # the retrieval settings for the tuned embedder, chosen on the weights slice as adopt-embedder does
    # (choose_settings: fusion, candidates, BM25 title weight); a fusion setting only searches the
    # built index again, another title weight builds an index of its own from cached vectors
    print(f"hybrid settings with the tuned embedder ({len(weights)} weights-slice questions):", flush=True)
    t = time.perf_counter()
    tuned_manifest = variants[f"artifact:{artifact}"]

    def hybrid(settings: dict, split: str, ids: list[str] | None = None) -> float:
        evaluation = evaluate_retrieval(dataset_dir, ["hybrid"], split=split, query_ids=ids, manifest=fusion_variant(tuned_manifest, settings))
        return evaluation.results[0].metrics["ndcg@10"]

    def on_weights(settings: dict) -> float:
        score = hybrid(settings, "tune", weights)
        print("    " + ", ".join(f"{k} {v}" for k, v in settings.items()) + f": {score:.4f}", flush=True)
        return score

    config = tuned_manifest.retrieval.with_
    shipped = {"fusion": config.get("fusion", "scores"), "dense_weight": 1.0, "sparse_weight": 1.5, "candidates": 50, "title_weight": 1.0}
    shipped_score, best = choose_settings(on_weights, shipped)
    best = {k: v for k, v in best.items() if k != "ndcg_at_10"}
    search_s = time.perf_counter() - t
    t = time.perf_counter()
    tuned_chosen = hybrid(best, "check") if best != shipped else results[f"artifact:{artifact}"]["hybrid"]
    # what the chosen BM25 title weight gives without the tuned embedder: the embedder's own share of the gain
    title_only = None
    if best["title_weight"] != shipped["title_weight"]:
        base_title = evaluate_retrieval(dataset_dir, ["hybrid"], split="check",
                                        manifest=fusion_variant(variants["base"], {"title_weight": best["title_weight"]}))
        title_only = base_title.results[0].metrics["ndcg@10"]
    chosen_s = time.perf_counter() - t
    total_min = (time.perf_counter() - started) / 60

    base, tuned = results["base"], results[f"artifact:{artifact}"]
    chosen = ", ".join(f"{k} {v}" for k, v in best.items() if shipped.get(k) != v) or "the shipped ones"
    print()
    print(f"{'nDCG@10 on ' + str(len(check)) + ' check questions':48}{'dense':>8}{'hybrid':>8}")
    print(f"{'base all-MiniLM-L6-v2 (shipped weights)':48}{base['dense']:>8.4f}{base['hybrid']:>8.4f}")
    print(f"{'tuned (' + artifact + '), shipped weights':48}{tuned['dense']:>8.4f}{tuned['hybrid']:>8.4f}")
    if title_only is not None:
        print(f"{'base, title_weight ' + str(best['title_weight']) + ' (shipped fusion)':48}{'':>8}{title_only:>8.4f}")
    print(f"{'tuned, chosen settings':48}{'':>8}{tuned_chosen:>8.4f}   ({chosen})")
    adopt = tuned["hybrid"] >= base["hybrid"] + args.margin
    print(f"adoption: tuned hybrid {tuned['hybrid']:.4f} vs base {base['hybrid']:.4f} + margin {args.margin}: {'adopted' if adopt else 'not adopted'}")
    m = run.artifact.metrics
    print(f"hard negatives {args.hard_negatives} per pair, mined in {mine_s / 60:.1f} min; training {train_s / 60:.1f} min ({m.get('final_step')} steps, {m.get('train_pairs')} pairs{', reused' if run.reused else ''}); "
          f"scoring base {base['seconds'] / 60:.1f} min, tuned {tuned['seconds'] / 60:.1f} min; settings search {search_s:.0f} s, "
          f"chosen settings on the check half {chosen_s:.0f} s; whole flow {total_min:.1f} min")
    if args.corpus_limit:
        print("reduced corpus: the targets apply to the full corpus only")
        return 0
    if args.dataset != "obliqa":
        print("the targets are set for obliqa; this dataset is reported the same way")
        return 0
    met = max(tuned["hybrid"], tuned_chosen) >= TARGET_NDCG and total_min <= TARGET_MINUTES
    print(f"targets (tuned hybrid >= {TARGET_NDCG}, flow <= {TARGET_MINUTES:.0f} min): {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
