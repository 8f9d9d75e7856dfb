"""Generators: extractive, smollm2, transformers, openai-compatible."""

FOURFOLD_PLUGIN_API = "1.0"
