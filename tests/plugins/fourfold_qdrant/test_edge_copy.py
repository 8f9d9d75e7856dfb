"""A new qdrant-edge version starts as a copy of the published one; that copy must be
sound while other processes load and search the published shard (no WAL, no lock)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid

import numpy as np
import pytest

import fourfold
from fourfold_qdrant.edge import EdgeStore
from fourfold_qdrant.sparse import DEFAULT_SPARSE
from fourfold_qdrant.store import Probe

DIM = 16
N = 3000


def _chunk(i: int) -> fourfold.Chunk:
    text = f"passage number {i} about topic {i % 17}"
    return fourfold.Chunk(id=str(uuid.UUID(int=i + 1)), text=text, source=f"docs/{i % 50}.md", title=f"Doc {i % 50}", file_type="md")


def _vectors(ids, seed=0):
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(len(ids), DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


READER = textwrap.dedent(
    """
    import sys, os, qdrant_edge as q, numpy as np
    path, stop = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(int(sys.argv[3]))
    loads = errors = 0
    while not os.path.exists(stop):
        try:
            shard = q.EdgeShard.load(path)
            for _ in range(3):
                hits = shard.query(q.QueryRequest(limit=5, query=q.Query.Nearest(rng.normal(size=%d).tolist(), using="dense")))
                assert len(hits) == 5
            shard.close()
            loads += 1
        except Exception as exc:
            errors += 1
            print("error", exc, file=sys.stderr, flush=True)
    print(loads, errors)
    """
    % DIM
)


@pytest.mark.slow
def test_copying_a_shard_that_other_processes_read_is_safe(tmp_path):
    store = EdgeStore(DIM, DEFAULT_SPARSE, exact=True)
    base = tmp_path / "v000001" / "store"
    writer = store.create_version(base, None)
    chunks = [_chunk(i) for i in range(N)]
    vectors = _vectors(range(N))
    for i in range(0, N, 500):
        writer.upsert(chunks[i : i + 500], vectors[i : i + 500])
    writer.commit()

    stop = tmp_path / "stop"
    readers = [
        subprocess.Popen([sys.executable, "-c", READER, str(base), str(stop), str(k)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for k in range(2)
    ]
    probe = vectors[123].tolist()
    try:
        for n in range(8):
            location = tmp_path / f"v{n + 2:06d}" / "store"
            writer = store.create_version(location, base)
            writer.delete([chunks[n].id])
            new = _chunk(N + n)
            writer.upsert([new], _vectors([0], seed=100 + n))
            writer.commit()
            reader = store.open_version(location)
            try:
                assert reader.count() == N
                best = reader.search_many([Probe("dense", probe, 1)], None)[0][0]
                assert best.chunk.id == chunks[123].id and best.score == pytest.approx(1.0, abs=1e-5)
                ids = {c.id for c in reader.chunks()}
                assert chunks[n].id not in ids and new.id in ids
            finally:
                reader.close()
    finally:
        stop.write_text("stop")
        outputs = [r.communicate(timeout=60) for r in readers]
    for out, err in outputs:
        loads, errors = map(int, out.split())
        assert errors == 0, err
        assert loads > 0
    # the published base itself is untouched by its copies' deletes
    reader = store.open_version(base)
    try:
        assert reader.count() == N and chunks[0].id in {c.id for c in reader.chunks()}
    finally:
        reader.close()
