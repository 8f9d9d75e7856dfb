"""``few-shot``: grounded answers, shown by worked examples read from a file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import Field

import fourfold

from .grounded import GroundedCitations, GroundedConfig

__all__ = ["FewShot", "Example", "load_examples"]


@dataclass(frozen=True)
class Example:
    question: str
    sources: tuple[str, ...]
    answer: str


def load_examples(path: Path) -> list[Example]:
    """Read examples from a ``.jsonl``, ``.json`` or ``.yaml`` file: a list of objects
    with ``question``, ``answer`` and optional ``sources`` (list of passage texts).

    :raises fourfold.ConfigError: naming the file (and line for JSONL) and the problem.
    """
    if not path.is_file():
        raise fourfold.ConfigError(f"few-shot examples file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    records: list[tuple[str, object]] = []
    try:
        if path.suffix.lower() == ".jsonl":
            for lineno, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    records.append((f"{path}:{lineno}", json.loads(line)))
        else:
            data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
            if isinstance(data, dict) and "examples" in data:
                data = data["examples"]
            if not isinstance(data, list):
                raise fourfold.ConfigError(f"{path}: expected a list of examples, found {type(data).__name__}")
            records = [(f"{path}: example {i + 1}", item) for i, item in enumerate(data)]
    except (ValueError, yaml.YAMLError) as exc:
        raise fourfold.ConfigError(f"{path}: cannot parse examples: {exc}") from None
    examples = []
    for where, item in records:
        if not isinstance(item, dict) or not isinstance(item.get("question"), str) or not isinstance(item.get("answer"), str):
            raise fourfold.ConfigError(f"{where}: each example needs string fields 'question' and 'answer'")
        sources = item.get("sources") or []
        if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
            raise fourfold.ConfigError(f"{where}: 'sources' must be a list of strings")
        unknown = set(item) - {"question", "answer", "sources"}
        if unknown:
            raise fourfold.ConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))} (expected question, answer, sources)")
        examples.append(Example(item["question"].strip(), tuple(sources), item["answer"].strip()))
    if not examples:
        raise fourfold.ConfigError(f"{path}: holds no examples")
    return examples


class FewShotConfig(GroundedConfig):
    examples: str = Field(description="File of worked examples (.jsonl, .json or .yaml), relative to the manifest.")
    max_examples: int = Field(3, ge=1, le=20, description="Examples put in each prompt.")


class FewShot(GroundedCitations):
    """Grounded answers with citations, taught by examples from a file: each example
    becomes an earlier user/assistant turn with its own fenced sources."""

    name = "few-shot"
    description = "Grounded answers taught by worked examples from a file named in the manifest."
    Config = FewShotConfig

    def __init__(self, config=None, context=None):
        super().__init__(config, context)
        if context is None:
            raise fourfold.ConfigError("few-shot needs a domain context to find its examples file")
        self.examples_path = context.path(self.config.examples)
        self.examples = load_examples(self.examples_path)[: self.config.max_examples]

    def build(self, question, passages, history):
        prompt = super().build(question, passages, history)
        shots: list[fourfold.Message] = []
        for ex in self.examples:
            ex_passages = [
                fourfold.Passage(chunk=fourfold.Chunk(id=f"example-{i}", text=t, source="example", title=f"Example source {i}"), score=1.0)
                for i, t in enumerate(ex.sources, 1)
            ]
            shots.append(fourfold.Message("user", self.user_message(ex.question, ex_passages)))
            shots.append(fourfold.Message("assistant", ex.answer))
        # system, then the examples, then the real conversation
        prompt.messages = prompt.messages[:1] + shots + prompt.messages[1:]
        prompt.metadata["examples"] = len(shots) // 2
        return prompt

