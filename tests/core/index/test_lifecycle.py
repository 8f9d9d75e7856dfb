"""refresh / publish / rollback with the real embedder and the real qdrant-edge engine."""

from __future__ import annotations

import fcntl
import os

import pytest

import fourfold
from fourfold.index import IndexLayout, WriterLock, index_status, refresh, rollback

from .conftest import TOPICS, load_domain, make_manifest, snapshot, write_files

pytestmark = pytest.mark.slow  # the embedder is loaded once per process


def _search_sources(domain, query, k=3):
    passages, version = domain.search(query, top_k=k)
    return [p.chunk.source for p in passages], version


def test_first_build_publishes_a_searchable_version(tmp_path, kb):
    domain = load_domain(make_manifest(tmp_path, kb))
    report = refresh(domain)
    assert report.published and report.version == "v000001" and report.full and report.reason == "first build"
    assert sorted(report.added) == sorted(TOPICS)
    assert report.chunks_total >= len(TOPICS)
    assert report.chunks_embedded + report.chunks_from_cache == report.chunks_total
    assert set(report.timings) >= {"scan", "hash", "load", "embed", "write", "optimize", "publish", "total"}
    sources, version = _search_sources(domain, "what treats diabetes? metformin")
    assert version == "v000001" and sources[0] == "diabetes.md"
    status = index_status(domain)
    assert status.published == "v000001" and status.documents == len(TOPICS) and status.chunks == report.chunks_total
    assert status.to_dict()["versions"][0]["published"] is True
    assert "published v000001" in report.summary()


def test_no_change_publishes_nothing_and_reads_nothing(tmp_path, kb):
    domain = load_domain(make_manifest(tmp_path, kb))
    refresh(domain)
    again = refresh(domain)
    assert not again.published and again.reason == "no change" and again.version == "v000001"
    assert again.chunks_embedded == 0 and "load" not in again.timings
    assert len(again.unchanged) == len(TOPICS)
    assert IndexLayout.for_domain(domain).version_names() == ["v000001"]


def test_an_edit_reembeds_only_the_edited_documents_chunks(tmp_path, kb):
    domain = load_domain(make_manifest(tmp_path, kb))
    first = refresh(domain)
    (kb / "flu.txt").write_text(TOPICS["flu.txt"] + "Antiviral drugs such as oseltamivir shorten the illness.\n")
    report = refresh(domain)
    assert report.published and report.version == "v000002" and report.base == "v000001" and not report.full
    assert report.changed == ["flu.txt"] and not report.added and not report.removed
    assert 1 <= report.chunks_embedded <= 2
    assert report.chunks_kept == first.chunks_total - 1  # flu.txt is a single chunk
    sources, version = _search_sources(domain, "oseltamivir antiviral")
    assert version == "v000002" and sources[0] == "flu.txt"


def test_add_delete_rename_and_duplicate(tmp_path, kb):
    domain = load_domain(make_manifest(tmp_path, kb))
    refresh(domain)
    os.rename(kb / "asthma.md", kb / "lungs.md")
    (kb / "legal" / "lease.txt").unlink()
    write_files(kb, {"copy-of-flu.txt": TOPICS["flu.txt"], "new.md": "# Gout\n\nGout is a painful form of arthritis.\n"})
    report = refresh(domain)
    assert report.renamed == [{"from": "asthma.md", "to": "lungs.md"}]
    assert report.removed == ["legal/lease.txt"] and sorted(report.added) == ["copy-of-flu.txt", "new.md"]
    # the renamed and the duplicated text were embedded before: only gout is new
    assert report.chunks_embedded == 1
    assert snapshot(domain)["count"] == report.chunks_total
    sources, _ = _search_sources(domain, "asthma wheezing airways")
    assert sources[0] == "lungs.md"
    assert "legal/lease.txt" not in {s for s in _search_sources(domain, "monthly rent tenant", k=10)[0]}


def test_rollback_republishes_the_previous_version(tmp_path, kb):
    domain = load_domain(make_manifest(tmp_path, kb))
    refresh(domain)
    (kb / "flu.txt").write_text("Measles is prevented by the MMR vaccine.\n")
    refresh(domain)
    assert _search_sources(domain, "MMR measles vaccine")[1] == "v000002"
    assert rollback(domain) == "v000001"
    sources, version = _search_sources(domain, "yearly flu vaccine droplets")
    assert version == "v000001" and sources[0] == "flu.txt"
    assert rollback(domain, "v000002") == "v000002"
    assert domain.index.version == "v000002"
    with pytest.raises(fourfold.IndexVersionError, match="no index version 'v000009'"):
        rollback(domain, "v000009")
    events = [e["event"] for e in index_status(domain).history]
    assert events == ["publish", "publish", "rollback", "rollback"]
    # the next refresh builds on what is published now
    (kb / "flu.txt").write_text("Measles is prevented by the MMR vaccine. Two doses are given.\n")
    assert refresh(domain).base == "v000002"


def test_versions_beyond_keep_versions_are_deleted(tmp_path, kb):
    domain = load_domain(make_manifest(tmp_path, kb, keep=2))
    for i in range(4):
        (kb / "flu.txt").write_text(f"Influenza note number {i}.\n")
        refresh(domain)
    layout = IndexLayout.for_domain(domain)
    assert layout.version_names() == ["v000003", "v000004"]
    assert rollback(domain) == "v000003"
    with pytest.raises(fourfold.IndexVersionError, match="nothing to roll back to"):
        rollback(domain)

