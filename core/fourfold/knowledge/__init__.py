"""Knowledge ingestion: find a domain's files, read them, cut them into chunks.

The index lifecycle (:mod:`fourfold.index`) calls, per refresh::

    scan = scan_sources(manifest)                   # files + warnings, never leaving a source
    digest = file_hash(file)                        # skip documents whose bytes are unchanged
    records = load_records(domain, file, scan.source_of(file))   # one document per record
    chunks = chunk_document(record, file, embedder=…, chunking=…, tags=scan.tags_for(file),
                            record=None if len(records) == 1 else i)
    vectors = embedder.embed_documents([text_for_embedding(c) for c in chunks])
"""

from fourfold.knowledge.chunking import HEADING_SEPARATOR, chunk_document, chunk_metadata, embedding_header, text_for_embedding
from fourfold.knowledge.loading import load_document, load_records, loader_config, loader_for, loader_identity, loaders_for
from fourfold.knowledge.scan import ScanResult, file_hash, scan_sources, source_prefixes, source_roots

__all__ = [
    "HEADING_SEPARATOR",
    "ScanResult",
    "chunk_document",
    "chunk_metadata",
    "embedding_header",
    "file_hash",
    "load_document",
    "load_records",
    "loader_config",
    "loader_for",
    "loader_identity",
    "loaders_for",
    "scan_sources",
    "source_prefixes",
    "source_roots",
    "text_for_embedding",
]
