"""Training from scratch (``causal-lm``) and fine-tuning (``lora``, ``full``,
``embedder-contrastive``, ``verifier-cross-encoder``): fourfold's builtin trainers and fine-tuners.

Heavy imports (torch, transformers, peft) happen inside the components' modules, which
load only when this plugin registers them; ``fourfold plugins`` stays fast because those
modules import torch lazily too.
"""

from __future__ import annotations

import fourfold

from .causal_finetune import FullFineTuner, LoraFineTuner
from .causal_lm import CausalLMTrainer
from .contrastive import EmbedderContrastiveFineTuner
from .verifier import VerifierCrossEncoderFineTuner

FOURFOLD_PLUGIN_API = "1.4"

__all__ = ["CausalLMTrainer", "LoraFineTuner", "FullFineTuner", "EmbedderContrastiveFineTuner", "VerifierCrossEncoderFineTuner"]


@fourfold.hookimpl
def register_trainers(register):
    register(CausalLMTrainer)


@fourfold.hookimpl
def register_fine_tuners(register):
    register(LoraFineTuner)
    register(FullFineTuner)
    register(EmbedderContrastiveFineTuner)
    register(VerifierCrossEncoderFineTuner)
