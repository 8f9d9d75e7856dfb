"""``answer_from: quotes``: a local model reads only the sentences the extractive
generator would quote, numbered as their passages, and no model runs when none answers."""

from __future__ import annotations

import textwrap

import pytest

import fourfold
from fourfold_generators.local import TransformersGenerator


def passage(text: str, n: int) -> fourfold.Passage:
    return fourfold.Passage(fourfold.Chunk(id=f"c{n}", text=text, source=f"doc{n}.md", title=f"Doc {n}"), 1.0 / n)


@pytest.fixture(scope="module")
def domain(tmp_path_factory):
    folder = tmp_path_factory.mktemp("quotes")
    (folder / "kb").mkdir()
    (folder / "domain.yaml").write_text(textwrap.dedent("""
        fourfold: 1
        domain: quotes-test
        title: Quotes test
        knowledge: {sources: [{path: kb}]}
        generation: {use: extractive}
    """))
    return fourfold.Domain.from_file(folder / "domain.yaml")


def generator(domain) -> TransformersGenerator:
    # The model folder does not exist: a test that ran the model would fail loading it.
    config = TransformersGenerator.Config(model="no-such-model-folder", answer_from="quotes")
    return TransformersGenerator(config, domain.generator.context)


def test_the_model_reads_only_the_quotes_numbered_as_their_passages(domain):
    passages = [
        passage("Opening hours are 9am to 5pm on weekdays. The car park is behind the building.", 1),
        passage("Cool a burn under cool running water for 20 minutes. Do not use ice or butter.", 2),
    ]
    prompt = domain.prompt_strategy.build("How long should I cool a burn under water?", passages, [])
    rewritten = generator(domain).from_quotes(prompt)
    assert isinstance(rewritten, fourfold.Prompt)
    text = "\n".join(m.content for m in rewritten.messages)
    assert "[2] Cool a burn under cool running water for 20 minutes." in text
    assert "car park" not in text and rewritten.passages == prompt.passages


def test_when_no_sentence_answers_the_no_answer_text_comes_without_the_model(domain):
    passages = [passage("Opening hours are 9am to 5pm on weekdays. The car park is behind the building.", 1)]
    prompt = domain.prompt_strategy.build("What is the capital gains tax rate in Australia?", passages, [])
    pieces = list(generator(domain).stream(prompt, fourfold.GenerationLimits()))
    text = "".join(p for p in pieces if isinstance(p, str) and not isinstance(p, fourfold.GeneratedText))
    assert text == prompt.metadata["no_answer"]
