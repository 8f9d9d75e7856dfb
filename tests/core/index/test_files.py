"""Crash-safe file helpers: sparse copies, atomic replacement, the vector cache."""

from __future__ import annotations

import os

import numpy as np

from fourfold.index import VectorCache, copy_tree
from fourfold.index.files import write_atomic


def test_copy_tree_keeps_holes_and_content(tmp_path):
    src = tmp_path / "src"
    (src / "seg").mkdir(parents=True)
    big = src / "seg" / "page.dat"
    with big.open("wb") as fh:
        fh.write(b"head")
        fh.seek(64 * 1024 * 1024)
        fh.write(b"tail")
    (src / "skip.json").write_text("{}")
    (src / "seg" / "small.json").write_text('{"a": 1}')
    copy_tree(src, tmp_path / "dst", skip=("skip.json",))
    copied = tmp_path / "dst" / "seg" / "page.dat"
    assert copied.stat().st_size == big.stat().st_size
    assert copied.stat().st_blocks * 512 < 1024 * 1024  # still sparse on disk
    with copied.open("rb") as fh:
        assert fh.read(4) == b"head"
        fh.seek(64 * 1024 * 1024)
        assert fh.read(4) == b"tail"
    assert (tmp_path / "dst" / "seg" / "small.json").read_text() == '{"a": 1}'
    assert not (tmp_path / "dst" / "skip.json").exists()


def test_write_atomic_leaves_no_temp_files(tmp_path):
    target = tmp_path / "CURRENT"
    write_atomic(target, "v000001\n")
    write_atomic(target, "v000002\n")
    assert target.read_text() == "v000002\n"
    assert os.listdir(tmp_path) == ["CURRENT"]


def test_vector_cache_round_trip_per_model(tmp_path):
    vectors = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    with VectorCache(tmp_path / "v.sqlite", "model-a", 4) as cache:
        cache.put_many(["h1", "h2", "h3"], vectors)
        got = cache.get_many(["h2", "h9", "h1"])
        assert set(got) == {"h1", "h2"}
        assert np.array_equal(got["h2"], vectors[1])
    with VectorCache(tmp_path / "v.sqlite", "model-b", 4) as other:
        assert other.get_many(["h1"]) == {}  # another embedder never reuses these


def test_history_is_trimmed_and_skips_a_torn_line(tmp_path, monkeypatch):
    from fourfold.index import IndexLayout
    from fourfold.index import layout as layout_module

    monkeypatch.setattr(layout_module, "HISTORY_KEPT", 10)
    layout = IndexLayout(tmp_path, "kb")
    for i in range(25):
        layout.append_history("unchanged", version="v000001", n=i, padding="x" * 400)
    with layout.history_file.open("a") as fh:
        fh.write('{"event": "publ')  # a crash mid-append
    events = layout.history()
    assert 10 <= len(events) <= 20 and events[-1]["n"] == 24


def test_embed_with_cache_embeds_only_new_distinct_text(tmp_path):
    import fourfold
    from fourfold.index import EmbedStats, embed_with_cache

    class Counting(fourfold.Embedder):
        name = "counting"
        seen: list[str] = []

        model_id = "counting-1"
        dimension = 4

        def token_spans(self, text):
            return [(0, len(text))]

        def embed_documents(self, texts, progress=None):
            self.seen.extend(texts)
            out = np.zeros((len(texts), 4), dtype=np.float32)
            for i, t in enumerate(texts):
                out[i, len(t) % 4] = 1.0
            return out

    embedder = Counting()
    with VectorCache(tmp_path / "v.sqlite", embedder.model_id, 4) as cache:
        stats = EmbedStats()
        first = embed_with_cache(embedder, ["aa", "bbb", "aa"], cache, stats=stats)
        assert embedder.seen == ["bbb", "aa"] or sorted(embedder.seen) == ["aa", "bbb"]
        assert stats.embedded == 3 and stats.unique_embedded == 2 and stats.from_cache == 0
        stats = EmbedStats()
        again = embed_with_cache(embedder, ["bbb", "c"], cache, stats=stats)
        assert stats.from_cache == 1 and stats.embedded == 1 and embedder.seen[-1] == "c"
        assert np.array_equal(again[0], first[1])
