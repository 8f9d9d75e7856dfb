"""The pure-Python ``bm25`` retriever through the whole lifecycle: no vectors stored,
nothing embedded, same incremental behaviour."""

from __future__ import annotations

import pytest

from fourfold.index import refresh
from fourfold_bm25 import tokenize

from ...core.index.conftest import TOPICS, load_domain, make_manifest, write_files


def test_tokenize_folds_case_plurals_and_stop_words():
    assert tokenize("The Policies of our Companies") == ["policy", "company"]
    assert tokenize("diseases classes bus") == ["disease", "class", "bus"]


@pytest.mark.slow  # chunking loads the embedder's tokenizer
def test_bm25_domain_builds_without_embedding_and_refreshes_incrementally(tmp_path):
    kb = tmp_path / "kb"
    write_files(kb, TOPICS)
    domain = load_domain(make_manifest(tmp_path, kb, retriever="bm25"))
    first = refresh(domain)
    assert first.published and first.chunks_embedded == 0 and "embed" not in first.timings
    passages, version = domain.search("monthly rent tenant", top_k=2)
    assert version == "v000001" and passages[0].chunk.source == "legal/lease.txt"
    (kb / "legal" / "lease.txt").write_text("The landlord repairs the heating.\n")
    second = refresh(domain)
    assert second.changed == ["legal/lease.txt"] and second.base == "v000001"
    passages, version = domain.search("heating repairs landlord", top_k=1)
    assert version == "v000002" and passages[0].chunk.source == "legal/lease.txt"
    assert domain.search("monthly rent tenant", top_k=3)[0] == [] or all(
        "rent" not in p.chunk.text for p in domain.search("monthly rent tenant", top_k=3)[0]
    )


@pytest.mark.slow
def test_searching_a_qdrant_index_with_bm25_says_why_not(tmp_path):
    import fourfold

    kb = tmp_path / "kb"
    write_files(kb, TOPICS)
    domain = load_domain(make_manifest(tmp_path, kb, retriever="hybrid"))
    refresh(domain)
    with pytest.raises(fourfold.IndexVersionError, match="retriever 'bm25' reads store"):
        domain.search("rent", retriever=domain.build("retriever", "bm25"))
