"""Knowledge ingestion: find a domain's files, read them, cut them into chunks.

The index lifecycle (:mod:`fourfold.index`) calls, per refresh::

    scan = scan_domain(domain, previous)            # files + warnings, never leaving a source
    digest = scan.marker(file)                      # skip documents whose marker (or bytes) is unchanged
    scan.fetch(file)                                # a source component's document, downloaded
    records = load_records(domain, file, scan.source_of(file))   # one document per record
    chunks = chunk_document(record, file, embedder=…, chunking=…, tags=scan.tags_for(file),
                            record=None if len(records) == 1 else i)
    vectors = embedder.embed_documents([text_for_embedding(c) for c in chunks])

Trainers, fine-tuners and statistics read whole documents instead:
:func:`read_documents` (scan, fetch and read each file, skipping unreadable ones) and
:func:`knowledge_documents` (all of them, as a list).
"""

from fourfold.knowledge.chunking import HEADING_SEPARATOR, chunk_document, chunk_metadata, embedding_header, text_for_embedding
from fourfold.knowledge.documents import knowledge_documents, read_documents
from fourfold.knowledge.loading import DomainLoaders, load_document, load_records, loader_config, loader_for, loader_identity, loaders_for
from fourfold.knowledge.scan import ScanResult, file_hash, scan_sources, source_prefixes, source_roots
from fourfold.knowledge.sources import FolderSource, scan_domain

__all__ = [
    "DomainLoaders",
    "FolderSource",
    "HEADING_SEPARATOR",
    "ScanResult",
    "chunk_document",
    "chunk_metadata",
    "embedding_header",
    "file_hash",
    "knowledge_documents",
    "load_document",
    "load_records",
    "loader_config",
    "loader_for",
    "loader_identity",
    "loaders_for",
    "read_documents",
    "scan_domain",
    "scan_sources",
    "source_prefixes",
    "source_roots",
    "text_for_embedding",
]
