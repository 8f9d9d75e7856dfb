"""Scoring generated answers: closed labels (yes/no/maybe), token F1 against reference
spans, and grounding (how much of an answer its cited passages back).

Closed labels. A generated answer is mapped to ``yes``, ``no`` or ``maybe`` by the
first rule that applies:

1. the answer opens with the label ("Yes, …", "No.", "Maybe —"), after any markup;
2. it states it ("the answer is no", "answer: maybe");
3. hedging phrases ("unclear", "may or may not", "not enough evidence", "inconclusive",
   "cannot be determined", the no-answer refusal) → ``maybe``;
4. negation of the question's claim ("does not", "no significant", "not associated",
   "did not") → ``no``; affirmation ("is associated", "significantly", "does", "can")
   → ``yes``;
5. otherwise the answer is *unmapped* and scored wrong (the count is reported).

Token F1 is SQuAD's: lower-case, punctuation and articles removed, whitespace tokens;
the best F1 over the reference spans. Citation marks and quotes are removed first.

Grounding. An answer's sentences that make a claim (three or more content words) are
*supported* when they cite a passage that was retrieved ([n]) and either at least
``min_overlap`` of their content words occur in that passage, or the embedder's cosine
between the sentence and the passage's closest sentence is at least ``min_cosine``. The
grounding score is supported claims / claims; sentences without a citation count as
unsupported.
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from fourfold.errors import FourfoldError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "LABELS",
    "AnswerKey",
    "load_answers",
    "answer_label",
    "classify_answer",
    "token_f1",
    "best_token_f1",
    "GroundingRule",
    "Grounding",
    "grounding",
    "content_words",
    "split_claims",
    "strip_citations",
]

LABELS = ("yes", "no", "maybe")

_LEAD = re.compile(r"^[\s\W_]*(?:answer\s*[:\-]\s*)?(yes|no|maybe)\b", re.I)
_STATED = re.compile(r"\b(?:the\s+)?answer\s+(?:is|would\s+be|:)\s*[\"'“]?(yes|no|maybe)\b", re.I)
_HEDGE = re.compile(
    r"\b(unclear|uncertain|not\s+clear|inconclusive|may\s+or\s+may\s+not|not\s+enough\s+(?:evidence|information|data)|"
    r"insufficient|cannot\s+be\s+(?:determined|concluded)|can't\s+be\s+determined|remains?\s+to\s+be|mixed\s+results|"
    r"further\s+(?:research|studies)\s+(?:is|are)\s+needed|do(?:es)?\s+not\s+contain\s+the\s+answer|possibly|might)\b",
    re.I,
)
_NEGATION = re.compile(
    r"\b(does\s+not|do\s+not|did\s+not|is\s+not|are\s+not|was\s+not|were\s+not|cannot|can\s*not|no\s+significant|not\s+significant|"
    r"not\s+associated|no\s+(?:evidence|difference|association|effect|benefit|relationship)|neither|unlikely|failed\s+to|doesn't|don't|didn't|isn't|aren't|wasn't)\b",
    re.I,
)
_AFFIRM = re.compile(
    r"\b(is|are|was|were|does|do|did|can|could|should|may)\b|\b(associated|significant(?:ly)?|effective|improve[sd]?|increase[sd]?|reduce[sd]?|beneficial|recommended)\b",
    re.I,
)
_CITATION = re.compile(r"\s*\[\d+(?:\s*[,;]\s*\d+)*\]")


def strip_citations(text: str) -> str:
    return _CITATION.sub("", text)


def classify_answer(text: str, *, no_answer: str | None = None) -> tuple[str | None, str]:
    """``(label, rule)``: the label of a generated answer and the rule that decided it
    (``lead``, ``stated``, ``refusal``, ``hedge``, ``negation``, ``affirmation``,
    ``unmapped``); the rules are in the module's docstring."""
    plain = strip_citations(text).strip().strip('"“”').strip()
    if not plain:
        return None, "unmapped"
    m = _LEAD.match(plain)
    if m:
        return m.group(1).lower(), "lead"
    m = _STATED.search(plain)
    if m:
        return m.group(1).lower(), "stated"
    if no_answer and no_answer.strip().lower()[:40] in plain.lower():
        return "maybe", "refusal"
    if _HEDGE.search(plain):
        return "maybe", "hedge"
    if _NEGATION.search(plain):
        return "no", "negation"
    if _AFFIRM.search(plain):
        return "yes", "affirmation"
    return None, "unmapped"


def answer_label(text: str, *, no_answer: str | None = None) -> str | None:
    """``yes`` / ``no`` / ``maybe`` for a generated answer, or None (unmapped)."""
    return classify_answer(text, no_answer=no_answer)[0]


# -------------------------------------------------------------------------
# token F1
# -------------------------------------------------------------------------


