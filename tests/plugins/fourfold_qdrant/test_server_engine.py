"""The server engine end to end: every version of a domain in one collection as payload
ranges, the index records in Qdrant, so a host with an empty state dir serves and
refreshes; refreshes move only the change; rollback, pruning, namespaces and fencing.
qdrant-client's local mode stands in for the server here (same API, one process); the
multi-host tests run the same engine over HTTP (tests/core/worker/test_multi_host.py)."""

from __future__ import annotations

import pytest

import fourfold
from fourfold.errors import IndexVersionError
from fourfold.index import IndexLayout, refresh, rollback
from fourfold.index.lock import WriterLock
from fourfold_qdrant.server import OPEN, client_for

from ...core.worker.conftest import REDIS_URL
from ...core.index.conftest import TOPICS, make_manifest, snapshot, write_files

pytestmark = pytest.mark.slow


@pytest.fixture
def server_url(tmp_path):
    return f"local:{tmp_path / 'qdrant'}"


def host(manifest, home, url, **settings) -> fourfold.Domain:
    """The domain as a host with its own state dir sees it."""
    from fourfold.plugins import get_host

    plugins = get_host()
    return fourfold.Domain(fourfold.load_manifest(manifest, plugins), plugins, fourfold.Settings(home=home, qdrant_url=url, **settings))


def _points(client, collection):
    return client.scroll(collection, limit=10_000, with_payload=True)[0]


def test_versions_share_one_collection_and_a_refresh_writes_only_the_change(tmp_path, server_url):
    kb = tmp_path / "kb"
    write_files(kb, TOPICS)
    manifest = make_manifest(tmp_path, kb, keep=2)
    domain = host(manifest, tmp_path / "a", server_url)
    assert domain.retriever.open_store().store_id.startswith("qdrant-server/")
    client = client_for(server_url, None)

    first = refresh(domain)
    names = {c.name for c in client.get_collections().collections}
    assert names == {"fourfold--kb", "fourfold--kb--records"}
    before = {p.id for p in _points(client, "fourfold--kb")}

    (kb / "flu.txt").write_text("Measles is prevented by the MMR vaccine.\n")
    second = refresh(domain)
    assert second.base == "v000001" and second.chunks_embedded == 1
    after = {p.id: p.payload for p in _points(client, "fourfold--kb")}
    # one new point; the old flu chunk closed at v2, every other point untouched
    assert len(set(after) - before) == 1
    closed = [p for p in after.values() if p["_v_to"] != OPEN]
    assert len(closed) == 1 and closed[0]["source"] == "flu.txt" and closed[0]["_v_to"] == 2
    passages, version = domain.search("MMR vaccine measles", top_k=1)
    assert version == "v000002" and passages[0].chunk.source == "flu.txt"
    assert "_v_from" not in passages[0].chunk.payload()

    assert rollback(domain) == "v000001"
    assert domain.search("yearly flu vaccine", top_k=1)[0][0].chunk.text.startswith("Influenza")
    # a refresh on top of the rolled-back version: the base's closed chunk comes back as a
    # copy, the v2 chunk is closed, nothing else moves
    (kb / "asthma.md").write_text("# Asthma\n\nAsthma narrows the airways and is eased by inhalers.\n")
    (kb / "flu.txt").write_text(TOPICS["flu.txt"])
    third = refresh(domain)
    assert third.version == "v000003" and third.base == "v000001"
    assert domain.search("yearly flu vaccine", top_k=1)[0][0].chunk.text.startswith("Influenza")
    clean = host(make_manifest(tmp_path, kb, domain="kbclean", name="clean.yaml"), tmp_path / "clean", None)
    refresh(clean)
    assert _contents(snapshot(domain)) == _contents(snapshot(clean))

    # pruning (keep 2): only points a kept version holds remain
    refresh(domain, full=True)
    layout = IndexLayout.for_domain(domain)
    kept = [int(v[1:]) for v in layout.complete_versions()]
    assert layout.version_names()[-2:] == layout.complete_versions() and len(kept) == 2
    for p in _points(client, "fourfold--kb"):
        assert any(p.payload["_v_from"] <= k < p.payload["_v_to"] for k in kept), p.payload


def _contents(snap: dict) -> dict:
    return {k: v for k, v in snap.items() if k not in ("version",)}


def test_a_host_with_an_empty_state_dir_serves_and_refreshes_the_same_index(tmp_path, server_url):
    kb = tmp_path / "kb"
    write_files(kb, TOPICS)
    manifest = make_manifest(tmp_path, kb)
    a = host(manifest, tmp_path / "a", server_url)
    refresh(a)
    b = host(manifest, tmp_path / "b", server_url)  # nothing in its state dir
    passages, version = b.search("yearly flu vaccine", top_k=1)
    assert version == "v000001" and passages[0].chunk.source == "flu.txt"

    (kb / "asthma.md").write_text("# Asthma\n\nAsthma is eased by inhalers.\n")
    report = refresh(b)
    # numbered after a's version (never v000001 again) and incremental on it
    assert report.version == "v000002" and report.base == "v000001" and report.chunks_embedded == 1
    assert a.search("inhalers", top_k=1)[1] == "v000002"
    assert IndexLayout.for_domain(a).read_current() == "v000002"
    history = [e["event"] for e in IndexLayout.for_domain(a).history()]
    assert history.count("publish") == 2

    # the state dirs are caches: losing one changes nothing
    import shutil

    a.index.close()
    shutil.rmtree(tmp_path / "a")
    a2 = host(manifest, tmp_path / "a", server_url)
    assert a2.search("inhalers", top_k=1)[1] == "v000002"
    assert refresh(a2).reason == "no change"


