"""Training from scratch (causal-lm) and fine-tuning (lora, full, embedder-contrastive)."""

FOURFOLD_PLUGIN_API = "1.0"