def test_a_refused_version_is_never_published(tmp_path, kb):
    calls = []

    class Listener:
        FOURFOLD_PLUGIN_API = "1.0"

        @fourfold.hookimpl
        def index_refresh_failed(self, domain, error):
            calls.append((domain, error))

    domain = load_domain(make_manifest(tmp_path, kb, min_chunks=1000))
    assert domain.host.register(Listener(), name="listener").status == "loaded"
    try:
        with pytest.raises(fourfold.IndexVersionError, match="min_chunks"):
            refresh(domain)
    finally:
        domain.host.unregister("listener")
    layout = IndexLayout.for_domain(domain)
    assert layout.read_current() is None and layout.version_names() == []
    assert calls and calls[0][0] == "kb" and "min_chunks" in calls[0][1]
    assert index_status(domain).history[-1]["event"] == "failed"
    with pytest.raises(fourfold.IndexVersionError, match=r"no published index for domain 'kb'; run 'fourfold index build"):
        domain.search("anything")


def test_publish_calls_the_hook_with_the_report(tmp_path, kb):
    seen = []

    class Listener:
        FOURFOLD_PLUGIN_API = "1.0"

        @fourfold.hookimpl
        def index_published(self, domain, version, report):
            seen.append((domain, version, report.chunks_total))

    domain = load_domain(make_manifest(tmp_path, kb))
    assert domain.host.register(Listener(), name="listener").status == "loaded"
    try:
        report = refresh(domain)
        refresh(domain)  # no change: no publish, no call
    finally:
        domain.host.unregister("listener")
    assert seen == [("kb", "v000001", report.chunks_total)]


def test_a_second_writer_is_told_who_holds_the_index(tmp_path, kb):
    domain = load_domain(make_manifest(tmp_path, kb))
    layout = IndexLayout.for_domain(domain)
    with WriterLock(layout.lock_file, "kb"):
        with pytest.raises(fourfold.IndexVersionError, match=rf"being written by pid {os.getpid()}"):
            refresh(domain)
        with pytest.raises(fourfold.IndexVersionError, match="being written"):
            refresh(domain, wait=0.2)
    assert refresh(domain).published


def test_broken_and_removed_files_are_warnings(tmp_path, kb):
    (kb / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    domain = load_domain(make_manifest(tmp_path, kb))
    report = refresh(domain)
    assert report.published and "broken.pdf" in report.skipped
    assert any("broken.pdf" in w for w in report.warnings)


def test_leftovers_of_a_crashed_refresh_are_removed(tmp_path, kb):
    domain = load_domain(make_manifest(tmp_path, kb))
    refresh(domain)
    layout = IndexLayout.for_domain(domain)
    junk = layout.version_dir("v000007")
    (junk / "store" / "segments").mkdir(parents=True)
    (layout.versions_dir / ".trash-v000003-1-2").mkdir()
    (kb / "flu.txt").write_text("Influenza changed.\n")
    report = refresh(domain)
    assert report.published
    assert not junk.exists() and not list(layout.trash())
    assert layout.read_current() == report.version


def test_vectors_survive_a_failed_refresh(tmp_path, kb, monkeypatch):
    domain = load_domain(make_manifest(tmp_path, kb))

    class Boom(Exception):
        pass

    class FailAtWrite:
        def start(self, stage, total=None):
            if stage == "write":
                raise Boom("killed at write")

        def advance(self, n=1):
            pass

    with pytest.raises(Boom):
        refresh(domain, FailAtWrite())
    layout = IndexLayout.for_domain(domain)
    assert layout.read_current() is None
    report = refresh(domain)
    assert report.published and report.chunks_embedded == 0 and report.chunks_from_cache == report.chunks_total


def test_changing_chunking_rebuilds_everything(tmp_path, kb):
    refresh(load_domain(make_manifest(tmp_path, kb, max_tokens=64)))
    domain = load_domain(make_manifest(tmp_path, kb, max_tokens=128))
    report = refresh(domain)
    assert report.published and report.full and report.base is None
    assert "chunking" in report.reason


def test_readers_hold_off_deletion_of_the_version_they_serve(tmp_path, kb):
    domain = load_domain(make_manifest(tmp_path, kb, keep=1))
    refresh(domain)
    layout = IndexLayout.for_domain(domain)
    fd = layout.open_for_reading("v000001")
    try:
        (kb / "flu.txt").write_text("Influenza v2.\n")
        report = refresh(domain)
        assert layout.is_complete("v000001"), "a served version is not deleted"
        assert any("still being served" in w for w in report.warnings)
    finally:
        os.close(fd)
    (kb / "flu.txt").write_text("Influenza v3.\n")
    refresh(domain)
    assert layout.version_names() == ["v000003"]


def test_other_retrievers_read_an_index_built_with_custom_bm25_settings(tmp_path, kb):
    from fourfold.index import retriever_for

    manifest = make_manifest(tmp_path, kb)
    text = manifest.read_text().replace("with: {top_k: 3}", "with: {top_k: 3, title_weight: 0.5, sparse_weight: 2}")
    manifest.write_text(text)
    domain = load_domain(manifest)
    refresh(domain)
    sparse = retriever_for(domain, "sparse")
    assert sparse.config.title_weight == 0.5 and sparse.config.top_k == 3
    passages, version = domain.search("asthma wheezing", retriever=sparse)
    assert version == "v000001" and passages[0].chunk.source == "asthma.md"
    changed = load_domain(make_manifest(tmp_path, kb, name="default.yaml"))  # default title_weight: another store
    report = refresh(changed)
    assert report.full and "store changed" in report.reason and report.chunks_embedded == 0
