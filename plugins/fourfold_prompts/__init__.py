"""Prompt strategies: grounded-citations, few-shot, step-by-step, plain."""

FOURFOLD_PLUGIN_API = "1.0"
