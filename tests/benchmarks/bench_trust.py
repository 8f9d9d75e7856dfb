"""Answers you can trust, measured on question sets written from the documents
(tests/trust/: answerable questions, questions the documents do not cover, and traps
where a document states a prohibition, number or limit).

For each set a domain is built over its knowledge folder (the shipped manifests' own
knowledge, and parts of ../shared/data/kb-medical and kb-legal), then every question
is asked through the streaming runtime, and the figures are printed against targets:

- answerable questions answered correctly (an expected phrase) with a citation of a
  document that answers them — target ≥ 80%;
- answerable questions refused — target ≤ 10%;
- questions the documents do not cover, refused — target ≥ 90%;
- contradicted claims shown as written on the traps (a forbidden phrase in the
  answer) — target 0;
- streamed text equal to the final text — target 100%;
- answerability + checking time for extractive answers — target p50 ≤ 50 ms.

The figures are also printed for two halves of each question file, by line parity:
the odd lines (1st, 3rd, …) for tuning, the even lines held out for reporting. A
change tuned on the first half is judged on the second.

    python tests/benchmarks/bench_trust.py                 # all four sets
    python tests/benchmarks/bench_trust.py --sets legal --limit 10
    python tests/benchmarks/bench_trust.py --medical-generator extractive
    python tests/benchmarks/bench_trust.py --sets medical --medical-generator smollm2-quotes
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[2]
SETS = ROOT / "tests" / "trust"


def normalise(text: str) -> str:
    text = re.sub(r"\[\s*\d+(?:\s*,\s*\d+)*\s*\]", " ", text)
    text = text.replace("**", "").replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    text = text.replace("–", "-").replace("—", "-")
    return " ".join(text.lower().split())


def contains(answer: str, phrases: list[str]) -> bool:
    body = normalise(answer)
    return any(normalise(p) in body for p in phrases)


def cites_source(answer, sources: list[str]) -> bool:
    cited = [c.source for c in answer.citations]
    return any(any(c.endswith(s) or s.endswith(c) for s in sources) for c in cited)


def manifest_for(spec: dict, home: Path, generator: str) -> Path:
    knowledge = (ROOT / spec["knowledge"]).resolve()
    generation = {"use": "extractive", "with": {"max_sentences": 3, "format": "quotes"}}
    prompt = {"use": "grounded-citations", "with": {"style": "concise"}}
    top_k = 5
    if generator.startswith("smollm2"):
        generation = {"use": "smollm2", "with": {"max_tokens": 160, "timeout_s": 90}}
        if generator == "smollm2-quotes":  # SmolLM2 phrases the sentences extractive would quote
            generation["with"].update(answer_from="quotes", max_tokens=96)
        prompt = {"use": "grounded-citations", "with": {"style": "concise", "max_passage_chars": 600, "max_history_turns": 2}}
        top_k = 4
    manifest = {
        "fourfold": 1,
        "domain": spec["name"],
        "title": f"{spec['name']} (trust benchmark)",
        "knowledge": {"sources": [{"path": str(knowledge), "include": spec["include"]}], "gate": {"min_chunks": 1}},
        "embedding": {"use": "minilm"},
        "prompt": prompt,
        "retrieval": {"use": "hybrid", "with": {"top_k": top_k}},
        "generation": generation,
    }
    shipped = ROOT / "deploy" / "manifests" / spec["name"] / "eval-questions.jsonl"
    if spec["knowledge"].startswith("deploy/manifests/") and shipped.exists():
        manifest["trust"] = {"eval_questions": str(shipped)}  # as the shipped manifests calibrate
    path = home / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    return path


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def run_set(spec: dict, home: Path, generator: str, limit: int | None, verbose: bool) -> dict:
    import fourfold
    from fourfold.index.lifecycle import refresh
    from fourfold.answering import stream_answer

    settings = fourfold.Settings(home=home / "state")
    host = fourfold.PluginHost(settings)
    domain = fourfold.Domain(fourfold.load_manifest(manifest_for(spec, home, generator), host), host, settings)
    t = time.perf_counter()
    report = refresh(domain)
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    decider = domain.trust.for_version(domain.index.version)
    calibrate_s = time.perf_counter() - t
    questions = [json.loads(line) for line in (SETS / spec["questions"]).read_text(encoding="utf-8").splitlines() if line.strip()]
    if limit:
        by_kind: dict[str, list] = {}
        for q in questions:
            by_kind.setdefault(q["kind"], []).append(q)
        questions = [q for group in by_kind.values() for q in group[:limit]]
    for line, q in enumerate(questions):
        q["half"] = "tuning" if line % 2 == 0 else "report"
    rows = []
    for q in questions:
        t = time.perf_counter()
        pieces, final = [], None
        for item in stream_answer(domain, q["question"]):
            if isinstance(item, str):
                pieces.append(item)
            else:
                final = item
        elapsed = time.perf_counter() - t
        assert final is not None
        refused = final.refused
        row = {
            "id": q["id"],
            "kind": q["kind"],
            "half": q["half"],
            "refused": refused,
            "stream_equal": "".join(pieces) == final.text,
            "seconds": elapsed,
            "trust_ms": final.timings.get("answerability_ms", 0.0) + final.timings.get("check_ms", 0.0),
            "contradictions_removed": sum(int(f.split(":")[1]) for f in final.flags if f.startswith("contradiction-removed:")),
        }
        if q["kind"] in ("answerable", "trap"):
            row["correct"] = not refused and contains(final.text, q["expect_any"]) and cites_source(final, q["sources"])
        if q["kind"] == "trap":
            row["contradicted_shown"] = contains(final.text, q.get("forbid_any", []))
        rows.append(row)
        if verbose:
            mark = "refused" if refused else ("ok" if row.get("correct") else "--")
            print(f"  {q['id']:<12} {mark:<8} {elapsed:5.1f}s  {q['question'][:60]!r} -> {final.text[:140]!r} {final.flags}", flush=True)
    return {
        "set": spec["name"],
        "generator": generator,
        "chunks": report.chunks if hasattr(report, "chunks") else None,
        "build_s": build_s,
        "calibrate_s": calibrate_s,
        "threshold": decider.threshold if decider else None,
        **figures(rows),
        "halves": {half: figures([r for r in rows if r["half"] == half]) for half in ("tuning", "report")},
    }


def figures(rows: list[dict]) -> dict:
    answerable = [r for r in rows if r["kind"] == "answerable"]
    uncovered = [r for r in rows if r["kind"] == "not-covered"]
    traps = [r for r in rows if r["kind"] == "trap"]
    share = lambda rs, key: (sum(1 for r in rs if r[key]) / len(rs)) if rs else float("nan")  # noqa: E731
    return {
        "answered_correctly": share(answerable, "correct"),
        "false_refusals": share(answerable, "refused"),
        "uncovered_refused": share(uncovered, "refused"),
        "trap_correct": share(traps, "correct"),
        "contradicted_shown": sum(1 for r in traps if r["contradicted_shown"]),
        "contradictions_removed": sum(r["contradictions_removed"] for r in rows),
        "stream_equal": share(rows, "stream_equal"),
        "trust_ms_p50": percentile([r["trust_ms"] for r in rows if not r["refused"]] or [r["trust_ms"] for r in rows], 0.5),
        "seconds_p50": percentile([r["seconds"] for r in rows], 0.5),
        "questions": {k: sum(1 for r in rows if r["kind"] == k) for k in ("answerable", "not-covered", "trap")},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="*", default=None, help="set names from tests/trust/sets.yaml (default: all)")
    parser.add_argument("--medical-generator", default="smollm2", choices=["smollm2", "smollm2-quotes", "extractive"], help="generator of the shipped medical set (smollm2-quotes: SmolLM2 reading only the sentences extractive would quote)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many questions of each kind per set")
    parser.add_argument("--home", type=Path, default=None, help="state folder (default: a temporary one)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every question and answer")
    args = parser.parse_args()
    specs = yaml.safe_load((SETS / "sets.yaml").read_text(encoding="utf-8"))["sets"]
    if args.sets:
        specs = [s for s in specs if s["name"] in args.sets]
    missing = [s["name"] for s in specs if not (ROOT / s["knowledge"]).exists()]
    if missing:
        print(f"knowledge folders missing for {missing} (../shared/data must sit beside the repository)", file=sys.stderr)
        specs = [s for s in specs if s["name"] not in missing]
    home = args.home or Path(tempfile.mkdtemp(prefix="fourfold-trust-"))
    home.mkdir(parents=True, exist_ok=True)
    results = []
    for spec in specs:
        generator = args.medical_generator if spec["name"] == "medical" else "extractive"
        print(f"== {spec['name']} ({generator})", flush=True)
        result = run_set(spec, home, generator, args.limit, args.verbose)
        results.append(result)
        print(json.dumps(result, default=lambda x: round(x, 4) if isinstance(x, float) else str(x)), flush=True)
    print()
    print(f"{'set':<11} {'half':<7} {'gen':<10} {'correct':>8} {'false-ref':>9} {'uncov-ref':>9} {'trap-ok':>8} {'contra-shown':>12} {'stream=':>8} {'trust p50':>10}")
    for r in results:
        for half, f in (("all", r), *r["halves"].items()):
            print(
                f"{r['set']:<11} {half:<7} {r['generator']:<10} {f['answered_correctly']:>8.0%} {f['false_refusals']:>9.0%} {f['uncovered_refused']:>9.0%} "
                f"{f['trap_correct']:>8.0%} {f['contradicted_shown']:>12d} {f['stream_equal']:>8.0%} {f['trust_ms_p50']:>8.1f}ms"
            )
    print("targets: correct ≥ 80%, false refusals ≤ 10%, uncovered refused ≥ 90%, contradicted shown 0, stream = final 100%, trust p50 ≤ 50 ms (extractive)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
