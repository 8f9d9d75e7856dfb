"""``step-by-step``: the model reasons first; only its final answer reaches the user."""

from __future__ import annotations

import re

import fourfold

from .grounded import GroundedCitations

__all__ = ["StepByStep"]

# "Answer:", "Final answer:", "**Answer:**" at the start of a line.
_ANSWER_MARKER = re.compile(r"^\W*(?:final\s+)?answer\s*\W*:\W*", re.I | re.M)
_REASONING_LINE = re.compile(r"^\W*(?:reasoning|step\s*\d+|thoughts?)\b.*$", re.I | re.M)


class StepByStep(GroundedCitations):
    """Grounded answers where the model first writes its reasoning under "Reasoning:",
    then the answer under "Answer:". The reasoning is kept out of the final answer (and
    out of the stream)."""

    name = "step-by-step"
    description = "Reason step by step over the passages; only the final answer is returned."

    def system_message(self) -> str:
        return (
            super().system_message()
            + "\nFirst think step by step under the heading 'Reasoning:', checking which sources"
            " are relevant. Then write the final answer, with citations, after the heading 'Answer:'."
        )

    def user_message(self, question, passages):
        return super().user_message(question, passages) + "\nReasoning:"

    def answer_text(self, text: str) -> str:
        markers = list(_ANSWER_MARKER.finditer(text))
        if markers:
            return text[markers[-1].end() :].strip()
        # No heading: drop the reasoning lines and keep what is left.
        return _REASONING_LINE.sub("", text).strip()

    def finish(self, text, prompt):
        answer, cited, flags = super().finish(text, prompt)
        if not _ANSWER_MARKER.search(text):
            flags.append("no-answer-heading")
        return answer, cited, flags

    def visible_text(self, partial: str, prompt: fourfold.Prompt) -> str:
        # Nothing is shown until the answer heading appears.
        markers = list(_ANSWER_MARKER.finditer(partial))
        if not markers:
            return ""
        return super().visible_text(partial[markers[-1].end() :], prompt)
