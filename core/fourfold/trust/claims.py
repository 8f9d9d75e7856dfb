"""Judging one answer sentence against the retrieved passages.

Every sentence of an answer is *supported* (a passage states it), *unsupported* (no
passage states it) or *contradicted* (a passage states the opposite): a prohibition
turned into advice ("do not use ice" / "apply ice"), a number, range, duration or dose
that differs ("7 to 9 hours" / "12 hours"), or the same clause with its polarity
flipped ("increase" / "decrease"). The rules are deliberately conservative about
support — every number in a claim must appear in a passage — and generous about
contradiction: a false alarm costs a sentence replaced by the document's own words,
a miss costs a wrong answer shown with a citation.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable, Literal, Sequence

from fourfold.trust.text import (
    Quantity,
    clauses,
    content_words,
    is_negated,
    quantities,
    sentence_spans,
    strip_citations,
)
from fourfold.types import Passage

__all__ = ["Verdict", "Evidence", "EvidenceSentence", "judge", "verifier_contradiction", "ClaimVerifier"]

Label = Literal["supported", "unsupported", "contradicted", "neutral"]

# A trained claim verifier: (evidence sentence, claim) pairs in, each pair's label
# ("supported", "contradicted" or "unsupported") and its probability out.
ClaimVerifier = Callable[[Sequence[tuple[str, str]]], list[tuple[str, float]]]

# Verbs that name the same act of doing something to something ("apply ice", "use ice",
# "put ice on"): a prohibition of one is a prohibition of the others.
_ACT = {"apply", "use", "put", "place", "rub", "take", "give", "try", "hold", "press", "spread", "add", "make", "keep"}
_ACT_STEMS = {w[:7] for w in _ACT} | {"appli", "using", "putting", "placing", "taking", "giving"}

# Word pairs of opposite meaning; a clause with one and a clause with the other, about
# the same things, contradict each other.
_OPPOSITES = [
    ({"increase", "increases", "increased", "raise", "raises", "raised", "higher", "more", "greater"},
     {"decrease", "decreases", "decreased", "reduce", "reduces", "reduced", "lower", "lowers", "less", "fewer"}),
    ({"before"}, {"after"}),
    ({"always"}, {"never"}),
    ({"safe", "harmless"}, {"unsafe", "dangerous", "harmful"}),
    ({"hot", "warm"}, {"cold", "cool", "ice", "iced"}),
    ({"forward", "forwards"}, {"back", "backward", "backwards"}),
    ({"allowed", "permitted", "may"}, {"prohibited", "forbidden", "banned"}),
    ({"required", "mandatory", "compulsory", "obliged"}, {"optional", "voluntary"}),
    ({"above", "over", "exceed", "exceeds"}, {"below", "under"}),
    ({"maximum", "most"}, {"minimum", "least"}),
    ({"include", "includes", "included"}, {"exclude", "excludes", "excluded"}),
    ({"start", "begin", "starts", "begins"}, {"stop", "end", "stops", "ends"}),
]


def _opposite_pairs(a: set[str], b: set[str]) -> bool:
    for left, right in _OPPOSITES:
        if (a & left and b & right and not a & right and not b & left) or (
            a & right and b & left and not a & left and not b & right
        ):
            return True
    return False


def _norm(text: str) -> str:
    text = text.replace("’", "'").replace("“", '"').replace("”", '"').replace("**", "")
    return " ".join(re.findall(r"[a-z0-9%']+", text.lower()))


def _holds_unnegated(passage: str, quoted: str) -> bool:
    """Whether normalised ``passage`` holds ``quoted`` word for word, and not only right
    after a negation: "give aspirin to children under 16" is a stretch of "do not give
    aspirin to children under 16", but it is not what the passage says."""
    start = passage.find(quoted)
    while start != -1:
        before = " ".join(passage[max(0, start - 40) : start].split()[-3:])
        if not is_negated(before):  # "do *not* give aspirin …"
            return True
        start = passage.find(quoted, start + 1)
    return False


