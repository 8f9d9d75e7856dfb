"""The transformers generator: any local causal LM folder, or a model fourfold trained
(``artifact:NAME``); chat template when the tokenizer has one, plain text otherwise."""

from __future__ import annotations

import shutil
import textwrap

import pytest

import fourfold
from fourfold.artifacts import ArtifactStore
from fourfold.answering import answer
from fourfold.testing import tiny_causal_lm
from fourfold_generators import TransformersGenerator

from ...helpers.models import link_smollm2

QUESTION = "How often should cats be fed?"


def prompt() -> fourfold.Prompt:
    return fourfold.Prompt(
        messages=[fourfold.Message("system", "Answer briefly."), fourfold.Message("user", QUESTION)], question=QUESTION
    )


def domain_with(tmp_path, model: str) -> fourfold.Domain:
    (tmp_path / "domain.yaml").write_text(textwrap.dedent(f"""
        fourfold: 1
        domain: pets
        title: Pets
        prompt: {{use: plain}}
        generation: {{use: transformers, with: {{model: "{model}", max_tokens: 12}}}}
    """))
    return fourfold.Domain.from_file(tmp_path / "domain.yaml")


def test_a_model_without_chat_template_gets_a_plain_prompt(tmp_path):
    generator = TransformersGenerator(TransformersGenerator.Config(model=str(tiny_causal_lm())), None)
    local = generator.loaded()
    assert not local.has_chat_template
    text = generator.render(prompt(), local)
    assert text == f"Answer briefly.\n\nQuestion: {QUESTION}\nAnswer: "  # as fourfold's fine-tuners train
    out = generator.generate(prompt(), fourfold.GenerationLimits(max_tokens=6))
    # Six tokens at most: no longer than the six longest tokens of the vocabulary (decoded
    # text may not re-encode to the same tokens, so lengths are compared, not counts).
    longest = sorted(len(local.tokenizer.decode([i])) for i in range(len(local.tokenizer)))[-6:]
    assert isinstance(out, str) and out.strip() and len(out) <= sum(longest)


def test_a_folder_relative_to_the_manifest(tmp_path):
    shutil.copytree(tiny_causal_lm(), tmp_path / "models" / "tiny")
    domain = domain_with(tmp_path, "models/tiny")
    assert domain.generator.model_path() == (tmp_path / "models" / "tiny").resolve()
    result = answer(domain, QUESTION)
    assert result.domain == "pets" and result.index_version is None


def test_a_model_fourfold_trained_by_artifact_name(tmp_path):
    store = ArtifactStore(fourfold.get_settings())
    staging = store.staging_dir("pets-lm", "0" * 16)
    shutil.copytree(tiny_causal_lm(), staging / "model")
    store.commit("pets-lm", staging, {"kind": "causal-lm"})
    domain = domain_with(tmp_path, "artifact:pets-lm")
    assert domain.generator.model_path() == store.model_dir("pets-lm")
    assert isinstance(answer(domain, QUESTION).text, str)


def test_a_missing_model_names_the_generator_and_plugin(tmp_path):
    domain = domain_with(tmp_path, "models/nothing-here")
    with pytest.raises(fourfold.ComponentError) as err:
        answer(domain, QUESTION)
    message = str(err.value)
    assert message.startswith("generator 'transformers' (plugin 'generators') in domain 'pets':")
    assert "not a transformers model folder" in message


@pytest.mark.slow
def test_a_model_with_a_chat_template_gets_it(tmp_path):
    link = link_smollm2(fourfold.get_settings().state_dir)
    generator = TransformersGenerator(TransformersGenerator.Config(model=str(link)), None)
    text = generator.render(prompt(), generator.loaded())
    assert text.startswith("<|im_start|>system\nAnswer briefly.<|im_end|>") and text.endswith("<|im_start|>assistant\n")