def test_two_namespaces_on_one_server_never_touch_each_other(tmp_path, server_url):
    kb = tmp_path / "kb"
    write_files(kb, TOPICS)
    manifest = make_manifest(tmp_path, kb)
    client = client_for(server_url, None)
    blue = host(manifest, tmp_path / "blue", server_url, namespace="blue")
    refresh(blue)
    blue_points = {p.id: p.payload for p in _points(client, "blue--kb")}
    blue_records = {p.id: p.payload for p in _points(client, "blue--kb--records")}

    green = host(manifest, tmp_path / "green", server_url, namespace="green")
    (kb / "flu.txt").write_text("Measles is prevented by the MMR vaccine.\n")
    refresh(green)
    refresh(green, full=True)
    assert green.search("MMR", top_k=1)[1] == "v000002"
    assert blue.search("MMR", top_k=1)[1] == "v000001"
    assert {p.id: p.payload for p in _points(client, "blue--kb")} == blue_points
    assert {p.id: p.payload for p in _points(client, "blue--kb--records")} == blue_records
    names = {c.name for c in client.get_collections().collections}
    assert names == {"blue--kb", "blue--kb--records", "green--kb", "green--kb--records"}


def test_a_writer_whose_lock_was_taken_over_cannot_publish(tmp_path, server_url):
    kb = tmp_path / "kb"
    write_files(kb, TOPICS)
    manifest = make_manifest(tmp_path, kb)
    a = host(manifest, tmp_path / "a", server_url)
    refresh(a)
    stale = IndexLayout.for_domain(a)
    lock = stale.writer_lock()
    lock.acquire()  # a's writer: then it stalls (a long pause, its lease expires) …
    try:
        b = host(manifest, tmp_path / "b", server_url)
        (kb / "flu.txt").write_text("Measles is prevented by the MMR vaccine.\n")
        assert refresh(b).version == "v000002"  # … b takes over with a newer token
        with pytest.raises(IndexVersionError, match="newer fencing token"):
            stale.write_current("v000001")
    finally:
        lock.release()
    assert IndexLayout.for_domain(b).read_current() == "v000002"
    assert isinstance(stale.writer_lock().lock, WriterLock)  # no Redis broker: one host's flock


@pytest.fixture
def lease_namespace():
    import uuid

    import redis

    namespace = f"leasetest-{uuid.uuid4().hex[:8]}"
    yield namespace
    r = redis.Redis.from_url(REDIS_URL)
    for key in r.scan_iter(match=f"{namespace}:*"):
        r.delete(key)


def test_with_a_redis_broker_the_lock_is_a_lease_every_host_sees(tmp_path, server_url, lease_namespace):
    redis_url = REDIS_URL
    kb = tmp_path / "kb"
    write_files(kb, TOPICS)
    manifest = make_manifest(tmp_path, kb)
    a = host(manifest, tmp_path / "a", server_url, broker_url=redis_url, namespace=lease_namespace)
    b = host(manifest, tmp_path / "b", server_url, broker_url=redis_url, namespace=lease_namespace)
    refresh(a)
    with IndexLayout.for_domain(a).writer_lock():
        with pytest.raises(IndexVersionError, match="being written by pid"):
            refresh(b)
        assert IndexLayout.for_domain(b).writer_holder()["token"] >= 1
    assert IndexLayout.for_domain(b).writer_holder() is None
    (kb / "flu.txt").write_text("Measles is prevented by the MMR vaccine.\n")
    assert refresh(b).version == "v000002"


def test_a_build_that_died_is_cleared_once_and_its_number_never_reused(tmp_path, server_url):
    kb = tmp_path / "kb"
    write_files(kb, TOPICS)
    manifest = make_manifest(tmp_path, kb)
    a = host(manifest, tmp_path / "a", server_url)
    refresh(a)
    layout = IndexLayout.for_domain(a)
    with layout.writer_lock():
        dead = layout.next_version_name()  # a writer took v000002, then died before its catalog
    assert dead == "v000002" and "v000002" in layout.version_names()
    (kb / "flu.txt").write_text("Measles is prevented by the MMR vaccine.\n")
    b = host(manifest, tmp_path / "b", server_url)
    assert refresh(b).version == "v000003"
    assert IndexLayout.for_domain(b).version_names() == ["v000001", "v000003"]
    assert b.search("MMR vaccine", top_k=1)[1] == "v000003"
