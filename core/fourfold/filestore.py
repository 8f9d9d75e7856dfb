"""An :class:`~fourfold.IndexStore` made of plain files, for retrievers that keep their
index in memory.

Each version folder holds ``chunks.jsonl`` (one chunk payload per line) and, when the
store keeps dense vectors, ``vectors.npy`` (row *i* belongs to line *i*). A reader loads
the whole version, which suits knowledge bases up to some hundred thousand chunks and
lets a third-party retriever get index versions, copy-on-refresh and rollback without
writing a storage engine.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from fourfold.components import IndexStore, VersionReader, VersionWriter
from fourfold.errors import IndexVersionError
from fourfold.files import atomic_file, write_json_atomic
from fourfold.types import Chunk

__all__ = ["FileIndexStore", "FileVersionReader", "FileVersionWriter"]

_CHUNKS = "chunks.jsonl"
_VECTORS = "vectors.npy"
_STORE = "store.json"


class FileIndexStore(IndexStore):
    """Index versions as files in each version folder.

    :param needs_vectors: keep dense vectors beside the chunks (``upsert`` then requires
        them); False for lexical retrievers.
    :param dimension: length of the vectors, when ``needs_vectors``; part of
        :attr:`store_id`, so a change of embedder never reuses old vectors.
    :param name: distinguishes stores of different retrievers in :attr:`store_id`.
    """

    def __init__(self, *, needs_vectors: bool = False, dimension: int | None = None, name: str = "files"):
        if needs_vectors and not dimension:
            raise ValueError("FileIndexStore(needs_vectors=True) needs the vectors' dimension")
        self._needs_vectors = needs_vectors
        self.dimension = dimension if needs_vectors else None
        self.name = name

    @property
    def store_id(self) -> str:
        return f"{self.name}-files1-{self.dimension}d" if self._needs_vectors else f"{self.name}-files1-text"

    @property
    def needs_vectors(self) -> bool:
        return self._needs_vectors

    def create_version(self, location: Path, base: Path | None) -> "FileVersionWriter":
        location = Path(location)
        location.mkdir(parents=True, exist_ok=True)
        writer = FileVersionWriter(self, location)
        if base is not None:
            reader = self.open_version(base)
            writer.upsert(reader.chunk_list, reader.vectors)
            reader.close()
        return writer

    def open_version(self, location: Path) -> "FileVersionReader":
        return FileVersionReader(self, Path(location))


class FileVersionWriter(VersionWriter):
    """Collects chunks in memory and writes them when committed."""

    def __init__(self, store: FileIndexStore, location: Path):
        self.store = store
        self.location = location
        self._chunks: dict[str, Chunk] = {}
        self._vectors: dict[str, np.ndarray] = {}

    def upsert(self, chunks: Sequence[Chunk], vectors: "np.ndarray | None") -> None:
        if self.store.needs_vectors:
            if vectors is None:
                raise ValueError(f"{self.store.store_id}: upsert() needs vectors for {len(chunks)} chunks")
            vectors = np.asarray(vectors, dtype=np.float32)
            if vectors.shape != (len(chunks), self.store.dimension):
                raise ValueError(
                    f"{self.store.store_id}: got vectors of shape {vectors.shape} for {len(chunks)} chunks; "
                    f"expected ({len(chunks)}, {self.store.dimension})"
                )
        for i, chunk in enumerate(chunks):
            self._chunks[chunk.id] = chunk
            if self.store.needs_vectors:
                self._vectors[chunk.id] = vectors[i]  # type: ignore[index]

    def delete(self, chunk_ids: Sequence[str]) -> None:
        for chunk_id in chunk_ids:
            self._chunks.pop(chunk_id, None)
            self._vectors.pop(chunk_id, None)

    def count(self) -> int:
        return len(self._chunks)

    def commit(self) -> None:
        ids = sorted(self._chunks)
        # Each file is written atomically and the store file, which marks the version
        # as committed, last: a crash never leaves a version that looks complete but is not.
        if self.store.needs_vectors:
            matrix = np.stack([self._vectors[i] for i in ids]) if ids else np.zeros((0, self.store.dimension), np.float32)
            with atomic_file(self.location / _VECTORS) as f:
                np.save(f, matrix.astype(np.float32))
        with atomic_file(self.location / _CHUNKS) as f:
            for chunk_id in ids:
                f.write((json.dumps(self._chunks[chunk_id].payload(), ensure_ascii=False) + "\n").encode("utf-8"))
        write_json_atomic(self.location / _STORE, {"store_id": self.store.store_id, "count": len(ids)})
        self._chunks.clear()
        self._vectors.clear()

    def abort(self) -> None:
        self._chunks.clear()
        self._vectors.clear()
        shutil.rmtree(self.location, ignore_errors=True)


class FileVersionReader(VersionReader):
    """A committed version, loaded whole.

    :ivar chunk_list: every chunk, in a fixed order.
    :ivar vectors: ``(len(chunk_list), dimension)`` float32 array, or None for a store
        without vectors.
    """

    def __init__(self, store: FileIndexStore, location: Path):
        self.location = location
        self.version = location.name
        marker = location / _STORE
        if not marker.is_file():
            raise IndexVersionError(f"{location}: not a committed index version ({_STORE} is missing)")
        meta = json.loads(marker.read_text(encoding="utf-8"))
        if meta.get("store_id") != store.store_id:
            raise IndexVersionError(
                f"{location}: built by store '{meta.get('store_id')}', but this retriever uses '{store.store_id}'; rebuild the index"
            )
        with (location / _CHUNKS).open(encoding="utf-8") as f:
            self.chunk_list: list[Chunk] = [Chunk.from_payload(json.loads(line)) for line in f if line.strip()]
        self.vectors: np.ndarray | None = np.load(location / _VECTORS) if store.needs_vectors else None

    def count(self) -> int:
        return len(self.chunk_list)

    def chunks(self) -> Iterator[Chunk]:
        return iter(self.chunk_list)

    def close(self) -> None:
        pass
