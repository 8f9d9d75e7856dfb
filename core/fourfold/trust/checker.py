"""Checking an answer sentence by sentence, as it is generated.

:class:`AnswerChecker` is fed the answer text as it grows. Each sentence, once
complete, is checked against the passages (:func:`fourfold.trust.claims.judge`, and
:func:`fourfold.trust.claims.verifier_contradiction` when the policy has a verifier) and
then kept (with citations that point at a passage that states it), replaced by the
passage's own sentence (when the passage contradicts it) or removed (when no passage
states it). What :meth:`AnswerChecker.feed` and :meth:`AnswerChecker.close` return
is final: the pieces, joined, are exactly :attr:`AnswerChecker.text`, so a client that
shows a stream sees the answer the API returns, never unchecked text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Literal, Sequence

from fourfold.instructions import looks_like_instruction
from fourfold.trust.claims import ClaimVerifier, Evidence, Verdict, judge, verifier_contradiction
from fourfold.trust.text import answer_focus, answer_kind, content_words, quantities, sentence_spans, states_answer_kind, strip_citations
from fourfold.types import Passage

__all__ = ["CheckPolicy", "AnswerChecker", "SentenceCheck", "check_answer", "normalise_citation_forms", "REFUSAL", "looks_like_refusal"]

REFUSAL = "The documents of this assistant do not answer this question."

_CITATION = re.compile(r"\[(\s*\d{1,3}(?:\s*[,;]\s*\d{1,3})*\s*)\]")
_CITATION_VARIANT = re.compile(
    r"[\[(]\s*(?:source|sources|doc|document|passage|ref)\s*#?\s*(\d{1,3}(?:\s*(?:,|;|and)\s*\d{1,3})*)\s*[\])]", re.I
)
_CITATION_RANGE = re.compile(r"\[\s*(\d{1,3})\s*[-–]\s*(\d{1,3})\s*\]")
# "The answer is: …", "Answer: …" before the answer itself.
_LEAD_IN = re.compile(r"^\s*(?:(?:the\s+)?(?:short\s+)?answer(?:\s+to\s+(?:this|your|the)\s+question)?\s+is\s*[:,-]\s*|answer\s*:\s*)", re.I)
_BARE_VERDICT = re.compile(r"^(?:the )?(?:short )?(?:answer )?(?:to (?:this|your|the) question )?(?:is )?(?:yes|no)(?: it (?:is|isn t|is not|does|doesn t|can|can t))?$")
_LIST_MARK = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s*$")
_REFUSAL_RE = re.compile(
    r"^(i m sorry |sorry |unfortunately )?(the )?(provided )?(sources?|documents?|passages?|context|information provided)"
    r"( of this assistant)? (do|does|did) not (contain|provide|include|mention|say|answer|cover|give)"
    r"|^i (do not|don t|cannot|can t) (know|find|answer)"
)


def looks_like_refusal(text: str, no_answer: str = REFUSAL) -> bool:
    norm = _normalise(text)
    target = _normalise(no_answer)
    if target and (norm == target or (norm.startswith(target) and len(norm) < len(target) + 40)):
        return True
    return len(norm) < 160 and _REFUSAL_RE.search(norm) is not None


def _normalise(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def normalise_citation_forms(text: str) -> str:
    """Rewrite "[Source 2]", "(source 1 and 3)", "[1-3]" as "[2]", "[1, 3]", "[1, 2, 3]"."""
    text = _CITATION_VARIANT.sub(lambda m: "[" + ", ".join(re.findall(r"\d+", m.group(1))) + "]", text)

    def expand(m: re.Match[str]) -> str:
        a, b = int(m.group(1)), int(m.group(2))
        if a <= b and b - a < 10:
            return "[" + ", ".join(str(i) for i in range(a, b + 1)) + "]"
        return m.group(0)

    return _CITATION_RANGE.sub(expand, text)


@dataclass
class CheckPolicy:
    """How an answer is checked; prompt strategies supply theirs.

    :ivar no_answer: the words the model was told to answer with when the passages do
        not answer (recognised as a refusal).
    :ivar refusal: the refusal shown (default: ``no_answer``).
    :ivar unsupported: ``remove`` sentences no passage states, or ``mark`` them (kept,
        uncited, verdict ``unsupported``).
    :ivar min_support: share of a sentence's content words one passage must hold.
    :ivar extract: when the checked answer says nothing, a function giving the passage
        sentences closest to the question, cited (``(text, cited)``); None: refuse.
        Also used after an answer that lost more sentences to the checks than it kept:
        the quotes it does not show yet follow what is left (flag ``extracted``).
    :ivar payloads: words of instructions removed from the passages; a sentence carrying
        one is removed.
    :ivar is_instruction: tells instruction-like text (never quoted from a passage).
    :ivar require_amount: a question that asks for an amount ("how long", "how many",
        "what dose") is answered only by sentences of which one states an amount; an
        answer without one is refused (flag ``no-amount``), and nothing is shown until
        such a sentence comes. The same holds for a question asking which country or
        state: a sentence must name one (flag ``no-place``), and for one asking how
        something is calculated: a sentence must say how (flag ``no-calculation``).
    :ivar verify: a trained claim verifier (:data:`fourfold.trust.claims.ClaimVerifier`),
        or None: the rules alone decide contradictions.
    :ivar verifier_mode: who decides that a passage contradicts a sentence: the
        ``rules``, the ``verifier`` (the rules still decide support), or ``both``
        (contradicted when either says so). Without ``verify``: the rules.
    """

    no_answer: str = REFUSAL
    refusal: str | None = None
    unsupported: Literal["remove", "mark"] = "remove"
    min_support: float = 0.5
    extract: Callable[[str, list[Passage]], tuple[str, list[int]]] | None = None
    payloads: set[str] = field(default_factory=set)
    is_instruction: Callable[[str], bool] | None = looks_like_instruction
    require_amount: bool = True
    verify: ClaimVerifier | None = None
    verifier_mode: Literal["rules", "verifier", "both"] = "rules"


@dataclass
class SentenceCheck:
    """One sentence of the answer as shown, with its verdict and the span that backs it."""

    text: str
    verdict: str
    citations: list[int] = field(default_factory=list)
    passage: int | None = None
    start: int | None = None
    end: int | None = None
    evidence: str = ""
    note: str = ""

    def to_dict(self) -> dict:
        out = {"text": self.text, "verdict": self.verdict, "citations": self.citations}
        if self.passage is not None:
            out["span"] = {"n": self.passage, "start": self.start, "end": self.end, "text": self.evidence}
        if self.note:
            out["note"] = self.note
        return out


class AnswerChecker:
    """Checks an answer as it grows; see the module docstring."""

    def __init__(self, question: str, passages: Sequence[Passage], policy: CheckPolicy | None = None):
        self.question = question
        self.passages = list(passages)
        self.policy = policy or CheckPolicy()
        self.evidence = Evidence(self.passages)
        self.sentences: list[SentenceCheck] = []
        self.flags: list[str] = []
        self.text = ""
        self.refused = False
        self._consumed = 0  # characters of the fed text already checked
        self._held = ""  # a lead-in ("The symptoms are:") waiting for what it introduces
        self._gap = ""  # whitespace owed before the next emitted sentence
        self._counts: dict[str, int] = {}
        self._shown_evidence: set[tuple[int, int]] = set()
        self._closed = False
        self._asked = content_words(question)
        kind = answer_kind(question) if self.policy.require_amount else None
        # Durations, ages, frequencies and amounts are stated in a form the checks can
        # recognise in any wording, and so is the country or state a question asks for
        # ("the laws of the State of New York"); who, which court and which company are not.
        self._kind = kind if kind in STATED_KINDS or (kind == "place" and _NAMED_PLACE_ASKED.search(question)) else None
        self._amount_asked = self._kind is not None
        self._focus = answer_focus(question) if self._kind else set()
        self._needs_amount = self._amount_asked
        self._pending = ""  # checked text withheld until it states the amount asked for

    # -- feeding -------------------------------------------------------------------------

    def feed(self, text: str) -> str:
        """Check the complete sentences of ``text`` (the whole answer so far) not checked
        yet; returns the checked text to show now (possibly empty)."""
        if self._closed or self.refused:
            return ""
        rest = text[self._consumed :]
        out = []
        for start, end in sentence_spans(rest, final=False):
            out.append(self._sentence(rest[start:end]))
            if self.refused:
                break
        consumed = sentence_spans(rest, final=False)
        if consumed:
            self._consumed += consumed[-1][1]
        return "".join(out)

    def close(self, text: str) -> str:
        """Check what is left of the finished answer ``text``; returns the rest to show."""
        if self._closed:
            return ""
        out = [] if self.refused else [self.feed(text)]
        if not self.refused:
            rest = text[self._consumed :]
            if rest.strip():
                finished = (
                    re.search(r"[.!?…][\"'”’)\]]*(\s*\[[\d,\s]+\])*[.!?]?[\"'”’)]*\s*$", rest)
                    or rest.rstrip().endswith(("```", "|"))
                    # a quoted line with its citation ("Cirrus Compute Ltd | Cloud hosting" [1]): a table row
                    or re.search(r"^\s*[\"“].*[\"”]\s*(?:\[[\d,\s]+\]\s*)+$", rest, re.S)
                )
                if not finished and self.text:
                    self._count("unfinished-sentence-removed")
                else:
                    out.append(self._sentence(rest))
            self._consumed = len(text)
        self._closed = True
        if not self.refused and not self._pending and self.text and self._too_thin():
            out.append(self._quote_evidence())
        if self._pending:
            self._pending = ""
            self.flags.append({"place": "no-place", "calculation": "no-calculation"}.get(self._kind or "", "no-amount"))
            for sentence in self.sentences:
                if sentence.verdict not in ("refusal",):
                    sentence.note = sentence.note or "withheld: states no amount, and the question asks for one"
                    sentence.text = ""
        if not self.text:
            out.append(self._nothing_said())
        self.flags += [f"{name}:{n}" if name.endswith("-removed") and name not in ("unfinished-sentence-removed", "question-echo-removed") else name for name, n in self._counts.items()]
        return "".join(out)

    # -- one sentence ----------------------------------------------------------------------

    def _count(self, name: str) -> None:
        self._counts[name] = self._counts.get(name, 0) + 1

    def _emit(self, sentence: str, trailing: str, *, final: bool = False) -> str:
        piece = (self._gap if self.text or self._pending else "") + self._held + sentence
        self._held = ""
        self._gap = trailing
        if self._needs_amount and not final:
            self._pending += piece
            if not self._states_asked(sentence):
                return ""
            self._needs_amount = False
            piece, self._pending = self._pending, ""
        self.text += piece
        return piece

    def _sentence(self, raw: str) -> str:
        body = raw.rstrip()
        trailing = raw[len(body) :]
        if "\n" in trailing:
            trailing = "\n" * min(2, trailing.count("\n"))
        elif trailing:
            trailing = " "
        lead = body[: len(body) - len(body.lstrip())]
        body = normalise_citation_forms(body.strip())
        body = re.sub(r"^(?:\d{1,2}[.)]\s+)+(?=\d{1,2}[.)]\s)", "", body)  # "3. 4. Sore throat": an emptied item
        if not body:
            return ""
        if _LIST_MARK.match(body):
            return ""
        stripped = _LEAD_IN.sub("", body, count=1)
        if stripped != body and stripped:
            body = stripped[0].upper() + stripped[1:]
        if not body.strip():
            return ""
        plain = strip_citations(body)
        if not self.text and not self.sentences and looks_like_refusal(plain, self.policy.no_answer):
            self.refused = True
            self.flags.append("not-in-documents")
            shown = self.policy.refusal or self.policy.no_answer
            self.sentences.append(SentenceCheck(shown, "refusal"))
            self._pending = ""
            return self._emit(shown, "", final=True)
        if looks_like_refusal(plain, self.policy.no_answer):
            self._count("refusal-removed")
            return ""
        if self.policy.payloads and any(_carries(body, p) for p in self.policy.payloads if not _carries(self.question, p)):
            if "injection-suppressed" not in self.flags:
                self.flags.append("injection-suppressed")
            return ""
        if self.policy.is_instruction is not None and self.policy.is_instruction(plain):
            if "injection-suppressed" not in self.flags:
                self.flags.append("injection-suppressed")
            return ""
        words = content_words(plain)
        if plain.rstrip(" \"'”’)").endswith("?"):
            # A question is not an answer: an echo of the user's, or one quoted from a
            # document's FAQ headings.
            self._count("question-echo-removed" if self._asked and words <= self._asked else "question-removed")
            return ""
        bare_verdict = _BARE_VERDICT.match(_normalise(plain)) is not None
        if plain.rstrip().endswith(":") or bare_verdict or not words and not re.search(r"\b(yes|no)\b", plain, re.I):
            # A bare "Yes." / "The answer is no." states nothing a passage could back: it
            # is shown only with a checked sentence after it, like a lead-in.
            # A lead-in or a bare list mark: shown only with what follows it.
            if plain.strip():
                self._held += (self._gap if self.text or self._held else "") + lead.replace("\n", "") + body + (trailing or " ")
                self._gap = ""
            return ""

        numbers, invalid = _citations_in(body, len(self.passages))
        for n in invalid:
            self.flags.append(f"invalid-citation:[{n}]")
        claim = body
        if len(words) <= 1 and quantities(plain):
            # "3 days [2]": an amount alone states nothing a passage could hold, except as
            # the answer to the question; so it is checked as the question with it ("how
            # long should I pinch my nose … 24 hours"), not as any passage's "24 hours".
            claim = f"{strip_citations(self.question).strip().rstrip('?').strip()} {body}"
        mode = self.policy.verifier_mode if self.policy.verify is not None else "rules"
        verdict = judge(claim, self.evidence, numbers, min_support=self.policy.min_support, contradictions=mode != "verifier")
        if mode != "rules" and verdict.label in ("supported", "unsupported") and self.policy.verify is not None:
            verdict = verifier_contradiction(claim, self.evidence, self.policy.verify, numbers) or verdict
        if verdict.label == "contradicted":
            self._count("contradiction-removed")
            key = (verdict.passage or 0, verdict.start or 0)
            replacement = verdict.evidence.strip()
            if (
                replacement
                and key not in self._shown_evidence
                and not (self.policy.is_instruction and self.policy.is_instruction(replacement))
                and len(replacement) <= 400
            ):
                self._shown_evidence.add(key)
                text = _cite(replacement, [verdict.passage or 1])
                self.sentences.append(
                    SentenceCheck(text, "replaced", [verdict.passage or 1], verdict.passage, verdict.start, verdict.end, replacement, verdict.reason)
                )
                return self._emit(_with_list_mark(body, text), trailing)
            self.sentences.append(SentenceCheck("", "contradicted", note=verdict.reason))
            return ""
        if verdict.label == "unsupported":
            if self.policy.unsupported == "remove":
                self._count("unsupported-removed")
                self.sentences.append(SentenceCheck("", "unsupported", note=verdict.reason))
                return ""
            text = _CITATION.sub("", body).replace("  ", " ").strip()
            self.sentences.append(SentenceCheck(text, "unsupported", note=verdict.reason))
            if "unsupported-kept" not in self.flags:
                self.flags.append("unsupported-kept")
            return self._emit(text, trailing)
        if verdict.label == "neutral":
            text = body
            self.sentences.append(SentenceCheck(text, "neutral"))
            return self._emit(text, trailing)
        text = _cite(body, verdict.cite)
        if set(verdict.cite) != set(numbers):
            if not numbers:
                if "attributed-citations" not in self.flags:
                    self.flags.append("attributed-citations")
            else:
                for n in sorted(set(numbers) - set(verdict.cite)):
                    self.flags.append(f"unsupported-citation:[{n}]")
        self.sentences.append(
            SentenceCheck(text, "supported", list(verdict.cite), verdict.passage, verdict.start, verdict.end, verdict.evidence)
        )
        return self._emit(text, trailing)

    def _states_asked(self, text: str) -> bool:
        """Whether ``text`` states the amount asked for: of the kind asked, and naming
        which one when the question says ("the *exercise* price")."""
        return states_answer_kind(text, self._kind) and self._focus <= content_words(text)

    def _too_thin(self) -> bool:
        """Whether checking removed most of what the answer claimed: more sentences removed
        (unsupported, or contradicted with nothing to replace them) than kept."""
        kept = sum(1 for s in self.sentences if s.text and s.verdict in ("supported", "replaced", "unsupported"))
        removed = sum(1 for s in self.sentences if not s.text and s.verdict in ("unsupported", "contradicted"))
        return removed > kept

    def _extract(self) -> str:
        """The passages' own sentences closest to the question (cited), or "" when the
        policy cannot extract or they lack the amount the question asks for."""
        if self.policy.extract is None or not self.passages:
            return ""
        try:
            extract, _ = self.policy.extract(self.question, self.passages)
        except Exception:  # noqa: BLE001 - a failed extraction falls back to refusing
            return ""
        if extract and self._amount_asked and not self._states_asked(extract):
            return ""  # the passages' closest sentences do not state the amount asked for
        return extract

    def _quote_evidence(self) -> str:
        """After a checked answer too thin to trust on its own: the passages' closest
        sentences that it does not show yet (flag ``extracted``)."""
        shown = _normalise(strip_citations(self.text))
        added = [s for s in re.split(r"(?<=[.!?])\s+", self._extract()) if s and _normalise(strip_citations(s)) not in shown]
        if not added:
            return ""
        self.flags.append("extracted")
        for sentence in added:
            numbers, _ = _citations_in(sentence, len(self.passages))
            self.sentences.append(SentenceCheck(sentence, "quoted", numbers))
        self._gap = self._gap or " "
        return self._emit(" ".join(added), "", final=True)

    def _nothing_said(self) -> str:
        """The answer when no sentence survived: the passages' own closest sentences
        (when the policy can extract them) or the refusal."""
        self._held = ""
        if self.policy.extract is not None and self.passages:
            extract = self._extract()
            if extract:
                self.flags.append("extracted")
                for sentence in re.split(r"(?<=[.!?])\s+", extract):
                    numbers, _ = _citations_in(sentence, len(self.passages))
                    self.sentences.append(SentenceCheck(sentence, "quoted", numbers))
                return self._emit(extract, "", final=True)
        self.flags += ["not-in-documents"] if not self.sentences else ["not-in-documents", "nothing-supported"]
        shown = self.policy.refusal or self.policy.no_answer
        self.sentences.append(SentenceCheck(shown, "refusal"))
        self.refused = True
        return self._emit(shown, "", final=True)

    # -- results ------------------------------------------------------------------------

    @property
    def cited(self) -> list[int]:
        out: list[int] = []
        for m in _CITATION.finditer(self.text):
            for n in (int(x) for x in re.findall(r"\d+", m.group(1))):
                if 1 <= n <= len(self.passages) and n not in out:
                    out.append(n)
        return out


# The answer kinds (fourfold.trust.text.answer_kind) an answer must state to be shown:
# amounts of every kind, and how something is calculated.
STATED_KINDS = frozenset({"duration", "deadline", "dose", "age", "frequency", "amount", "calculation"})
_NAMED_PLACE_ASKED = re.compile(r"\bwhich (?:country|countries|state|city)\b", re.I)


def _carries(sentence: str, payload: str) -> bool:
    if payload.isupper():
        return re.search(rf"(?<![A-Za-z0-9]){re.escape(payload)}(?![A-Za-z0-9])", sentence) is not None
    return payload.lower() in sentence.lower()


def _citations_in(sentence: str, count: int) -> tuple[list[int], list[int]]:
    valid, invalid = [], []
    for m in _CITATION.finditer(sentence):
        for n in (int(x) for x in re.findall(r"\d+", m.group(1))):
            if 1 <= n <= count:
                if n not in valid:
                    valid.append(n)
            elif n not in invalid:
                invalid.append(n)
    return valid, invalid


def _cite(sentence: str, numbers: Sequence[int]) -> str:
    """``sentence`` with its citation marks replaced by ``numbers``, before the final
    punctuation: "Rest the joint [2]."."""
    bare = _CITATION.sub("", sentence)
    bare = re.sub(r"[ \t]+([.,;:!?])", r"\1", bare).rstrip()
    if not numbers:
        return bare
    mark = "[" + ", ".join(str(n) for n in numbers) + "]"
    m = re.match(r"^(.*?)([.!?…]*[\"'”’)]*)$", bare, re.S)
    assert m is not None
    body, end = m.groups()
    return f"{body.rstrip()} {mark}{end}"


def _with_list_mark(original: str, replacement: str) -> str:
    m = re.match(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+", original)
    return (m.group(0).lstrip() + replacement) if m else replacement


def check_answer(question: str, text: str, passages: Sequence[Passage], policy: CheckPolicy | None = None) -> AnswerChecker:
    """Check a finished answer at once (the same checks a stream gets)."""
    checker = AnswerChecker(question, passages, policy)
    checker.close(text)
    return checker
