"""The all-MiniLM-L6-v2 embedder."""

FOURFOLD_PLUGIN_API = "1.0"