def _plain_words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def _normalised_acts(words: set[str]) -> set[str]:
    return {("~act" if w in _ACT_STEMS else w) for w in words}


@dataclass
class _Clause:
    text: str
    negated: bool
    words: set[str]
    plain: set[str]


@dataclass
class EvidenceSentence:
    """One sentence of a retrieved passage, with what the checks need precomputed."""

    passage: int  # 1-based number of the passage in the prompt
    start: int
    end: int
    text: str
    words: set[str]
    clauses: list[_Clause]
    quantities: list[Quantity]


class Evidence:
    """The sentences of the passages an answer may cite, indexed once per answer."""

    def __init__(self, passages: Sequence[Passage]):
        self.passages = list(passages)
        self.sentences: list[EvidenceSentence] = []
        self.passage_words: list[set[str]] = []
        for n, passage in enumerate(self.passages, start=1):
            text = passage.chunk.text
            self.passage_words.append(content_words(f"{text} {passage.chunk.title} {passage.chunk.heading}"))
            # A hard-wrapped line inside a sentence is not a sentence end.
            joined = re.sub(r"(?<![.!?:\n])\n(?=[a-z(])", " ", text)
            for start, end in sentence_spans(joined):
                raw = joined[start:end]
                body = raw.strip()
                if not body:
                    continue
                lead = len(raw) - len(raw.lstrip())
                self.sentences.append(
                    EvidenceSentence(
                        passage=n,
                        start=start + lead,
                        end=start + lead + len(body),
                        text=body,
                        words=content_words(body),
                        clauses=_clauses_of(body),
                        quantities=quantities(body),
                    )
                )
        self.all_quantities = [q for s in self.sentences for q in s.quantities]
        self.normalised = [_norm(p.chunk.text) for p in self.passages]


def _clauses_of(sentence: str) -> list[_Clause]:
    out: list[_Clause] = []
    for part in clauses(sentence):
        if out and out[-1].negated and not is_negated(part) and re.search(r"^(?:or|nor|any)\b|\b(?:or|nor)\b", part, re.I):
            # "Do not use ice, iced water or any creams": the list goes on under the "not".
            for item in re.split(r"\s+(?:or|nor|and)\s+", part):
                if content_words(item):
                    out.append(_Clause(item, True, _normalised_acts(content_words(item)), _plain_words(item)))
            continue
        # "Lean forward and do not tip your head back": the "and" before a negation
        # starts a clause of its own.
        for piece in re.split(r"\s+(?:and|or)\s+(?=(?:do\s+not|don't|never|avoid|not)\b)", part, flags=re.I):
            if piece.strip():
                out.append(_Clause(piece, is_negated(piece), _normalised_acts(content_words(piece)), _plain_words(piece)))
    return out


@dataclass
class Verdict:
    """What :func:`judge` decided for one sentence."""

    label: Label
    passage: int | None = None
    start: int | None = None
    end: int | None = None
    evidence: str = ""
    reason: str = ""
    cite: list[int] = field(default_factory=list)


def _key(words: set[str]) -> set[str]:
    return {w for w in words if not w.isdigit()}


def _negation_conflict(claim: _Clause, other: _Clause) -> bool:
    if claim.negated == other.negated:
        return False
    negative, positive = (claim, other) if claim.negated else (other, claim)
    key = _key(negative.words)
    if not key:
        return False
    shared = key & positive.words
    need = max(1, math.ceil(0.6 * len(key)))
    # The thing prohibited (not only the verb) must be what the other clause speaks of.
    return len(shared) >= need and bool(shared - {"~act"})


def _opposite_conflict(claim: _Clause, other: _Clause) -> bool:
    if claim.negated != other.negated:
        return False
    shared = _key(claim.words & other.words) - {"~act"}
    return len(shared) >= 2 and _opposite_pairs(claim.plain, other.plain)


