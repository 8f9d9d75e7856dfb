"""Checking the citations of a generated answer against the passages really retrieved.

A model may cite a passage that does not exist ("[7]" of five), cite one that says
nothing about its sentence, or cite nothing at all. Numbers are checked here, in code:
invalid and unsupported citations are removed and flagged; an uncited sentence that
plainly restates a passage gets that passage's number (flagged as attributed), so a
small model's answer still points at its evidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import fourfold

__all__ = ["CitationCheck", "check_citations", "content_words", "normalise_citation_forms"]

_CITATION = re.compile(r"\[(\s*\d{1,3}(?:\s*[,;]\s*\d{1,3})*\s*)\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")

# One definition of both, shared with the answer checks of fourfold's answering pipeline.
content_words = fourfold.content_words
normalise_citation_forms = fourfold.normalise_citation_forms


@dataclass
class CitationCheck:
    """The outcome of :func:`check_citations`."""

    text: str
    cited: list[int] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t]+([.,;:!?])", r"\1", text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    return text.strip()


def check_citations(
    text: str,
    passages: list[fourfold.Passage],
    *,
    check_support: bool = True,
    attribute_uncited: bool = True,
    min_overlap: float = 0.4,
    drop_unsupported: bool = False,
    min_support: float = 0.25,
) -> CitationCheck:
    """Keep only citations of passages that exist (and support their sentence).

    :param text: the generated answer.
    :param passages: the passages the prompt numbered 1..len(passages).
    :param check_support: drop a citation whose sentence shares no content word with the
        cited passage (flag ``unsupported-citation:[n]``).
    :param attribute_uncited: give an uncited sentence the passage holding at least
        ``min_overlap`` of its content words (flag ``attributed-citations``).
    :param drop_unsupported: remove sentences (of three content words or more) whose best
        passage holds less than ``min_support`` of their content words — claims the
        passages do not back (flag ``unsupported-removed:N``).
    """
    text = normalise_citation_forms(text)
    flags: list[str] = []
    words_of = [content_words(p.chunk.text + " " + p.chunk.title + " " + p.chunk.heading) for p in passages]

    sentences = [s for s in _split_keep(text)]
    # A citation at the end of a paragraph covers the paragraph: sentences of a line that
    # cites something are not given citations of their own.
    cited_lines = {i for i, line in enumerate(_lines_of(sentences)) if _CITATION.search(line)}
    line_of = _line_numbers(sentences)
    out_sentences = []
    attributed = False
    removed = 0
    for index, sentence in enumerate(sentences):
        sentence_words = content_words(_CITATION.sub(" ", sentence))
        if drop_unsupported and passages and len(sentence_words) >= 3:
            support = max(len(sentence_words & words) / len(sentence_words) for words in words_of)
            if support < min_support:
                removed += 1
                continue

        def keep(m: re.Match[str]) -> str:
            numbers = [int(x) for x in re.findall(r"\d+", m.group(1))]
            valid = []
            for n in numbers:
                if not 1 <= n <= len(passages):
                    flags.append(f"invalid-citation:[{n}]")
                elif check_support and len(sentence_words) >= 3 and not sentence_words & words_of[n - 1]:
                    flags.append(f"unsupported-citation:[{n}]")
                elif n not in valid:
                    valid.append(n)
            return "[" + ", ".join(map(str, valid)) + "]" if valid else ""

        checked = _CITATION.sub(keep, sentence)
        if (
            attribute_uncited
            and passages
            and not _CITATION.search(checked)
            and line_of[index] not in cited_lines
            and len(sentence_words) >= 3
        ):
            best, best_share = 0, 0.0
            for i, words in enumerate(words_of):
                share = len(sentence_words & words) / len(sentence_words)
                if share > best_share:
                    best, best_share = i + 1, share
            if best and best_share >= min_overlap:
                checked = _append_citation(checked, best)
                attributed = True
        out_sentences.append(checked)

    final = _tidy("".join(out_sentences))
    if attributed:
        flags.append("attributed-citations")
    if removed:
        flags.append(f"unsupported-removed:{removed}")
    cited: list[int] = []
    for m in _CITATION.finditer(final):
        for n in (int(x) for x in re.findall(r"\d+", m.group(1))):
            if n not in cited:
                cited.append(n)
    return CitationCheck(text=final, cited=cited, flags=flags)


def _split_keep(text: str) -> list[str]:
    """Split into sentences, keeping the separators with the sentence before them."""
    out, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        out.append(text[start : m.end()])
        start = m.end()
    if start < len(text):
        out.append(text[start:])
    return out


def _line_numbers(sentences: list[str]) -> list[int]:
    """For each sentence, the number of the line it starts on."""
    out, line = [], 0
    for sentence in sentences:
        out.append(line)
        line += sentence.count("\n")
    return out


def _lines_of(sentences: list[str]) -> list[str]:
    return "".join(sentences).split("\n")


def _append_citation(sentence: str, n: int) -> str:
    """``"Foo bar.\\n"`` → ``"Foo bar [n].\\n"``."""
    m = re.match(r"^(.*?)([.!?]*)(\s*)$", sentence, re.S)
    assert m is not None
    body, punct, space = m.groups()
    return f"{body.rstrip()} [{n}]{punct}{space}"
