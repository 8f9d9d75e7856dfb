"""The prompt-strategy and generator contracts: prompts carry the question and the
passages, citations point at real passages, generators return text within their limits."""

from __future__ import annotations

import re
from typing import ClassVar

import pytest

from fourfold.components import Generator, PromptStrategy
from fourfold.sizing import GenerationWork
from fourfold.testing.base import ComponentContract, call, check_cost_profile, expect, label, type_name
from fourfold.testing.corpus import SAMPLE_QUESTION, sample_passages
from fourfold.types import GenerationLimits, Message, Passage, Prompt

__all__ = ["PromptStrategyContract", "GeneratorContract"]

_ROLES = {"system", "user", "assistant"}


def _all_text(prompt: Prompt) -> str:
    return "\n".join(m.content for m in prompt.messages)


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


class PromptStrategyContract(ComponentContract):
    """Checks a :class:`fourfold.PromptStrategy`: ``build`` returns a well-formed
    :class:`fourfold.Prompt` holding the question (and, for strategies that use retrieval,
    the passages); ``finish`` returns text, valid citation numbers and flags."""

    kind = "prompt_strategy"

    @pytest.fixture
    def passages(self) -> list[Passage]:
        return sample_passages(3)

    def build_prompt(self, component: PromptStrategy, question: str, passages: list[Passage], history: list[Message]) -> Prompt:
        __tracebackhide__ = True
        prompt = call(component, "build", question, passages, history, fix="build() must return a fourfold.Prompt")
        expect(isinstance(prompt, Prompt), f"{label(component)}: build() returned {type_name(prompt)}; return a fourfold.Prompt(messages=..., question=..., passages=...)")
        expect(
            isinstance(prompt.messages, list) and prompt.messages,
            f"{label(component)}: build() returned a Prompt with messages={prompt.messages!r}; give at least one fourfold.Message",
        )
        for m in prompt.messages:
            expect(isinstance(m, Message), f"{label(component)}: Prompt.messages contains {type_name(m)}; use fourfold.Message(role, content)")
            expect(m.role in _ROLES, f"{label(component)}: a message has role {m.role!r}; use one of system, user, assistant")
            expect(isinstance(m.content, str), f"{label(component)}: a message's content is {type_name(m.content)}; it must be a str")
        expect(isinstance(prompt.passages, list), f"{label(component)}: Prompt.passages is {type_name(prompt.passages)}; it must be a list of Passage")
        return prompt

    def test_build_returns_a_prompt_with_the_question(self, component, passages):
        prompt = self.build_prompt(component, SAMPLE_QUESTION, passages, [])
        expect(
            prompt.question == SAMPLE_QUESTION,
            f"{label(component)}: Prompt.question is {prompt.question!r}; set it to the question asked ({SAMPLE_QUESTION!r}) — extractive generators read it",
        )
        expect(
            SAMPLE_QUESTION in _all_text(prompt),
            f"{label(component)}: the question {SAMPLE_QUESTION!r} appears in none of the prompt's messages; include it (usually in the last user message)",
        )

    def test_passages_reach_the_prompt(self, component, passages):
        if not type(component).uses_retrieval:
            pytest.skip("uses_retrieval = False: the strategy answers without passages")
        prompt = self.build_prompt(component, SAMPLE_QUESTION, passages, [])
        expect(
            prompt.passages,
            f"{label(component)}: build() got {len(passages)} passages but Prompt.passages is empty; pass on the passages the answer may cite (citation [n] is Prompt.passages[n-1])",
        )
        given = [p.chunk.id for p in passages]
        kept = [p.chunk.id for p in prompt.passages]
        expect(
            all(k in given for k in kept) and kept == [g for g in given if g in kept],
            f"{label(component)}: Prompt.passages holds chunks {kept}, not a subset of the given {given} in their order; keep the retriever's passages (you may drop some)",
        )
        text = _squash(_all_text(prompt))
        for p in prompt.passages:
            expect(
                _squash(p.text)[:40] in text,
                f"{label(component)}: passage {p.chunk.source} is in Prompt.passages but its text is in none of the messages; show the model what it may cite",
            )

    def test_builds_without_passages(self, component):
        prompt = self.build_prompt(component, SAMPLE_QUESTION, [], [])
        expect(
            prompt.passages == [],
            f"{label(component)}: build() with no passages returned Prompt.passages={prompt.passages!r}; it must be empty",
        )

    def test_builds_with_history(self, component, passages):
        history = [Message("user", "Do cats need baths?"), Message("assistant", "Rarely; they groom themselves.")]
        prompt = self.build_prompt(component, SAMPLE_QUESTION, passages, history)
        expect(
            prompt.question == SAMPLE_QUESTION,
            f"{label(component)}: with history, Prompt.question became {prompt.question!r}; keep the current question",
        )

    def test_build_is_deterministic(self, component, passages):
        first = self.build_prompt(component, SAMPLE_QUESTION, passages, [])
        second = self.build_prompt(component, SAMPLE_QUESTION, passages, [])
        expect(
            first.messages == second.messages,
            f"{label(component)}: build() gave different messages for the same input; prompts must be reproducible (seed any sampling of examples)",
        )

    def test_finish_returns_text_citations_and_flags(self, component, passages):
        prompt = self.build_prompt(component, SAMPLE_QUESTION, passages, [])
        answer = "Adult cats eat twice a day [1]. Kittens need more meals [2]. See also [99]."
        result = call(component, "finish", answer, prompt, fix="finish() must return (text, cited numbers, flags)")
        expect(
            isinstance(result, tuple) and len(result) == 3,
            f"{label(component)}: finish() returned {type_name(result)}; return a tuple (text: str, cited: list[int], flags: list[str])",
        )
        text, cited, flags = result
        expect(isinstance(text, str) and text.strip(), f"{label(component)}: finish() returned text {text!r}; return the final answer text")
        expect(
            isinstance(cited, list) and all(isinstance(n, int) for n in cited),
            f"{label(component)}: finish() returned cited={cited!r}; return a list of passage numbers (int)",
        )
        expect(
            all(1 <= n <= len(prompt.passages) for n in cited),
            f"{label(component)}: finish() cites {cited} but the prompt has {len(prompt.passages)} passages; return only numbers 1..{len(prompt.passages)} and flag the others (e.g. 'invalid-citation:[99]')",
        )
        expect(
            isinstance(flags, list) and all(isinstance(f, str) for f in flags),
            f"{label(component)}: finish() returned flags={flags!r}; return a list of str",
        )


