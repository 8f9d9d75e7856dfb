"""What the quality gate costs a refresh, on ../shared/data/kb-medical (copied first).

    python tests/benchmarks/bench_quality_gate.py [--folder DIR] [--questions N] [--include GLOB ...]

kb-medical has no evaluation questions of its own, so after a first build (no gate)
N questions are written from its documents (``questions_from_chunks``: headings phrased
as questions) and the gate is switched on (``min_ndcg_at_10``, ``max_drop``). Then:

1. a refresh after editing one file: the gate scores the new version and, the first
   time, the published one (the question vectors are embedded once and cached);
2. a refresh with no change: nothing is built, so the gate costs nothing;
3. another one-file edit: the steady state, question vectors from the cache and the
   published version's score read from its ``quality.json``.

Target: the gate's stage costs ≤ 1 s on a refresh (3.); 2. costs nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import fourfold  # noqa: E402
from fourfold.evaluation.questions import questions_from_chunks, write_eval_questions  # noqa: E402
from fourfold.index import refresh  # noqa: E402

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path, default=SHARED / "kb-medical")
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--include", nargs="*", default=["**/*.md", "**/*.txt"], help="files to index (default .md and .txt)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fourfold-bench-gate-"))
    kb = work / "kb"
    shutil.copytree(args.folder, kb)
    os.environ["FOURFOLD_HOME"] = str(work / "home")
    fourfold.get_settings(fresh=True)
    manifest = work / "bench.yaml"
    include = "[" + ", ".join(f'"{g}"' for g in args.include) + "]"
    base = f"fourfold: 1\ndomain: bench\ntitle: Gate bench\nknowledge:\n  sources: [{{path: kb, include: {include}}}]\n"
    manifest.write_text(base)
    try:
        started = time.perf_counter()
        first = refresh(fourfold.Domain.from_file(manifest))
        print(f"build without the gate: {time.perf_counter() - started:.1f} s ({first.chunks_total} chunks)", flush=True)

        domain = fourfold.Domain.from_file(manifest)
        _, chunks, _ = domain.sample_chunks(limit=100_000)
        questions = questions_from_chunks(chunks, limit=args.questions)
        write_eval_questions(work / "eval.jsonl", questions)
        manifest.write_text(base + "  gate: {min_ndcg_at_10: 0.5, max_drop: 0.05}\n  eval: eval.jsonl\n")
        print(f"{len(questions)} questions written from the documents, e.g. {questions[0].question!r}", flush=True)

        edited = sorted(p for p in kb.rglob("*.md"))
        for step, label in ((0, "1. one-file edit, first gate"), (None, "2. no change"), (1, "3. one-file edit, steady state")):
            if step is not None:
                with edited[step].open("a", encoding="utf-8") as f:
                    f.write("\nThis page was reviewed again.\n")
            domain = fourfold.Domain.from_file(manifest)
            domain.embedder.embed_documents(["load the model before timing"])
            started = time.perf_counter()
            report = refresh(domain)
            took = time.perf_counter() - started
            gate = report.timings.get("gate", 0.0)
            quality = (report.quality or {}).get("quality", {})
            print(
                f"{label}: refresh {took:.2f} s, gate {gate:.3f} s"
                + (f", nDCG@10 {quality['ndcg_at_10']:.3f} on {len(quality['questions'])} questions, "
                   f"{quality['embedded_questions']} embedded, baseline {report.quality['baseline']}" if quality else " (not run)"),
                flush=True,
            )
            if step == 1 and gate > 1.0:
                print("gate cost above the 1 s target", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
