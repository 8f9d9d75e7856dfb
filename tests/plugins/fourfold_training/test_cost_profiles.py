"""What the builtin trainers and fine-tuners tell the advisor about a run, without running it."""

from __future__ import annotations

from fourfold.testing import make_context
from fourfold_training import CausalLMTrainer, EmbedderContrastiveFineTuner, FullFineTuner, LoraFineTuner


def test_causal_lm_describes_the_model_it_will_train(tmp_path):
    config = CausalLMTrainer.Config(vocab_size=4096, width=128, layers=2, heads=4, context=256, batch_size=8, steps=300, save_every=100)
    work = CausalLMTrainer(config, make_context(tmp_path, kind="trainer")).cost_profile()
    assert (work.method, work.batch_size, work.sequence_tokens, work.steps, work.save_every) == ("pretrain", 8, 256, 300, 100)
    assert work.model.parameters == 4096 * 128 + 256 * 128 + 2 * (12 * 128**2 + 13 * 128) + 256
    sizes = [c["width"] for c in CausalLMTrainer.calibration_configs()]
    assert len(sizes) == 2 and sizes[0] < sizes[1]  # two sizes separate step overhead from compute


def test_fine_tuners_name_their_base_and_data(tmp_path):
    context = make_context(tmp_path, kind="fine_tuner")
    lora = LoraFineTuner(LoraFineTuner.Config(base="artifact:base", data="pairs.jsonl", rank=16), context).cost_profile()
    assert (lora.method, lora.base_model, lora.adapter_rank, lora.examples_file) == ("fine-tune", "artifact:base", 16, context.path("pairs.jsonl"))
    assert FullFineTuner(FullFineTuner.Config(), context).cost_profile().adapter_rank is None
    encoder = EmbedderContrastiveFineTuner(EmbedderContrastiveFineTuner.Config(epochs=2), context).cost_profile()
    assert (encoder.method, encoder.epochs, encoder.steps, encoder.base_model) == ("contrastive", 2, None, None)
    assert LoraFineTuner.calibration_configs("small-model")[0]["base"] == "small-model"
