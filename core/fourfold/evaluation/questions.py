"""A domain's evaluation questions: the JSONL file named by ``knowledge.eval`` (and,
for answerability calibration, ``trust.eval_questions``, which falls back to it).

One question a line::

    {"question": "Can losing weight put type 2 diabetes into remission?",
     "source": "conditions/type-2-diabetes.pdf"}

``source`` (or ``sources``, a list) names the documents that answer it, as citations
show them. An optional ``passage`` narrows that to the chunks holding this text: then
only such a chunk of the named documents counts as the answer.

This is the one reader of those files; retrieval scoring, the quality gate and
answerability calibration all use it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from fourfold.errors import ManifestError
from fourfold.evaluation.datasets import split_queries
from fourfold.evaluation.metrics import ndcg_at_k
from fourfold.types import content_hash

if TYPE_CHECKING:
    from fourfold.manifest import Manifest
    from fourfold.types import Chunk, Passage

__all__ = [
    "EvalQuestion",
    "EvalSet",
    "read_eval_questions",
    "eval_questions_for",
    "score_ranking",
    "questions_from_chunks",
    "split_questions",
    "write_eval_questions",
]


@dataclass(frozen=True)
class EvalQuestion:
    """One evaluation question and what answers it."""

    question: str
    sources: tuple[str, ...] = ()
    passage: str | None = None
    line: int = 0

    def is_answer(self, source: str, text: str) -> bool:
        """Whether a retrieved chunk of ``source`` with ``text`` answers the question."""
        if source not in self.sources:
            return False
        return self.passage is None or _squash(self.passage) in _squash(text)


@dataclass(frozen=True)
class EvalSet:
    """The questions of one file, with the file's digest (a cached score is valid only
    for the same questions)."""

    path: Path
    field: str
    questions: tuple[EvalQuestion, ...]
    digest: str

    @property
    def judged(self) -> list[EvalQuestion]:
        """The questions that name the documents answering them (the others only serve
        answerability calibration)."""
        return [q for q in self.questions if q.sources]

    def split(self, part: str) -> list[EvalQuestion]:
        """The judged questions of ``all``, or of the ``tune`` / ``check`` half (by a hash
        of each question, as the retrieval datasets split theirs): train or choose on
        one half, report on the other."""
        return split_questions(self.judged, part)


def split_questions(questions: Sequence[EvalQuestion], part: str) -> list[EvalQuestion]:
    """``all`` of ``questions``, or their ``tune`` / ``check`` half."""
    keep = set(split_queries([q.question for q in questions], part))
    return [q for q in questions if q.question in keep]


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def read_eval_questions(path: Path, *, field: str, manifest_file: object = None) -> EvalSet:
    """Read an evaluation-question file.

    :param field: the manifest field that names it (for messages), e.g. ``knowledge.eval``.
    :raises ManifestError: the file cannot be read, or a line is not a question object.
    """
    where = f"{manifest_file or 'manifest'}: {field}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError([f"{where}: cannot read {path}: {exc.strerror or exc}"]) from exc
    questions = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        problem = f"{path}:{number}: {field}: expected a JSON object with a 'question' and the 'source' (or 'sources') answering it"
        try:
            data = json.loads(line)
        except ValueError:
            raise ManifestError([f"{problem}, found {line[:80]!r}"]) from None
        if not isinstance(data, dict) or not isinstance(data.get("question"), str) or not data["question"].strip():
            raise ManifestError([f"{problem}, found {line[:80]!r}"])
        sources = data.get("sources", data.get("source", []))
        if isinstance(sources, str):
            sources = [sources]
        if not isinstance(sources, list) or not all(isinstance(s, str) and s.strip() for s in sources):
            raise ManifestError([f"{path}:{number}: {field}: 'source' should be a document path or 'sources' a list of them, found {sources!r}"])
        passage = data.get("passage")
        if passage is not None and (not isinstance(passage, str) or not passage.strip()):
            raise ManifestError([f"{path}:{number}: {field}: 'passage' should be text the answering chunk holds, found {passage!r}"])
        questions.append(
            EvalQuestion(
                question=data["question"].strip(),
                sources=tuple(s.strip().strip("/") for s in sources),
                passage=passage,
                line=number,
            )
        )
    return EvalSet(path=Path(path), field=field, questions=tuple(questions), digest=content_hash(text)[:16])


def eval_questions_for(manifest: "Manifest", *, purpose: str = "knowledge") -> EvalSet | None:
    """The manifest's evaluation questions, or None when it names none.

    :param purpose: ``knowledge`` reads ``knowledge.eval``; ``trust`` reads
        ``trust.eval_questions`` and falls back to ``knowledge.eval``.
    """
    name, field = None, "knowledge.eval"
    if purpose == "trust" and manifest.trust.eval_questions:
        name, field = manifest.trust.eval_questions, "trust.eval_questions"
    elif manifest.knowledge is not None and manifest.knowledge.eval:
        name = manifest.knowledge.eval
    if not name:
        return None
    path = Path(name).expanduser()
    path = (path if path.is_absolute() else manifest.base_dir / path).resolve()
    return read_eval_questions(path, field=field, manifest_file=manifest.path)


def score_ranking(question: EvalQuestion, passages: Sequence["Passage"], k: int = 10) -> float:
    """nDCG@k of one retrieved ranking, with each answering document counted once."""
    ranked: list[str] = []
    for p in passages[:k]:
        source = p.chunk.source
        ranked.append(f"answer:{source}" if question.is_answer(source, p.chunk.text) else f"other:{source}")
    relevance = {f"answer:{s}": 1 for s in question.sources}
    return ndcg_at_k(_distinct(ranked), relevance, k)


def _distinct(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def questions_from_chunks(chunks: Iterable["Chunk"], *, limit: int = 200) -> list[EvalQuestion]:
    """Evaluation questions written from the documents themselves, for a domain that has
    none: each heading phrased as a question ("What are the symptoms of gout?") asks for
    the document it heads; documents without one are asked for by title ("What is
    gout?"). At most one question per document, at most ``limit``, chosen by a hash of
    the document path so the choice is stable between runs.

    The heading is part of the text that is embedded, so such questions are easier than
    real ones: use them to notice a version getting worse, not to quote a quality figure.
    """
    by_source: dict[str, tuple[str, str]] = {}
    for chunk in chunks:
        heading = chunk.heading.split(" > ")[-1].strip() if chunk.heading else ""
        asked = heading if heading.endswith("?") else ""
        current = by_source.get(chunk.source)
        key = (content_hash(chunk.source + asked)[:8], asked)
        if asked and (current is None or not current[1] or key[0] < current[0]):
            by_source[chunk.source] = (key[0], asked)
        elif current is None and chunk.title.strip():
            by_source[chunk.source] = ("~", f"What is {chunk.title.strip().rstrip('.')}?")
    chosen = sorted(by_source.items(), key=lambda item: content_hash(item[0]))[:limit]
    return [EvalQuestion(question=" ".join(q.split()), sources=(source,)) for source, (_, q) in chosen]


def write_eval_questions(path: Path, questions: Iterable[EvalQuestion]) -> None:
    """Write questions in the ``knowledge.eval`` format."""
    lines = []
    for q in questions:
        data: dict = {"question": q.question}
        if len(q.sources) == 1:
            data["source"] = q.sources[0]
        else:
            data["sources"] = list(q.sources)
        if q.passage:
            data["passage"] = q.passage
        lines.append(json.dumps(data, ensure_ascii=False))
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
