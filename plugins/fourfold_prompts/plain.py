"""``plain``: the question goes to the model as it is, without retrieval (for comparison)."""

from __future__ import annotations

from pydantic import Field

import fourfold

from .citations import check_citations

__all__ = ["Plain"]


class PlainConfig(fourfold.ComponentConfig):
    system: str | None = Field(
        "You are a helpful assistant. Answer briefly.", max_length=4000, description="System message (null: none)."
    )
    max_history_turns: int = Field(4, ge=0, le=50, description="Earlier messages of the conversation kept.")


class Plain(fourfold.PromptStrategy):
    """No retrieval: the model answers from what it knows. Useful as a baseline to see
    what retrieval adds; any [n] it writes is removed, since there is nothing to cite."""

    name = "plain"
    description = "No retrieval; the question goes to the model as is (a baseline)."
    uses_retrieval = False
    Config = PlainConfig

    def build(self, question, passages, history):
        messages = [fourfold.Message("system", self.config.system)] if self.config.system else []
        keep = self.config.max_history_turns
        messages += [m for m in history if m.role in ("user", "assistant")][-keep:] if keep else []
        messages.append(fourfold.Message("user", question))
        return fourfold.Prompt(messages=messages, question=question, passages=[], metadata={"strategy": self.name})

    def finish(self, text, prompt):
        check = check_citations(text.strip(), [], check_support=False, attribute_uncited=False)
        return check.text, [], check.flags

    def visible_text(self, partial: str, prompt: fourfold.Prompt) -> str:
        return partial.lstrip()
