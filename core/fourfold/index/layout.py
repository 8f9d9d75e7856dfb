"""Where a domain's index lives on disk, and the small records kept beside the store.

::

    <state>/domains/<domain>/index/
        CURRENT                 name of the published version ("v000004"), replaced atomically
        FENCE                   the highest fencing token a background writer published with
        history.jsonl           one JSON line per publish, rollback, refusal or failure
        writer.lock             flock held by the one process that writes
        vectors.sqlite          content-addressed vector cache (embedder id + text hash)
        versions/v000004/
            catalog.json        documents -> content hash and chunk ids; written last,
                                so a version folder without it is unfinished
            report.json         what the refresh that built it did
            PUBLISHED           present once CURRENT has named the version (it was served)
            store/              the retriever store's own folder (a qdrant-edge shard, …)
            .readers            processes serving this version hold a shared flock on it

A version is complete when its ``catalog.json`` exists; only complete versions are ever
named in ``CURRENT``. A version is *published* once ``CURRENT`` has named it; its
``PUBLISHED`` marker and its ``publish`` line in the history are written right after, and
the next writer writes them for a version ``CURRENT`` names without them (a crash in
between). Everything else under ``versions/`` (complete or not), and temporary files
of atomic writes, are left over from a refresh that died and are removed by the next
writer.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from fourfold.errors import IndexVersionError
from fourfold.files import append_line, open_shared, remove_tree, write_atomic, write_json_atomic
from fourfold.index.lock import WriterLock, writer_lock_factory

if TYPE_CHECKING:
    from fourfold.components import IndexStore
    from fourfold.domain import Domain

_LAYOUTS: "weakref.WeakKeyDictionary[Any, IndexLayout]" = weakref.WeakKeyDictionary()

__all__ = ["IndexLayout", "Catalog", "DocumentEntry", "VERSION_PATTERN", "servable", "version_number", "version_name"]

VERSION_PATTERN = re.compile(r"^v(\d{6,})$")
HISTORY_KEPT = 1000
CATALOG_FORMAT = 1
_RECORD_FILES = {"held": "HELD"}


def version_name(number: int) -> str:
    return f"v{number:06d}"


def version_number(name: str) -> int:
    m = VERSION_PATTERN.match(name)
    if not m:
        raise ValueError(f"'{name}' is not a version name like 'v000004'")
    return int(m.group(1))


@dataclass
class DocumentEntry:
    """One document of a version: its content hash and its chunks as ``(id, fingerprint)``.

    The fingerprint covers the chunk's payload and the text that was embedded, so a
    chunk is reused only when nothing a reader sees of it changed.
    """

    hash: str
    file_type: str
    chunks: list[tuple[str, str]] = field(default_factory=list)
    loader: str = ""  # fingerprint of the loader (name, version, plugin, settings) that read it

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"hash": self.hash, "type": self.file_type, "chunks": [list(c) for c in self.chunks]}
        if self.loader:
            data["loader"] = self.loader
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "DocumentEntry":
        return cls(
            hash=data["hash"],
            file_type=data.get("type", ""),
            chunks=[(c[0], c[1]) for c in data.get("chunks", [])],
            loader=data.get("loader", ""),
        )


@dataclass
class Catalog:
    """What a version holds, by document; enough to build the next version as a delta."""

    version: str
    created: str
    store_id: str
    retriever: str
    embedder: str | None
    signature: str
    documents: dict[str, DocumentEntry]
    base: str | None = None
    format: int = CATALOG_FORMAT
    components: dict[str, Any] = field(default_factory=dict)  # identities: "embedder", "loaders" by fingerprint

    @property
    def chunk_count(self) -> int:
        return sum(len(d.chunks) for d in self.documents.values())

    def chunk_ids(self) -> dict[str, str]:
        """Chunk id → fingerprint over all documents."""
        return {cid: fp for d in self.documents.values() for cid, fp in d.chunks}

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "version": self.version,
            "created": self.created,
            "store_id": self.store_id,
            "retriever": self.retriever,
            "embedder": self.embedder,
            "signature": self.signature,
            "base": self.base,
            "document_count": len(self.documents),
            "chunk_count": self.chunk_count,
            "documents": {k: v.to_json() for k, v in sorted(self.documents.items())},
            "components": self.components,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Catalog":
        return cls(
            version=data["version"],
            created=data.get("created", ""),
            store_id=data["store_id"],
            retriever=data.get("retriever", ""),
            embedder=data.get("embedder"),
            signature=data.get("signature", ""),
            documents={k: DocumentEntry.from_json(v) for k, v in data.get("documents", {}).items()},
            base=data.get("base"),
            format=data.get("format", CATALOG_FORMAT),
            components=data.get("components") or {},
        )


class IndexLayout:
    """Paths and records of one domain's index folder."""

    def __init__(self, root: Path, domain: str):
        self.root = Path(root)
        self.domain = domain
        self.versions_dir = self.root / "versions"
        self.current_file = self.root / "CURRENT"
        self.history_file = self.root / "history.jsonl"
        self.lock_file = self.root / "writer.lock"
        self.fence_file = self.root / "FENCE"
        self.vector_cache_file = self.root / "vectors.sqlite"

    shared = False
    """Whether the records live where several hosts see them (:mod:`fourfold.index.shared`)."""

    @classmethod
    def for_domain(cls, domain: Any) -> "IndexLayout":
        """The layout of a :class:`fourfold.Domain`: in the state dir, or — when the
        retriever's store is shared by several hosts — in the store's shared records,
        with the state dir as a cache (see :mod:`fourfold.index.shared`)."""
        root = domain.settings.domain_dir(domain.name) / "index"
        cached = _LAYOUTS.get(domain)
        if cached is not None and cached.root == root:
            return cached
        layout: IndexLayout
        records = None
        # Only a shared engine (FOURFOLD_QDRANT_URL) can hold shared records: the embedded
        # default never opens its store (and loads no model) just to find its records.
        if domain.manifest.knowledge is not None and domain.settings.qdrant_url:
            try:
                records = domain.retriever.open_store().shared_records()
            except Exception as exc:  # noqa: BLE001 - said in the error, with the cause
                raise IndexVersionError(
                    f"domain '{domain.name}': cannot reach the index's store ({type(exc).__name__}: {exc})"
                ) from exc
        if records is None:
            layout = cls(root, domain.name)
        else:
            from fourfold.index.shared import SharedIndexLayout  # a subclass of IndexLayout, defined below it

            def floor(records=records) -> int:
                return int((records.get("current") or {}).get("fence") or 0)

            layout = SharedIndexLayout(root, domain.name, records, writer_lock_factory(domain, root / "writer.lock", floor))
        _LAYOUTS[domain] = layout
        return layout

    def describe(self) -> str:
        """Where the records live, for messages."""
        return str(self.root)

    def ensure(self) -> None:
        self.versions_dir.mkdir(parents=True, exist_ok=True)

    # -- versions ---------------------------------------------------------------------

    def version_dir(self, name: str) -> Path:
        return self.versions_dir / name

    def store_dir(self, name: str) -> Path:
        return self.versions_dir / name / "store"

    def catalog_file(self, name: str) -> Path:
        return self.versions_dir / name / "catalog.json"

    def report_file(self, name: str) -> Path:
        return self.versions_dir / name / "report.json"

    def readers_file(self, name: str) -> Path:
        return self.versions_dir / name / ".readers"

    def version_names(self) -> list[str]:
        """Every version folder, complete or not, oldest first."""
        try:
            names = [p.name for p in self.versions_dir.iterdir() if VERSION_PATTERN.match(p.name) and p.is_dir()]
        except FileNotFoundError:
            return []
        return sorted(names, key=version_number)

    def is_complete(self, name: str) -> bool:
        return self.catalog_file(name).is_file()

    def complete_versions(self) -> list[str]:
        return [n for n in self.version_names() if self.is_complete(n)]

    def next_version_name(self) -> str:
        """A number never used before in this index (folders and history both count),
        so a reader can never confuse a new version with an old one of the same name."""
        used = [version_number(n) for n in self.version_names()]
        for event in self.history():
            v = event.get("version")
            if isinstance(v, str) and VERSION_PATTERN.match(v):
                used.append(version_number(v))
        return version_name(max(used, default=0) + 1)

    def read_catalog(self, name: str) -> Catalog:
        return Catalog.from_json(json.loads(self.catalog_file(name).read_text(encoding="utf-8")))

    def write_catalog(self, catalog: Catalog) -> None:
        write_atomic(self.catalog_file(catalog.version), json.dumps(catalog.to_json(), separators=(",", ":")))

    def read_report(self, name: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.report_file(name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def write_report(self, name: str, report: dict[str, Any]) -> None:
        write_json_atomic(self.report_file(name), report)

    def read_version_record(self, name: str, kind: str) -> dict[str, Any] | None:
        """A small record kept with a version (``quality``, ``held``); None when absent."""
        try:
            text = (self.version_dir(name) / _RECORD_FILES.get(kind, f"{kind}.json")).read_text(encoding="utf-8")
        except OSError:
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return {"text": text.strip()}  # a marker written as plain text by fourfold < 0.9
        return value if isinstance(value, dict) else {"value": value}

    def write_version_record(self, name: str, kind: str, value: dict[str, Any]) -> None:
        write_json_atomic(self.version_dir(name) / _RECORD_FILES.get(kind, f"{kind}.json"), value)

    # -- the published pointer ------------------------------------------------------------

    def read_current(self) -> str | None:
        try:
            name = self.current_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return name if VERSION_PATTERN.match(name) else None

    def write_current(self, name: str) -> None:
        write_atomic(self.current_file, name + "\n")

    def pointer_key(self) -> tuple[Any, ...] | None:
        """Changes whenever ``CURRENT`` is replaced (one ``stat``); readers compare it
        before each search to follow a publish."""
        try:
            st = os.stat(self.current_file)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def read_fence(self) -> int:
        """The highest fencing token a background writer published with (0: none)."""
        try:
            return int(self.fence_file.read_text(encoding="utf-8").strip() or 0)
        except FileNotFoundError:
            return 0
        except ValueError:
            return 0

    def write_fence(self, token: int) -> None:
        write_atomic(self.fence_file, f"{int(token)}\n")

    def stray_temporary_files(self) -> list[Path]:
        """Temporary files of atomic writes (``.CURRENT.*.tmp``, …) that a killed
        writer left in the index folder and its versions."""
        found: list[Path] = []
        for folder in [self.root, *(self.version_dir(n) for n in self.version_names())]:
            try:
                found += [p for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp") and p.is_file()]
            except FileNotFoundError:
                continue
        return found

    # -- history ------------------------------------------------------------------------

    def append_history(self, event: str, **fields: Any) -> dict[str, Any]:
        """Record an event. The log is trimmed to its last ``HISTORY_KEPT`` lines once it
        is twice that long (only the writer appends, under the writer lock)."""
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "event": event, **fields}
        self.root.mkdir(parents=True, exist_ok=True)
        append_line(self.history_file, json.dumps(record, sort_keys=True, default=str))
        try:
            size = self.history_file.stat().st_size
        except FileNotFoundError:
            return record
        if size > HISTORY_KEPT * 400:  # cheap pre-check before counting lines
            lines = self.history_file.read_text(encoding="utf-8").splitlines()
            if len(lines) > 2 * HISTORY_KEPT:
                write_atomic(self.history_file, "\n".join(lines[-HISTORY_KEPT:]) + "\n")
        return record

    def history(self) -> list[dict[str, Any]]:
        """Every recorded event, oldest first (a torn last line is skipped)."""
        try:
            lines = self.history_file.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                out.append(record)
        return out

    def mark_published(self, name: str) -> None:
        """Record in the version itself that it is being published (before ``CURRENT``
        names it), so that cleaning up never mistakes it for a leftover."""
        write_atomic(self.published_marker(name), "")

    def published_marker(self, name: str) -> Path:
        return self.versions_dir / name / "PUBLISHED"

    def was_published(self, name: str) -> bool:
        return self.published_marker(name).is_file()

    # -- writer lock, readers and deletion ------------------------------------------------

    def writer_lock(self, *, wait: bool | float = False) -> Any:
        """The lock one writer of this index holds (a context manager)."""
        return WriterLock(self.lock_file, self.domain, wait=wait)

    def writer_holder(self) -> dict[str, Any] | None:
        """The process holding the writer lock now (what it wrote of itself), or None."""
        return WriterLock(self.lock_file, self.domain).current_holder()

    def reader_lock(self, name: str) -> Callable[[], None]:
        """Mark version ``name`` as served by this process until the returned function
        is called (see :meth:`open_for_reading`)."""
        fd = self.open_for_reading(name)
        return lambda: os.close(fd)

    def open_for_reading(self, name: str) -> int:
        """Take a shared lock on a version so no writer deletes it while it is served.

        :returns: the lock's file descriptor (close it to release).
        :raises FileNotFoundError: the version is gone (or going).
        """
        path = self.readers_file(name)
        if not self.is_complete(name):
            raise FileNotFoundError(path)
        fd = open_shared(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            # A writer renames a version away before deleting it; if that happened while
            # we waited, our descriptor points into the trash.
            if os.fstat(fd).st_ino != os.stat(path).st_ino or not self.is_complete(name):
                raise FileNotFoundError(path)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def delete_version(self, name: str, *, only_if_unread: bool, before_remove: Callable[[], None] | None = None) -> bool:
        """Remove a version folder (first renamed out of sight, so it vanishes at once).

        :param only_if_unread: keep it when some process still serves it.
        :param before_remove: called once it is certain the version goes (e.g. to drop
            the store's data kept elsewhere, such as a server collection).
        :returns: whether it was removed.
        """
        folder = self.version_dir(name)
        if not folder.exists():
            return True
        fd = None
        if only_if_unread:
            try:
                fd = open_shared(self.readers_file(name), os.O_RDONLY)
            except FileNotFoundError:
                fd = None
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    return False
        try:
            if before_remove is not None:
                before_remove()
            trash = self.versions_dir / f".trash-{name}-{os.getpid()}-{time.monotonic_ns()}"
            os.rename(folder, trash)
        finally:
            if fd is not None:
                os.close(fd)
        remove_tree(trash)
        return True

    def trash(self) -> Iterator[Path]:
        """Leftovers of deletions that were interrupted."""
        try:
            yield from (p for p in self.versions_dir.iterdir() if p.name.startswith(".trash-"))
        except FileNotFoundError:
            return


def servable(domain: "Domain", layout: IndexLayout, name: str) -> tuple[Catalog, "IndexStore"]:
    """The catalog of version ``name`` and the store to publish it with, refusing a
    version the domain's retriever cannot read (built for another store)."""
    catalog = layout.read_catalog(name)
    store = domain.retriever.open_store()
    if catalog.store_id != store.store_id:
        raise IndexVersionError(
            f"domain '{domain.name}': version {name} was built for store {catalog.store_id}, but the retriever "
            f"'{domain.retriever.name}' now uses {store.store_id}; it cannot be served"
        )
    return catalog, store
