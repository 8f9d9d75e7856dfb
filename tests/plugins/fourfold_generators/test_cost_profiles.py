"""What the builtin generators tell the advisor about their cost, without loading a model."""

from __future__ import annotations

import pytest

import fourfold
from fourfold.testing import make_context
from fourfold_generators import Extractive, OpenAICompatible, SmolLM2, TransformersGenerator
from fourfold_generators.gguf import shape_from_gguf
from fourfold_generators.smollm2 import find_gguf


def test_smollm2_is_sized_from_its_gguf_header_without_loading_it(tmp_path):
    shape = shape_from_gguf(find_gguf())
    assert shape.family == "llama"
    assert shape.parameters == 134_515_008  # SmolLM2-135M-Instruct
    assert (shape.layers, shape.width, shape.kv_heads, shape.ffn) == (30, 576, 3, 1536)
    assert shape.tied and shape.compute_parameters == shape.parameters
    work = SmolLM2(SmolLM2.Config(), make_context(tmp_path, kind="generator")).cost_profile()
    assert work.model == shape and work.model_folder is None  # not converted: nothing was converted to size it
    assert work.max_tokens == 200 and not work.remote


def test_a_transformers_model_to_be_trained_is_named_for_the_advisor(tmp_path):
    context = make_context(tmp_path, kind="generator")
    context._services["resolve_model"] = lambda: (lambda ref: fourfold.ArtifactStore(context.settings).model_dir(ref.split(":", 1)[1]))
    gen = TransformersGenerator(TransformersGenerator.Config(model="artifact:later", prompt_format="plain", max_tokens=64), context)
    work = gen.cost_profile()
    assert (work.model, work.model_ref, work.model_folder, work.max_tokens, work.chat) == (None, "artifact:later", None, 64, False)


def test_extractive_runs_no_model_and_remote_models_cost_a_price(tmp_path):
    work = Extractive(Extractive.Config(max_candidates=10), make_context(tmp_path, kind="generator")).cost_profile()
    assert work.model is None and work.model_ref is None and work.embedded_tokens_per_question == 400
    remote = OpenAICompatible(OpenAICompatible.Config(base_url="http://127.0.0.1:9/v1", model="m"), make_context(tmp_path, kind="generator"))
    assert remote.cost_profile().remote


@pytest.mark.parametrize("cls", [Extractive, SmolLM2, TransformersGenerator])
def test_calibration_runs_build(cls, tmp_path):
    for config in cls.calibration_configs(str(tmp_path), quick=False):
        cls.Config.model_validate(config)