class GeneratorContract(ComponentContract):
    """Checks a :class:`fourfold.Generator`: ``generate`` returns text within
    ``limits.max_tokens``; ``stream`` yields pieces of the same answer.

    :cvar deterministic: the generator gives the same text for the same prompt (greedy
        decoding); set False for sampling or remote generators.
    """

    kind = "generator"
    deterministic: ClassVar[bool] = True

    @pytest.fixture
    def prompt(self) -> Prompt:
        passages = sample_passages(3)
        context = "\n".join(f"[{i}] {p.text}" for i, p in enumerate(passages, 1))
        return Prompt(
            messages=[
                Message("system", "Answer from the numbered passages and cite them like [1]."),
                Message("user", f"{context}\n\nQuestion: {SAMPLE_QUESTION}"),
            ],
            question=SAMPLE_QUESTION,
            passages=passages,
        )

    def count_tokens(self, component: Generator, text: str) -> int:
        """Tokens in ``text`` as the generator counts them. The default counts words,
        which never exceeds a model's token count; override for an exact check."""
        return len(text.split())

    def generate(self, component: Generator, prompt: Prompt, limits: GenerationLimits) -> str:
        __tracebackhide__ = True
        text = call(component, "generate", prompt, limits, fix="generate() must return the answer text (str)")
        expect(isinstance(text, str), f"{label(component)}: generate() returned {type_name(text)}; return the answer as a str")
        return text

    def test_describes_its_cost_or_none(self, component):
        check_cost_profile(component, GenerationWork)

    def test_generate_returns_text(self, component, prompt):
        text = self.generate(component, prompt, GenerationLimits(max_tokens=64))
        expect(text.strip(), f"{label(component)}: generate() returned an empty answer for a question its passages answer; return some text")

    @pytest.mark.parametrize("max_tokens", [8, 24])
    def test_max_tokens_is_respected(self, component, prompt, max_tokens):
        text = self.generate(component, prompt, GenerationLimits(max_tokens=max_tokens))
        n = self.count_tokens(component, text)
        expect(
            n <= max_tokens,
            f"{label(component)}: generate() returned {n} tokens with max_tokens={max_tokens}: stop after limits.max_tokens tokens",
        )

    def test_answers_without_passages(self, component):
        prompt = Prompt(messages=[Message("user", SAMPLE_QUESTION)], question=SAMPLE_QUESTION, passages=[])
        self.generate(component, prompt, GenerationLimits(max_tokens=32))

    def test_stream_yields_the_answer_in_pieces(self, component, prompt):
        limits = GenerationLimits(max_tokens=24)
        stream = call(component, "stream", prompt, limits, fix="stream() must return an iterable of str pieces")
        pieces = []
        try:
            for piece in stream:
                pieces.append(piece)
        except Exception as exc:
            from fourfold.testing.base import ContractFailure

            raise ContractFailure(f"{label(component)}: iterating stream() raised {type(exc).__name__}: {exc}") from exc
        for piece in pieces:
            expect(isinstance(piece, str), f"{label(component)}: stream() yielded {type_name(piece)}; yield str pieces")
        streamed = "".join(pieces)
        expect(streamed.strip(), f"{label(component)}: stream() yielded no text; yield the answer in pieces")
        n = self.count_tokens(component, streamed)
        expect(n <= limits.max_tokens, f"{label(component)}: stream() yielded {n} tokens with max_tokens={limits.max_tokens}: stop after limits.max_tokens tokens")
        if self.deterministic:
            whole = self.generate(component, prompt, limits)
            expect(
                _squash(streamed) == _squash(whole),
                f"{label(component)}: stream() yielded {streamed!r} but generate() returned {whole!r}; both must give the same answer "
                "(set deterministic = False on the test class if the generator samples)",
            )

    def test_generate_is_deterministic(self, component, prompt):
        if not self.deterministic:
            pytest.skip("deterministic = False")
        limits = GenerationLimits(max_tokens=16)
        first, second = self.generate(component, prompt, limits), self.generate(component, prompt, limits)
        expect(
            first == second,
            f"{label(component)}: generate() gave {first!r} then {second!r} for the same prompt; decode greedily, or set deterministic = False on the test class",
        )
