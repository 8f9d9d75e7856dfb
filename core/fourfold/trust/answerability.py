"""Do the retrieved passages answer the question? Decided before anything is generated.

A retriever always returns its top passages, related or not. Whether they *answer* is
told from evidence that costs microseconds once the passages are there:

- ``coverage``: how much of what the question is about appears in the passages —
  the question's topic words, each weighted by its rarity in this index (a word no
  document uses, like a made-up drug's name, weighs most);
- ``dense``: the cosine of the question's embedding and the closest passage's
  (when the retriever reports it);
- ``agreement``: whether dense and lexical search put the same passage first.

:func:`calibrate` fits the decision per domain and index version: questions written
from the index's own sentences are the answerable side; the same questions with their
topic word swapped for one no document uses (near misses), and questions from other
fields and languages (off-domain), are the other side. The fitted weights and the
threshold are stored with the version; a manifest can fix the threshold instead.
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from fourfold.files import write_json_atomic
from fourfold.trust.offdomain import CALIBRATION_QUESTIONS, MADE_UP_WORDS
from fourfold.trust.text import content_words, question_words, sentence_spans
from fourfold.types import Chunk, Passage

__all__ = ["Features", "Calibration", "Answerability", "features", "calibrate", "corpus_frequencies", "absent_references"]

FEATURES = ("coverage", "best_coverage", "dense", "agreement", "unknown")


@dataclass
class Features:
    coverage: float
    best_coverage: float
    dense: float
    agreement: float
    unknown: float = 0.0
    missing: list[str] = field(default_factory=list)

    def vector(self) -> np.ndarray:
        return np.array([getattr(self, f) for f in FEATURES], dtype=np.float64)


def features(question: str, passages: Sequence[Passage], frequencies: dict[str, int] | None, total: int, *, top: int = 3) -> Features:
    """The evidence for answerability of ``question`` given its retrieved ``passages``."""
    asked = question_words(question)
    if not asked:
        asked = content_words(question)
    shown = passages[:top]
    words = [content_words(f"{p.chunk.title} {p.chunk.heading} {p.chunk.text}") for p in shown]
    union = set().union(*words) if words else set()

    def weight(w: str) -> float:
        df = (frequencies or {}).get(w, 0)
        return math.log((total + 1) / (df + 0.5)) if frequencies is not None else 1.0

    total_weight = sum(weight(w) for w in asked) or 1.0
    coverage = sum(weight(w) for w in asked if w in union) / total_weight if asked else 0.0
    best = max((sum(weight(w) for w in asked if w in ws) / total_weight for ws in words), default=0.0) if asked else 0.0
    dense_scores = [p.signals.get("dense") for p in passages if p.signals.get("dense") is not None]
    dense = max(dense_scores) if dense_scores else 0.0
    agreement = 0.0
    if passages and passages[0].signals:
        ranks = [passages[0].signals.get("dense_rank"), passages[0].signals.get("sparse_rank")]
        agreement = 1.0 if all(r is not None and r <= 3 for r in ranks) else 0.0
    missing = sorted(w for w in asked if w not in union)
    unknown = (sum(1 for w in asked if not (frequencies or {}).get(w)) / len(asked)) if asked and frequencies is not None else 0.0
    return Features(round(coverage, 4), round(best, 4), round(float(dense), 4), agreement, round(unknown, 4), missing)


@dataclass
class Calibration:
    """A fitted decision: answerable when ``weights · features + bias ≥ threshold``."""

    weights: list[float]
    bias: float
    threshold: float
    version: str | None = None
    method: str = "calibrated"
    questions: dict[str, int] = field(default_factory=dict)
    measured: dict[str, float] = field(default_factory=dict)
    corpus_chunks: int = 0

    def score(self, f: Features) -> float:
        z = float(np.dot(np.array(self.weights), f.vector()) + self.bias)
        return 1.0 / (1.0 + math.exp(-z))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "Calibration":
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


# Used until a version is calibrated (and when calibration is impossible: too few chunks).
DEFAULT = Calibration(weights=[3.0, 2.0, 6.0, 0.5, -4.0], bias=-5.0, threshold=0.5, method="default")


def corpus_frequencies(chunks: Sequence[Chunk]) -> dict[str, int]:
    """Document frequency of each content word over ``chunks``."""
    df: dict[str, int] = {}
    for chunk in chunks:
        for w in content_words(f"{chunk.title} {chunk.heading} {chunk.text}"):
            df[w] = df.get(w, 0) + 1
    return df


_TEMPLATES = [
    "What about {a} {b}?",
    "How does {a} affect {b}?",
    "What should I know about {a} and {b} {c}?",
    "When is {a} {b} needed?",
    "Tell me about {a} {b} {c}.",
    "What does {a} mean for {b}?",
    "Is {a} {b} {c} required?",
    "Why {a} {b}?",
]


def _salient(sentence: str, df: dict[str, int]) -> list[str]:
    """The sentence's rarer topic words, in the order they appear (as written)."""
    seen, out = set(), []
    for w in re.findall(r"[A-Za-z][A-Za-z-]{3,}", sentence):
        stems = question_words(w)
        if not stems:
            continue
        s = next(iter(stems))
        if s in seen:
            continue
        seen.add(s)
        out.append((df.get(s, 0), w.lower()))
    ranked = sorted(out, key=lambda x: x[0])[:3]
    keep = {w for _, w in ranked}
    return [w for _, w in out if w in keep]