def _normalise(text: str) -> list[str]:
    text = strip_citations(text).lower()
    text = "".join(" " if ch in string.punctuation or ch in "“”‘’" else ch for ch in text)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return text.split()


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1 between two texts."""
    pred, ref = _normalise(prediction), _normalise(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = Counter(pred) & Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def best_token_f1(prediction: str, references: Sequence[str]) -> float:
    return max((token_f1(prediction, r) for r in references if r), default=0.0)


# -------------------------------------------------------------------------
# the answer key of a dataset
# -------------------------------------------------------------------------


@dataclass
class AnswerKey:
    """``answers.jsonl`` of a dataset: per query id, its label or reference spans.

    :ivar metric: ``accuracy`` when every answer is yes/no/maybe, else ``token_f1``.
    """

    metric: str
    labels: dict[str, str] = field(default_factory=dict)
    spans: dict[str, list[str]] = field(default_factory=dict)

    def gold(self, qid: str) -> str | list[str] | None:
        return self.labels.get(qid) if self.metric == "accuracy" else self.spans.get(qid)


def load_answers(folder: Path) -> AnswerKey | None:
    """The dataset's answer key, or None when it has no ``answers.jsonl``.

    :raises FourfoldError: naming the file and line of a malformed entry.
    """
    path = Path(folder) / "answers.jsonl"
    if not path.is_file():
        return None
    labels: dict[str, str] = {}
    spans: dict[str, list[str]] = {}
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                qid = str(row["id"])
            except (ValueError, KeyError, TypeError):
                raise FourfoldError(f"{path}:{n}: expected a JSON object with 'id' and 'answer'") from None
            answer = row.get("answer")
            if isinstance(answer, str):
                labels[qid] = answer.strip().lower()
            refs = [a for a in (row.get("answers") or [answer]) if isinstance(a, str) and a.strip()]
            spans[qid] = refs
    if labels and all(v in LABELS for v in labels.values()):
        return AnswerKey("accuracy", labels, spans)
    return AnswerKey("token_f1", labels, spans)


# -------------------------------------------------------------------------
# grounding
# -------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below between both but by
    can could did do does doing down during each either few for from further had has have having he her here hers him his how
    however i if in into is it its itself just may me might more most must my no nor not now of off on once only or other our
    ours out over own same shall she should so some such than that the their theirs them then there these they this those
    through to too under until up very was we were what when where which while who whom why will with within without would
    you your yours yes maybe""".split()
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    """Lower-cased words of three or more letters, stop words removed, plural and
    tense endings cut ("symptoms" → "symptom")."""
    return {_stem(w) for w in _WORD.findall(text.lower()) if len(w) > 2 and w not in _STOP}


def split_claims(text: str) -> list[tuple[str, list[int]]]:
    """Sentences of an answer with the passage numbers each cites."""
    out = []
    for sentence in _SENTENCE.split(text):
        sentence = sentence.strip()
        if not sentence:
            continue
        cited = [int(n) for group in re.findall(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]", sentence) for n in re.findall(r"\d+", group)]
        out.append((sentence, cited))
    # A citation written after the sentence's full stop belongs to that sentence.
    merged: list[tuple[str, list[int]]] = []
    for sentence, cited in out:
        if merged and not content_words(strip_citations(sentence)) and cited:
            prev, prev_cited = merged[-1]
            merged[-1] = (prev + " " + sentence, prev_cited + cited)
        else:
            merged.append((sentence, cited))
    return merged


@dataclass(frozen=True)
class GroundingRule:
    min_words: int = 3
    min_overlap: float = 0.5
    min_cosine: float = 0.7

    def to_dict(self) -> dict[str, float]:
        return {"min_words": self.min_words, "min_overlap": self.min_overlap, "min_cosine": self.min_cosine}


@dataclass
class Grounding:
    claims: int = 0
    supported: int = 0
    by_overlap: int = 0
    by_cosine: int = 0
    uncited: int = 0

    @property
    def score(self) -> float | None:
        return self.supported / self.claims if self.claims else None

    def add(self, other: "Grounding") -> None:
        for name in ("claims", "supported", "by_overlap", "by_cosine", "uncited"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def to_dict(self) -> dict[str, float | int | None]:
        return {"score": self.score, "claims": self.claims, "supported": self.supported, "by_overlap": self.by_overlap,
                "by_cosine": self.by_cosine, "uncited": self.uncited}


def grounding(
    answer: str,
    passages: Sequence[str],
    *,
    rule: GroundingRule = GroundingRule(),
    embed: Callable[[list[str]], "np.ndarray"] | None = None,
) -> Grounding:
    """How many of ``answer``'s claims the passages it cites back.

    :param passages: the texts of the passages the prompt numbered 1..n.
    :param embed: texts → L2-normalised vectors (the domain's embedder); without it only
        word overlap counts.
    """
    result = Grounding()
    for sentence, cited in split_claims(answer):
        words = content_words(strip_citations(sentence))
        if len(words) < rule.min_words:
            continue
        result.claims += 1
        valid = [n for n in cited if 1 <= n <= len(passages)]
        if not valid:
            result.uncited += 1
            continue
        best = max(len(words & content_words(passages[n - 1])) / len(words) for n in valid)
        if best >= rule.min_overlap:
            result.supported += 1
            result.by_overlap += 1
            continue
        if embed is not None:
            candidates = [s for n in valid for s in _SENTENCE.split(passages[n - 1]) if len(s.split()) >= 3]
            if candidates:
                vectors = embed([strip_citations(sentence)] + candidates)
                if float((vectors[1:] @ vectors[0]).max()) >= rule.min_cosine:
                    result.supported += 1
                    result.by_cosine += 1
    return result
