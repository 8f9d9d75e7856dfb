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


QUOTES = [
    (2, "They usually take two to four weeks to start working."),
    (1, "They should not be stopped suddenly."),
]
NO_ANSWER = "The documents of this assistant do not answer this question."


def keep(*pieces: str) -> str:
    from fourfold_generators.local import QuoteKeeper

    keeper = QuoteKeeper(QUOTES, NO_ANSWER)
    shown = "".join(keeper.feed(p) for p in pieces)
    return shown + keeper.close()


def test_a_sentence_that_states_what_a_quote_states_is_kept_in_the_models_words():
    text = keep("They usually take two to four ", "weeks to start working [2]. ")
    assert text.startswith("They usually take two to four weeks to start working [2].")


def test_a_sentence_that_drops_or_changes_a_quotes_number_is_replaced_by_the_quote():
    # "a few weeks" loses "two to four"; "12 weeks" is a number no quote states.
    assert keep("They can take a few weeks before they start working [2]. ").startswith(
        "They usually take two to four weeks to start working [2]."
    )
    assert "12 weeks" not in keep("They take 12 weeks to start working. ")


def test_the_quotes_the_model_did_not_use_follow_its_answer_best_first():
    text = keep("They should not be stopped suddenly [1].")
    assert text == "They should not be stopped suddenly [1]. They usually take two to four weeks to start working [2]."


def test_a_model_that_says_the_quotes_do_not_answer_gives_way_to_the_quotes():
    from fourfold_generators.local import QuoteKeeper

    keeper = QuoteKeeper(QUOTES, NO_ANSWER)
    shown = keeper.feed(NO_ANSWER + " But")
    assert keeper.done  # the model can be stopped
    assert shown.strip() == "They usually take two to four weeks to start working [2]. They should not be stopped suddenly [1]."


def test_echoed_prompt_labels_and_stray_marks_are_not_shown():
    text = keep("Quotes: They should not be stopped suddenly [1]. [2]. 10. ")
    assert not text.startswith("Quotes") and "[2]. 10." not in text and text.startswith("They should not")
