"""The server engine end to end: one collection per version, publish = alias swap,
rollback swaps back, pruned versions lose their collections. qdrant-client's local mode
stands in for the server (same API)."""

from __future__ import annotations

import pytest

import fourfold
from fourfold.index import IndexLayout, refresh, rollback
from fourfold_qdrant.server import client_for

from ...core.index.conftest import TOPICS, load_domain, make_manifest, write_files

pytestmark = pytest.mark.slow


@pytest.fixture
def server_url(tmp_path, monkeypatch):
    url = f"local:{tmp_path / 'qdrant'}"
    monkeypatch.setenv("FOURFOLD_QDRANT_URL", url)
    fourfold.get_settings(fresh=True)
    return url


def _alias_target(client, alias):
    return {a.alias_name: a.collection_name for a in client.get_aliases().aliases}.get(alias)


def test_publish_swaps_the_alias_and_rollback_swaps_it_back(tmp_path, server_url):
    kb = tmp_path / "kb"
    write_files(kb, TOPICS)
    domain = load_domain(make_manifest(tmp_path, kb, keep=2))
    assert domain.retriever.open_store().store_id.startswith("qdrant-server/")
    client = client_for(server_url, None)

    first = refresh(domain)
    assert _alias_target(client, "fourfold-kb") == "fourfold-kb-v000001"
    (kb / "flu.txt").write_text("Measles is prevented by the MMR vaccine.\n")
    second = refresh(domain)
    assert second.base == "v000001" and second.chunks_embedded == 1
    assert _alias_target(client, "fourfold-kb") == "fourfold-kb-v000002"
    passages, version = domain.search("MMR vaccine measles", top_k=1)
    assert version == "v000002" and passages[0].chunk.source == "flu.txt"
    # clients of the alias see the new version too
    hits = client.scroll("fourfold-kb", limit=100, with_payload=True)[0]
    assert any("MMR" in h.payload["text"] for h in hits)

    assert rollback(domain) == "v000001"
    assert _alias_target(client, "fourfold-kb") == "fourfold-kb-v000001"
    assert domain.search("yearly flu vaccine", top_k=1)[0][0].chunk.text.startswith("Influenza")

    domain.index.close()  # a version still served is never deleted; let go of v000001
    rollback(domain, "v000002")
    (kb / "flu.txt").write_text("Rabies vaccine after an animal bite.\n")
    refresh(domain)
    (kb / "flu.txt").write_text("Tetanus shots every ten years.\n")
    refresh(domain)
    names = {c.name for c in client.get_collections().collections}
    assert "fourfold-kb-v000001" not in names and "fourfold-kb-v000002" not in names  # pruned with their versions
    assert {"fourfold-kb-v000003", "fourfold-kb-v000004"} <= names
    assert IndexLayout.for_domain(domain).version_names() == ["v000003", "v000004"]
    assert client.count("fourfold-kb", exact=True).count == first.chunks_total  # same documents, one edited
