"""Answering a question: retrieve → prompt → generate → check citations.

fourfold's own ``answer_question`` implementation lives here and is registered on the
plugin host like any plugin, so plugin wrappers (audit, redaction, guardrails) wrap it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pluggy

from fourfold.types import Answer, Citation, GenerationLimits, Message, Passage

if TYPE_CHECKING:
    from fourfold.domain import Domain

__all__ = ["AnswerRequest", "CoreAnswering", "citations_for"]

hookimpl = pluggy.HookimplMarker("fourfold")

SNIPPET_CHARS = 300


@dataclass
class AnswerRequest:
    """One question to one domain.

    :ivar domain: the :class:`fourfold.Domain` answering.
    :ivar question: the user's question (wrappers may rewrite it).
    :ivar history: earlier turns of the conversation, oldest first.
    :ivar limits: generation limits for this request.
    """

    domain: "Domain"
    question: str
    history: list[Message] = field(default_factory=list)
    limits: GenerationLimits = field(default_factory=GenerationLimits)


def citations_for(numbers: list[int], passages: list[Passage]) -> list[Citation]:
    """Citation records for 1-based passage ``numbers`` (invalid numbers are skipped)."""
    out = []
    for n in numbers:
        if 1 <= n <= len(passages):
            p = passages[n - 1]
            snippet = p.chunk.text if len(p.chunk.text) <= SNIPPET_CHARS else p.chunk.text[: SNIPPET_CHARS - 1] + "…"
            out.append(
                Citation(
                    n=n,
                    source=p.chunk.source,
                    title=p.chunk.title,
                    heading=p.chunk.heading,
                    page=p.chunk.page,
                    snippet=snippet,
                    score=round(float(p.score), 6),
                )
            )
    return out


class CoreAnswering:
    """fourfold's implementation of the ``answer_question`` hook."""

    @hookimpl(trylast=True)
    def answer_question(self, request: AnswerRequest) -> Answer:
        from fourfold.domain import call_component

        domain = request.domain
        timings: dict[str, float] = {}
        started = time.perf_counter()
        strategy = domain.prompt_strategy
        passages: list[Passage] = []
        version: str | None = None
        if strategy.uses_retrieval:
            passages, version = domain.search(request.question)
            timings["retrieve_ms"] = (time.perf_counter() - started) * 1000
        t = time.perf_counter()
        prompt = call_component(strategy, "build", request.question, passages, request.history)
        t2 = time.perf_counter()
        raw = call_component(domain.generator, "generate", prompt, request.limits)
        timings["generate_ms"] = (time.perf_counter() - t2) * 1000
        text, cited, flags = call_component(strategy, "finish", raw, prompt)
        timings["prompt_ms"] = (t2 - t) * 1000
        timings["total_ms"] = (time.perf_counter() - started) * 1000
        return Answer(
            text=text,
            citations=citations_for(cited, prompt.passages),
            domain=domain.name,
            index_version=version,
            timings={k: round(v, 3) for k, v in timings.items()},
            flags=list(flags),
        )
