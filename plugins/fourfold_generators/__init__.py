"""Generators: extractive, smollm2, transformers, openai-compatible."""

import fourfold

from .extractive import Extractive
from .local import TransformersGenerator
from .openai_compatible import OpenAICompatible
from .smollm2 import SmolLM2

FOURFOLD_PLUGIN_API = "1.4"

__all__ = ["Extractive", "TransformersGenerator", "SmolLM2", "OpenAICompatible"]


@fourfold.hookimpl
def register_generators(register):
    register(Extractive)
    register(SmolLM2)
    register(TransformersGenerator)
    register(OpenAICompatible)
