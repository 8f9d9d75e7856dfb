"""Parameter counts and FLOPs: the formulas agree with the real models."""

from __future__ import annotations

import pytest

from fourfold import ModelShape
from fourfold.sizing import count_safetensors_parameters


def test_the_gpt2_formula_counts_what_transformers_builds(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(vocab_size=1000, n_positions=64, n_embd=48, n_layer=3, n_head=4))
    shape = ModelShape.gpt2(vocab=1000, width=48, layers=3, context=64, heads=4)
    assert shape.parameters == sum(p.numel() for p in model.parameters())
    model.save_pretrained(tmp_path)
    assert count_safetensors_parameters(tmp_path) == shape.parameters
    assert ModelShape.from_folder(tmp_path).parameters == shape.parameters


def test_lora_parameters_match_what_peft_trains(tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(vocab_size=500, n_positions=32, n_embd=32, n_layer=2, n_head=2))
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=["c_attn", "c_proj", "c_fc"], fan_in_fan_out=True, task_type="CAUSAL_LM"))
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert ModelShape.gpt2(vocab=500, width=32, layers=2, context=32, heads=2).lora_parameters(4) == trainable


def test_training_flops_are_six_n_d_plus_attention():
    shape = ModelShape.gpt2(vocab=50257, width=768, layers=12, context=1024, heads=12)
    assert 123e6 < shape.parameters < 125e6  # GPT-2 small
    per_token = shape.training_flops_per_token(1024)
    assert per_token == pytest.approx(6 * shape.compute_parameters + 6 * 12 * 1024 * 768)
    assert shape.lora_flops_per_token(1024, 0) < per_token
