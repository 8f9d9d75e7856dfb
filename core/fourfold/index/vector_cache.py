"""A content-addressed cache of embeddings: (embedder id, text hash) → vector.

Every refresh asks it first, so text that was embedded once, in any earlier version,
by a refresh that was killed half-way, or under another document name, is never
embedded again. Work is committed per batch: a killed refresh keeps what it embedded.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from fourfold.errors import IndexVersionError
from fourfold.files import describe_os_error
from fourfold.types import content_hash

if TYPE_CHECKING:
    from fourfold.components import Embedder, Progress

__all__ = ["VectorCache", "embed_with_cache", "EmbedStats"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    model TEXT NOT NULL,
    hash TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (model, hash)
) WITHOUT ROWID
"""
_LOOKUP_BATCH = 500


class VectorCache:
    """Vectors of one embedder (``model_id``) in an SQLite file shared by processes."""

    def __init__(self, path: Path, model_id: str, dimension: int):
        self.path = Path(path)
        self.model_id = model_id
        self.dimension = dimension
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False, isolation_level=None)
            # No WAL: its shared-memory file is mapped into the process, and a state dir
            # that turns read-only (or full) under a mapping kills the process with
            # SIGBUS. A rollback journal fails with an error instead.
            self._db.execute("PRAGMA journal_mode=DELETE")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise self._error("cannot open", exc) from None

    def _error(self, doing: str, exc: BaseException) -> IndexVersionError:
        if isinstance(exc, OSError):
            detail = describe_os_error(exc)
        else:
            code = getattr(exc, "sqlite_errorname", None)
            detail = f"{type(exc).__name__}: {exc}" + (f" ({code})" if code else "")
            try:
                os.stat(self.path.parent)
                if not os.access(self.path.parent, os.W_OK):
                    detail += f"; {describe_os_error(OSError(errno.EACCES, os.strerror(errno.EACCES)))} on {self.path.parent}"
            except OSError as missing:
                detail += f"; {describe_os_error(missing)} on {self.path.parent}"
        return IndexVersionError(f"{self.path}: {doing} the vector cache: {detail}")

    def get_many(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached vectors among ``hashes``."""
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        with self._lock:
            for i in range(0, len(unique), _LOOKUP_BATCH):
                part = unique[i : i + _LOOKUP_BATCH]
                marks = ",".join("?" * len(part))
                rows = self._db.execute(
                    f"SELECT hash, vector FROM vectors WHERE model = ? AND hash IN ({marks})", [self.model_id, *part]
                ).fetchall()
                for h, blob in rows:
                    vec = np.frombuffer(blob, dtype=np.float32)
                    if vec.shape[0] == self.dimension:
                        found[h] = vec
        return found

    def put_many(self, hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Store vectors (row i for ``hashes[i]``) in one transaction."""
        rows = [(self.model_id, h, np.ascontiguousarray(v, dtype=np.float32).tobytes()) for h, v in zip(hashes, vectors)]
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.executemany("INSERT OR REPLACE INTO vectors (model, hash, vector) VALUES (?, ?, ?)", rows)
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
            except (OSError, sqlite3.Error) as exc:
                raise self._error("cannot write to", exc) from None

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM vectors WHERE model = ?", [self.model_id]).fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "VectorCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EmbedStats:
    """How many vectors came from the cache and how many were computed (counted per
    input text; ``unique_embedded`` counts distinct texts sent to the embedder)."""

    def __init__(self) -> None:
        self.from_cache = 0
        self.embedded = 0
        self.unique_embedded = 0


class _Forward:
    """Hands the embedder's own ``advance`` calls on to the caller's progress, without
    letting it restart the stage for each slice."""

    def __init__(self, progress: "Progress | None"):
        self.progress = progress
        self.seen = 0

    def start(self, stage: str, total: int | None = None) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        self.seen += n
        if self.progress is not None:
            self.progress.advance(n)


def embed_with_cache(
    embedder: "Embedder",
    texts: Sequence[str],
    cache: VectorCache | None,
    *,
    progress: "Progress | None" = None,
    batch: int = 256,
    stats: EmbedStats | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Vectors for ``texts`` (row i for ``texts[i]``), embedding only text not cached.

    Identical texts are embedded once. Missing texts are embedded longest first in
    slices of ``batch`` (the embedder batches by length inside each slice) and each slice
    is committed to the cache before the next starts.
    """
    stats = stats or EmbedStats()
    n = len(texts)
    dim = embedder.dimension
    out = np.empty((n, dim), dtype=np.float32)
    if n == 0:
        return out
    hashes = [content_hash(t) for t in texts]
    cached = cache.get_many(hashes) if cache is not None else {}
    missing: dict[str, str] = {}
    for h, t in zip(hashes, texts):
        if h not in cached and h not in missing:
            missing[h] = t
    stats.from_cache += sum(1 for h in hashes if h in cached)
    computed: dict[str, np.ndarray] = {}
    if missing:
        if progress is not None:
            progress.start("embed", len(missing))
        todo = sorted(missing.items(), key=lambda kv: len(kv[1]), reverse=True)
        for start in range(0, len(todo), batch):
            part = todo[start : start + batch]
            forward = _Forward(progress)
            vectors = np.asarray(embedder.embed_documents([t for _, t in part], forward), dtype=np.float32)
            if vectors.shape != (len(part), dim):
                raise ValueError(f"embedder returned shape {vectors.shape} for {len(part)} texts of dimension {dim}")
            if cache is not None:
                cache.put_many([h for h, _ in part], vectors)
            for (h, _), v in zip(part, vectors):
                computed[h] = v
            if progress is not None and forward.seen < len(part):
                progress.advance(len(part) - forward.seen)
            if on_batch is not None:
                on_batch(len(part))
    stats.embedded += sum(1 for h in hashes if h in computed)
    stats.unique_embedded += len(computed)
    for i, h in enumerate(hashes):
        out[i] = cached[h] if h in cached else computed[h]
    return out
