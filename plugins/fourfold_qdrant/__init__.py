"""Dense, sparse and hybrid retrieval on the Qdrant engine (embedded qdrant-edge or a Qdrant server)."""

FOURFOLD_PLUGIN_API = "1.0"
