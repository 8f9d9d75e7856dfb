"""Dense, sparse and hybrid retrieval on the Qdrant engine (embedded qdrant-edge or a Qdrant server)."""

import fourfold

from fourfold_qdrant.retrievers import DenseRetriever, HybridRetriever, SparseRetriever

FOURFOLD_PLUGIN_API = "1.4"

__all__ = ["DenseRetriever", "SparseRetriever", "HybridRetriever"]


@fourfold.hookimpl
def register_retrievers(register):
    register(DenseRetriever)
    register(SparseRetriever)
    register(HybridRetriever)