def _number_conflict(claim_q: list[Quantity], claim_words: set[str], sentence: EvidenceSentence) -> str | None:
    for q in claim_q:
        same = [e for e in sentence.quantities if e.unit == q.unit]
        if not same:
            continue
        if q.unit == "" and len(claim_words & sentence.words) < 3:
            continue  # bare numbers compare only within clearly the same statement
        if not any(q.overlaps(e) for e in same):
            shown = ", ".join(_fmt(e) for e in same)
            return f"number: {_fmt(q)} where the passage says {shown}"
    return None


def _fmt(q: Quantity) -> str:
    def num(x: float) -> str:
        return str(int(x)) if x == int(x) else str(x)

    value = num(q.low) if q.low == q.high else f"{num(q.low)}-{num(q.high)}"
    return f"{value} {q.unit}".strip()


def judge(
    sentence: str,
    evidence: Evidence,
    cited: Sequence[int] = (),
    *,
    min_support: float = 0.5,
    contradictions: bool = True,
) -> Verdict:
    """Judge ``sentence`` against ``evidence``.

    :param cited: the passage numbers the sentence cites (already checked to exist).
    :param min_support: share of the sentence's content words one passage must hold
        for it to count as stating the sentence.
    :param contradictions: whether the rules look for contradictions (False when a
        trained verifier alone decides them, :func:`verifier_contradiction`).
    """
    body = strip_citations(sentence).strip()
    words = content_words(body)
    claim_q = quantities(body)
    if len(words) < 2 and not claim_q:
        return Verdict("neutral", reason="too short to check")
    if not words:
        return Verdict("unsupported", reason="a bare number")
    claim_clauses = _clauses_of(body)
    cited_set = set(cited)

    # A sentence a passage holds word for word is that passage's statement (quotes,
    # extractive answers): nothing to weigh.
    quoted = _norm(body)
    if len(quoted) >= 20:
        order = [n for n in cited if 1 <= n <= len(evidence.passages)] + [n for n in range(1, len(evidence.passages) + 1) if n not in cited_set]
        for n in order:
            if _holds_unnegated(evidence.normalised[n - 1], quoted):
                span = _best_sentence(words, evidence, [n])
                if span is not None:
                    return Verdict("supported", n, span.start, span.end, span.text, "", cite=[n])
                return Verdict("supported", n, cite=[n])

    # Evidence that speaks of the same thing: from a cited passage any sentence sharing
    # a content word; from the others, only sentences holding half the claim's words.
    scored = []
    for s in evidence.sentences:
        shared = len(words & s.words)
        if not shared:
            continue
        share = shared / len(words)
        if s.passage in cited_set or share >= 0.5:
            scored.append((share, s))
    scored.sort(key=lambda item: -item[0])

    contradiction: tuple[EvidenceSentence, str] | None = None
    for share, s in scored[:12] if contradictions else ():
        reason = _number_conflict(claim_q, words, s) if share >= 0.3 or s.passage in cited_set else None
        if reason is None:
            for cc in claim_clauses:
                for ec in s.clauses:
                    if _negation_conflict(cc, ec):
                        reason = f"negation: the passage says '{ec.text.strip()}'"
                    elif _opposite_conflict(cc, ec):
                        reason = f"opposite: the passage says '{ec.text.strip()}'"
                    if reason:
                        break
                if reason:
                    break
        if reason:
            contradiction = (s, reason)
            break

    # Support: one passage holding enough of the sentence's words and every number in it
    # (a number from one passage does not back words from another); the one holding most
    # words, cited ones first on ties.
    shares = {n: len(words & pw) / len(words) for n, pw in enumerate(evidence.passage_words, start=1)}
    backing = [n for n, share in shares.items() if share >= min_support and _states_numbers(evidence, n, claim_q)]
    best_share = max(shares.values(), default=0.0)
    best_n = min(backing, key=lambda n: (-shares[n], n not in cited_set, n)) if backing else 0
    cited_support = [n for n in cited if n in backing]
    numbers_backed = bool(backing) or not any(share >= min_support for share in shares.values())

    if contradiction is not None:
        s, reason = contradiction
        # A sentence a passage states almost word for word (numbers included) is that
        # passage's statement, whatever a neighbouring clause says.
        exact = next((e for sh, e in scored if sh >= 0.85 and e is not s and not _conflicts(claim_q, claim_clauses, words, e)), None)
        if exact is None:
            return Verdict("contradicted", s.passage, s.start, s.end, s.text, reason, cite=[s.passage])

    if backing and _ASSURANCE.search(body) and not any(_ASSURANCE.search(evidence.passages[n - 1].chunk.text) for n in backing):
        # "It's perfectly fine to …", "it is safe": reassurance is a claim of its own, and
        # its words are too common to count as support; a passage must give it too.
        return Verdict("unsupported", reason="a reassurance no passage gives")
    if backing:
        cite = cited_support or [best_n]
        span = _best_sentence(words, evidence, cite)
        if span is not None:
            return Verdict("supported", span.passage, span.start, span.end, span.text, "", cite=cite)
        return Verdict("supported", cite[0], reason="", cite=cite)
    reason = "a number the passages do not state" if not numbers_backed else f"at most {best_share:.0%} of its words are in a passage"
    return Verdict("unsupported", reason=reason)


