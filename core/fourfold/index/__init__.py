"""Versioned, incremental knowledge indexes: the one lifecycle the CLI and the worker use.

- :func:`refresh` builds and publishes a new version as a delta on the published one;
- :func:`rollback` publishes an earlier version again;
- :func:`index_status` says what is published, what is kept and what happened;
- :class:`PublishedIndex` serves the published version and follows new publishes.
"""

from fourfold.files import copy_tree
from fourfold.index.layout import Catalog, DocumentEntry, IndexLayout
from fourfold.index.lifecycle import chunk_fingerprint, embedding_text, refresh, rollback
from fourfold.index.lock import WriterLock
from fourfold.index.published import PublishedIndex, no_index_message, retriever_for
from fourfold.index.report import IndexStatus, RefreshReport, VersionInfo
from fourfold.index.status import changed_documents, index_status
from fourfold.index.vector_cache import EmbedStats, VectorCache, embed_with_cache

__all__ = [
    "Catalog",
    "DocumentEntry",
    "EmbedStats",
    "IndexLayout",
    "IndexStatus",
    "PublishedIndex",
    "RefreshReport",
    "VectorCache",
    "VersionInfo",
    "WriterLock",
    "changed_documents",
    "chunk_fingerprint",
    "copy_tree",
    "embed_with_cache",
    "embedding_text",
    "index_status",
    "no_index_message",
    "refresh",
    "retriever_for",
    "rollback",
]
