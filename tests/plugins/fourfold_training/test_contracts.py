"""The builtin trainer and fine-tuners pass the contracts third-party ones are held to."""

from __future__ import annotations

import json

import pytest

import fourfold_training
from fourfold.testing import FineTunerContract, TrainerContract
from fourfold_training import CausalLMTrainer, EmbedderContrastiveFineTuner, FullFineTuner, LoraFineTuner

from .conftest import instruction_pairs, write_jsonl

pytestmark = pytest.mark.slow

TINY_STEPS = {"steps": 4, "save_every": 2, "warmup_steps": 1, "batch_size": 4}


class TestCausalLMContract(TrainerContract):
    component_class = CausalLMTrainer
    plugin = fourfold_training
    config = {"vocab_size": 300, "layers": 1, "width": 16, "heads": 2, "context": 16, **TINY_STEPS}


class _CausalFineTunerContract(FineTunerContract):
    plugin = fourfold_training
    @pytest.fixture
    def component_config(self, component_context, tiny_causal_lm):
        write_jsonl(component_context.base_dir / "pairs.jsonl", instruction_pairs(12))
        return {"base": str(tiny_causal_lm), "data": "pairs.jsonl", "max_length": 48, **TINY_STEPS}


class TestLoraContract(_CausalFineTunerContract):
    component_class = LoraFineTuner


class TestFullContract(_CausalFineTunerContract):
    component_class = FullFineTuner


class TestEmbedderContrastiveContract(FineTunerContract):
    component_class = EmbedderContrastiveFineTuner
    plugin = fourfold_training

    @pytest.fixture
    def component_config(self, component_context):
        pairs = [
            {"question": f"What should I do about {topic}?", "passage": f"{topic.capitalize()}: {advice}."}
            for topic, advice in [
                ("a nosebleed", "lean forward and pinch the soft part of the nose"),
                ("sunburn", "cool the skin and drink water"),
                ("a sprain", "rest, ice, compress and elevate"),
                ("heartburn", "eat smaller meals and avoid lying down after eating"),
                ("a migraine", "rest in a dark room"),
                ("a cough", "drink warm fluids and rest"),
            ]
        ]
        (component_context.base_dir / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
        return {"data": "pairs.jsonl", "steps": 2, "batch_size": 4, "max_passage_tokens": 32, "max_query_tokens": 16, "eval_fraction": 0.34}