def generated_questions(chunks: Sequence[Chunk], df: dict[str, int], rng: random.Random, count: int = 60) -> tuple[list[str], list[str]]:
    """Answerable questions from the chunks' sentences, and near misses: the same
    questions with their rarest topic word swapped for a word no chunk uses."""
    answerable, near = [], []
    pool = list(chunks)
    rng.shuffle(pool)
    # Words people add that the answering passage need not contain ("at work", "my
    # son"): common in the corpus, but not rare in it.
    common = [w for w, n in df.items() if 0.01 * len(pool) <= n <= 0.2 * len(pool) and w.isalpha() and len(w) > 3]
    common.sort()
    candidates = []
    for chunk in pool[:300]:
        sentences = [chunk.text[x:y].strip() for x, y in sentence_spans(chunk.text)]
        candidates += [s for s in sentences if 6 <= len(s.split()) <= 45]
    rng.shuffle(candidates)
    for sentence in candidates:
        if len(answerable) >= count:
            break
        words = _salient(sentence, df)
        if len(words) < 2:
            continue
        a, b, c = (words + words[:1])[:3]
        template = _TEMPLATES[len(answerable) % len(_TEMPLATES)]
        question = template.format(a=a, b=b, c=c)
        if common and len(answerable) % 2:
            question = question[:-1] + f" with {rng.choice(common)}{question[-1]}"
        answerable.append(question)
        rarest = min(words, key=lambda w: df.get(next(iter(question_words(w)), ""), 0))
        swapped = [rng.choice(MADE_UP_WORDS) if w == rarest else w for w in (a, b, c)]
        near.append(template.format(a=swapped[0], b=swapped[1], c=swapped[2]))
    return answerable, near


def _fit(x: np.ndarray, y: np.ndarray, steps: int = 1500, lr: float = 0.5, l2: float = 0.01) -> tuple[np.ndarray, float]:
    """Logistic regression by gradient descent, the classes weighted equally."""
    w = np.zeros(x.shape[1])
    b = 0.0
    pos = max(1, int(y.sum()))
    neg = max(1, len(y) - pos)
    sample_w = np.where(y == 1, 0.5 / pos, 0.5 / neg)
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        g = (p - y) * sample_w
        w -= lr * (x.T @ g + l2 * w)
        b -= lr * g.sum()
    return w, float(b)


def calibrate(
    chunks: Sequence[Chunk],
    search: Callable[[list[str]], list[list[Passage]]],
    *,
    version: str | None = None,
    answerable: Sequence[str] = (),
    max_false_refusals: float = 0.05,
    seed: int = 0,
) -> tuple[Calibration, dict[str, int]]:
    """Fit the answerability decision for one index version.

    :param chunks: the version's chunks (a sample is enough).
    :param search: retrieves passages for a batch of questions from that version.
    :param answerable: questions known to be answerable (the domain's own evaluation
        questions), used beside the generated ones.
    :returns: the calibration and the corpus word frequencies it used.
    """
    df = corpus_frequencies(chunks)
    rng = random.Random(f"{seed}:{version}")
    generated, near = generated_questions(chunks, df, rng)
    positives = list(answerable) + generated
    negatives = near + list(CALIBRATION_QUESTIONS)
    if len(generated) < 10:
        return Calibration(**{**DEFAULT.to_json(), "version": version, "method": "default (too few passages to calibrate)"}), df
    questions = positives + negatives
    results = search(questions)
    x = np.array([features(q, r, df, len(chunks)).vector() for q, r in zip(questions, results)])
    y = np.array([1.0] * len(positives) + [0.0] * len(negatives))
    w, b = _fit(x, y)
    scores = 1 / (1 + np.exp(-(x @ w + b)))
    pos_scores = np.sort(scores[: len(positives)])
    # The highest threshold that refuses at most max_false_refusals of the answerable side.
    k = int(math.floor(max_false_refusals * len(pos_scores)))
    threshold = float(min(0.5, pos_scores[k] - 1e-6)) if len(pos_scores) else 0.5
    refused_neg = float((scores[len(positives) :] < threshold).mean())
    refused_pos = float((scores[: len(positives)] < threshold).mean())
    calibration = Calibration(
        weights=[round(float(v), 5) for v in w],
        bias=round(b, 5),
        threshold=round(threshold, 6),
        version=version,
        questions={"answerable": len(positives), "eval": len(answerable), "near_miss": len(near), "off_domain": len(CALIBRATION_QUESTIONS)},
        measured={"refused_unanswerable": round(refused_neg, 4), "refused_answerable": round(refused_pos, 4)},
        corpus_chunks=len(chunks),
    )
    return calibration, df


