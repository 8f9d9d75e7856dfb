"""Training examples from JSONL files (errors name the file and line) or derived from the
knowledge base, and a deterministic held-out split."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import fourfold

INSTRUCTION_FIELDS = ("instruction", "response")
QUESTION_FIELDS = ("question", "passage")


@dataclass(frozen=True)
class Example:
    """Two texts that belong together: (instruction, response) or (question, passage).

    :ivar where: ``file:line`` (or the knowledge document) it came from, for messages.
    :ivar negatives: texts that look like ``second`` but do not answer ``first`` (hard
        negatives for a contrastive fine-tune; a pairs file's optional ``negatives``).
    """

    first: str
    second: str
    where: str
    negatives: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return hashlib.sha256(f"{self.first}\x00{self.second}".encode()).hexdigest()


def file_digest(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def read_pairs(path: Path, fields: tuple[str, str], setting: str, *, negatives: bool = False) -> list[Example]:
    """Read a JSONL file whose every non-blank line is an object with both ``fields``
    holding non-empty text.

    :param negatives: also read an optional ``negatives`` field: a list of texts (or one
        text) that do not answer the line's first field.
    :param setting: where the file was named (e.g. ``fine_tuning[0].with.data``), for
        the message when it is missing.
    :raises fourfold.TrainingError: naming the file and line of the first bad line.
    """
    if not path.is_file():
        raise fourfold.TrainingError(f"{setting}: data file {path} does not exist")
    examples: list[Example] = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise fourfold.TrainingError(f"{where}: invalid JSON: {exc.msg} (column {exc.colno})") from None
            if not isinstance(record, dict):
                raise fourfold.TrainingError(
                    f"{where}: expected a JSON object with {_both(fields)}, found {type(record).__name__}"
                )
            texts = []
            for name in fields:
                if name not in record:
                    raise fourfold.TrainingError(f"{where}: missing field '{name}' (every line needs {_both(fields)})")
                value = record[name]
                if not isinstance(value, str):
                    raise fourfold.TrainingError(f"{where}: field '{name}' should be text, found {type(value).__name__}")
                if not value.strip():
                    raise fourfold.TrainingError(f"{where}: field '{name}' is empty")
                texts.append(value.strip())
            found = _negatives(record, where) if negatives else ()
            examples.append(Example(texts[0], texts[1], where, found))
    if not examples:
        raise fourfold.TrainingError(f"{path}: no examples (expected one JSON object per line with {_both(fields)})")
    return examples


def _negatives(record: dict, where: str) -> tuple[str, ...]:
    value = record.get("negatives", [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fourfold.TrainingError(f"{where}: field 'negatives' should be a list of texts, found {type(value).__name__}")
    return tuple(v.strip() for v in value if v.strip())


def _both(fields: tuple[str, str]) -> str:
    return f"'{fields[0]}' and '{fields[1]}'"


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, at a sentence end when there is one."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    ends = [m.start() for m in _SENTENCE_END.finditer(cut)]
    return cut[: ends[-1]] if ends and ends[-1] > limit // 3 else cut


def pairs_from_knowledge(documents: Sequence[fourfold.LoadedDocument], *, max_chars: int, limit: int) -> list[Example]:
    """(question about a section, the section's text) for each substantial section of the
    knowledge: the heading path and document title make the question."""
    examples: list[Example] = []
    for doc in documents:
        source = doc.metadata.get("source") or doc.title
        for section in doc.sections:
            text = _clip(section.text, max_chars)
            if len(text) < 80:
                continue
            topic = " — ".join(h for h in section.heading_path if h) or doc.title
            if topic != doc.title and doc.title:
                question = f"What does \"{doc.title}\" say about {topic}?"
            else:
                question = f"What does \"{doc.title or source}\" say?"
            examples.append(Example(question, text, f"knowledge: {source}"))
            if len(examples) >= limit:
                return examples
    if not examples:
        raise fourfold.TrainingError(
            "the knowledge base has no sections of 80 characters or more to derive training pairs from; "
            "name a data file instead ('data:')"
        )
    return examples


def split_examples(examples: Sequence[Example], eval_fraction: float, max_eval: int) -> tuple[list[Example], list[Example]]:
    """Hold out the examples whose content hash sorts first: deterministic, independent
    of file order, and an edit to one example moves only that example."""
    if len(examples) < 2:
        raise fourfold.TrainingError(f"{len(examples)} example(s) is too few: at least 2 are needed (one is held out)")
    ranked = sorted(examples, key=lambda e: e.key)
    n_eval = min(max_eval, max(1, round(len(examples) * eval_fraction)), len(examples) - 1)
    held = {e.key for e in ranked[:n_eval]}
    train = [e for e in examples if e.key not in held]
    return train, [e for e in examples if e.key in held]


def examples_digest(examples: Sequence[Example]) -> str:
    total = hashlib.sha256()
    for e in examples:
        total.update(e.key.encode())
    return total.hexdigest()