def verifier_contradiction(
    sentence: str,
    evidence: Evidence,
    verify: ClaimVerifier,
    cited: Sequence[int] = (),
    *,
    candidates: int = 4,
    min_probability: float = 0.5,
) -> Verdict | None:
    """Ask a trained verifier whether an evidence sentence contradicts ``sentence``:
    the ``candidates`` sentences sharing most of its content words (a cited passage's
    first), judged in one call. Returns the contradicted verdict with the sentence the
    verifier is surest of, or None (also for a sentence that is one of the passages'
    sentences word for word; a part of one is judged: "give aspirin to children" is
    in "do not give aspirin to children")."""
    body = strip_citations(sentence).strip()
    words = content_words(body)
    if len(words) < 2:
        return None
    quoted = _norm(body)
    if any(quoted == _norm(s.text) for s in evidence.sentences):
        return None
    cited_set = set(cited)
    scored = []
    for s in evidence.sentences:
        shared = len(words & s.words)
        if shared and (s.passage in cited_set or shared / len(words) >= 0.3):
            scored.append((s.passage not in cited_set, -shared, s.passage, s.start, s))
    scored.sort(key=lambda item: item[:4])
    chosen = [item[-1] for item in scored[:candidates]]
    if not chosen:
        return None
    found = [(prob, s) for (label, prob), s in zip(verify([(s.text, body) for s in chosen]), chosen) if label == "contradicted" and prob >= min_probability]
    if not found:
        return None
    prob, s = max(found, key=lambda item: item[0])
    return Verdict("contradicted", s.passage, s.start, s.end, s.text, f"verifier ({prob:.0%}): the passage says '{s.text}'", cite=[s.passage])


_ASSURANCE = re.compile(
    r"\b(?:(?:perfectly|totally|completely|absolutely) )?(?:fine|okay|ok|harmless|no problem|nothing to worry|no need to worry|"
    r"(?:do not|don't|dont) worry|perfectly normal|completely normal|perfectly safe|safe to|is safe|are safe|acceptable|allowed|permitted|alright|all right)\b",
    re.I,
)


def _states_numbers(evidence: Evidence, n: int, claim_q) -> bool:
    """Whether passage ``n`` states every number of the claim (a value inside a stated range counts)."""
    stated = [q for s in evidence.sentences if s.passage == n for q in s.quantities]
    return all(any(q.unit == e.unit and q.within(e) for e in stated) for q in claim_q)


def _conflicts(claim_q, claim_clauses, words, s: EvidenceSentence) -> bool:
    if _number_conflict(claim_q, words, s):
        return True
    return any(_negation_conflict(cc, ec) or _opposite_conflict(cc, ec) for cc in claim_clauses for ec in s.clauses)


def _best_sentence(words: set[str], evidence: Evidence, passages: list[int]) -> EvidenceSentence | None:
    best, best_shared = None, 0
    for s in evidence.sentences:
        if s.passage in passages:
            shared = len(words & s.words)
            if shared > best_shared:
                best, best_shared = s, shared
    return best