# "Smith v Jones", "Northwind Analytics Ltd v. Cirrus Compute Ltd", "R v Brown": a case.
_CASE = re.compile(r"\b((?:[A-Z][\w&'.-]*\s+){0,4}[A-Z][\w&'.-]*)\s+v\.?\s+((?:[A-Z][\w&'.-]*\s*){1,5})")
_QUOTED = re.compile(r"[\"“]([^\"”]{6,80})[\"”]")


def _squash(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def absent_references(question: str, passages: Sequence[Passage]) -> list[str]:
    """What the question names exactly and no passage does: a case ("A v B") or a quoted
    title. A question about a named case the documents do not hold is not answered by
    passages about its parties."""
    wanted = []
    for m in _CASE.finditer(question):
        wanted.append(f"{m.group(1).strip()} v {m.group(2).strip()}")
    wanted += [m.group(1).strip() for m in _QUOTED.finditer(question)]
    if not wanted:
        return []
    texts = [_squash(f"{p.chunk.title} {p.chunk.heading} {p.chunk.text}") for p in passages]
    absent = []
    for ref in wanted:
        key = _squash(ref)
        if " v " in f" {key} ":
            # the parties' first words on each side: "northwind v cirrus"
            left, right = key.split(" v ", 1)
            found = any(re.search(rf"\b{re.escape(left.split()[-1])}\b.{{0,80}}\bv\b.{{0,10}}\b{re.escape(right.split()[0])}\b", t) for t in texts)
        else:
            found = any(key in t for t in texts)
        if not found:
            absent.append(ref)
    return absent


@dataclass
class Decision:
    answerable: bool
    score: float
    threshold: float
    features: Features

    def to_dict(self) -> dict:
        return {
            "answerable": self.answerable,
            "score": round(self.score, 4),
            "threshold": round(self.threshold, 4),
            "coverage": self.features.coverage,
            "dense": self.features.dense,
            "missing": self.features.missing,
        }


class Answerability:
    """The calibrated decision of one index version, with the word frequencies it needs."""

    def __init__(self, calibration: Calibration, frequencies: dict[str, int] | None, threshold: float | None = None):
        self.calibration = calibration
        self.frequencies = frequencies
        self.threshold = calibration.threshold if threshold is None else threshold

    def decide(self, question: str, passages: Sequence[Passage]) -> Decision:
        if not passages:
            f = Features(0.0, 0.0, 0.0, 0.0, 1.0, sorted(question_words(question)))
            return Decision(False, 0.0, self.threshold, f)
        f = features(question, passages, self.frequencies, self.calibration.corpus_chunks or 1)
        score = self.calibration.score(f)
        absent = absent_references(question, passages)
        if absent:
            # A case, a quoted title: the question is about that one, and no passage names it.
            f.missing = sorted(set(f.missing) | set(absent))
            return Decision(False, min(score, self.threshold / 2), self.threshold, f)
        return Decision(score >= self.threshold, score, self.threshold, f)

    def to_json(self) -> dict:
        return {"calibration": self.calibration.to_json(), "frequencies": self.frequencies}

    @classmethod
    def from_json(cls, data: dict, threshold: float | None = None, *, where: str = "answerability") -> "Answerability":
        calibration = Calibration.from_json(data["calibration"])
        if len(calibration.weights) != len(FEATURES):
            raise ValueError(f"{where}: calibrated for other features; calibrate again")
        return cls(calibration, data.get("frequencies"), threshold)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, self.to_json())

    @classmethod
    def load(cls, path: Path, threshold: float | None = None) -> "Answerability":
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")), threshold, where=str(path))
