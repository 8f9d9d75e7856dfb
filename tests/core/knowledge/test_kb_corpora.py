"""The shipped demo knowledge folders read end to end: every file loads or is reported."""

from __future__ import annotations

import pytest

import fourfold
from fourfold.knowledge import chunk_document, load_document, scan_sources

pytestmark = pytest.mark.slow  # ~600 files through every loader and the tokenizer


@pytest.mark.parametrize("folder, files", [("kb-medical", 326), ("kb-legal", 264)])
def test_every_file_of_the_demo_folders_loads_and_chunks(shared_data, knowledge_domain, minilm, folder, files):
    domain = knowledge_domain(f"sources: [{{path: {shared_data / folder}}}]")
    chunking = domain.manifest.knowledge.chunking
    scan = scan_sources(domain.manifest)
    assert scan.warnings == []
    assert len(scan.files) == files  # the README's count plus README.md itself
    problems, chunk_count = [], 0
    for file in scan.files:
        try:
            doc = load_document(domain, file)
        except fourfold.KnowledgeError as exc:
            problems.append(str(exc))
            continue
        chunks = chunk_document(doc, file, embedder=minilm, chunking=chunking, tags=scan.tags_for(file))
        assert chunks, f"{file.relpath} gave no chunks"
        assert all(c.source == file.relpath and c.title for c in chunks)
        if file.suffix == "pdf":
            assert all(c.page for c in chunks)
        chunk_count += len(chunks)
    assert problems == []
    assert chunk_count > len(scan.files)
    # figures (files, chunks, timings): python tests/benchmarks/bench_ingest.py
