"""An in-memory BM25 retriever (pure Python; no vector engine)."""

FOURFOLD_PLUGIN_API = "1.0"
