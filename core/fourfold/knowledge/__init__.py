"""Knowledge ingestion: find a domain's files, read them, cut them into chunks.

The index lifecycle (:mod:`fourfold.index`) calls, per refresh::

    scan = scan_sources(manifest)                   # files + warnings, never leaving a source
    digest = file_hash(file)                        # skip documents whose bytes are unchanged
    doc = load_document(domain, file)               # the loader for the file's extension
    chunks = chunk_document(doc, file, embedder=…, chunking=…, tags=scan.tags_for(file))
    vectors = embedder.embed_documents([text_for_embedding(c) for c in chunks])
"""

from fourfold.knowledge.chunking import HEADING_SEPARATOR, chunk_document, embedding_header, text_for_embedding
from fourfold.knowledge.loading import load_document, loader_config, loaders_for
from fourfold.knowledge.scan import ScanResult, file_hash, scan_sources, source_prefixes, source_roots

__all__ = [
    "HEADING_SEPARATOR",
    "ScanResult",
    "chunk_document",
    "embedding_header",
    "file_hash",
    "load_document",
    "loader_config",
    "loaders_for",
    "scan_sources",
    "source_prefixes",
    "source_roots",
    "text_for_embedding",
]
