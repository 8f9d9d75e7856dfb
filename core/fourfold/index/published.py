"""Serving the published version, and following each new publish without a restart.

Every search first compares the ``CURRENT`` pointer's inode and mtime with the ones it
opened (one ``stat``, microseconds). When a new version was published, the next search
opens it, swaps it in, and the old version is closed once the searches still running on
it finish. A version deleted while being opened (the writer prunes old versions) makes
the reader re-read ``CURRENT`` and try again, so a reader never sees an error or an
empty result because of a publish.

While a process serves a version it holds a shared ``flock`` on the version's
``.readers`` file; writers never delete a version someone serves.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Callable

from fourfold.calling import call_component, component_error
from fourfold.errors import IndexVersionError, ManifestError
from fourfold.index.layout import Catalog, IndexLayout
from fourfold.manifest.binding import component_refs
from fourfold.types import Passage

if TYPE_CHECKING:
    from fourfold.components import IndexStore, Retriever, VersionReader
    from fourfold.domain import Domain
    from fourfold.types import Chunk, SearchFilters

__all__ = ["PublishedIndex", "no_index_message", "retriever_for"]

log = logging.getLogger("fourfold.index")

_OPEN_ATTEMPTS = 20


def no_index_message(domain: "Domain") -> str:
    where = domain.manifest.path or "MANIFEST"
    return f"no published index for domain '{domain.name}'; run 'fourfold index build {where}'"


class _OpenVersion:
    """A version opened for reading, shared by concurrent searches (reference counted)."""

    def __init__(self, name: str, catalog: Catalog, reader: "VersionReader", unlock: Callable[[], None]):
        self.name = name
        self.catalog = catalog
        self.reader = reader
        self._unlock = unlock
        self._refs = 1  # the PublishedIndex's own reference while it is current
        self._mutex = threading.Lock()

    def acquire(self) -> bool:
        with self._mutex:
            if self._refs <= 0:
                return False
            self._refs += 1
            return True

    def release(self) -> None:
        with self._mutex:
            self._refs -= 1
            last = self._refs == 0
        if last:
            try:
                self.reader.close()
            except Exception:
                log.exception("closing index version %s failed", self.name)
            finally:
                self._unlock()


class PublishedIndex:
    """The published index version of one domain, followed across publishes.

    Thread-safe; one instance per domain per process (``Domain.index``).
    """

    def __init__(self, domain: "Domain"):
        self._domain = domain
        self._layout_: IndexLayout | None = None
        self._swap = threading.Lock()
        self._open: _OpenVersion | None = None
        self._pointer: tuple[Any, ...] | None = None
        self._store: "IndexStore | None" = None
        self._compatible: dict[str, str] = {}
        self._closed = False

    @property
    def _layout(self) -> IndexLayout:
        # Resolved on first use: a shared layout reaches the store's server.
        if self._layout_ is None:
            self._layout_ = IndexLayout.for_domain(self._domain)
        return self._layout_

    # -- public ---------------------------------------------------------------------------

    @property
    def version(self) -> str | None:
        """The version searches are answered from now (None: nothing published)."""
        try:
            current = self._acquire()
        except IndexVersionError:
            return None
        try:
            return current.name
        finally:
            current.release()

    def search(
        self,
        query: str,
        *,
        top_k: int | None = None,
        filters: "SearchFilters | None" = None,
        retriever: "Retriever | None" = None,
    ) -> tuple[list["Passage"], str | None]:
        """Passages for ``query`` from the published version, and that version's name.

        :param retriever: search with this retriever instead of the domain's own (it must
            read the same store, e.g. ``dense`` on an index built for ``hybrid``).
        :raises IndexVersionError: nothing is published yet, or the version cannot be
            read by ``retriever``.
        """
        retriever = retriever or self._domain.retriever
        for attempt in range(2):
            current = self._acquire()
            try:
                self._check_compatible(retriever, current)
                passages = call_component(retriever, "search", current.reader, query, top_k=top_k, filters=filters)
                _check_passages(retriever, passages)
                return passages, current.name
            except IndexVersionError:
                raise
            except Exception:
                # The version may have been replaced and removed under a slow search;
                # answer from the new one rather than fail.
                if attempt == 0 and self._pointer_key() != self._pointer:
                    continue
                raise
            finally:
                current.release()
        raise AssertionError("unreachable")

    def sample_chunks(self, limit: int = 4000) -> tuple[str, list["Chunk"], int]:
        """Up to ``limit`` chunks of the published version, that version's name and its
        chunk count (for answerability calibration)."""
        current = self._acquire()
        try:
            out = []
            for chunk in current.reader.chunks():
                out.append(chunk)
                if len(out) >= limit:
                    break
            try:
                total = current.reader.count()
            except Exception:  # noqa: BLE001 - the sample's size stands in
                total = len(out)
            return current.name, out, total
        finally:
            current.release()

    def close(self) -> None:
        """Close the open version (searches still running on it finish first)."""
        with self._swap:
            self._closed = True
            current, self._open, self._pointer = self._open, None, None
        if current is not None:
            current.release()

    # -- following CURRENT ----------------------------------------------------------------

    def _pointer_key(self) -> tuple[Any, ...] | None:
        return self._layout.pointer_key()

    def _acquire(self) -> _OpenVersion:
        for _ in range(_OPEN_ATTEMPTS):
            current = self._open
            if current is not None and self._pointer is not None and self._pointer_key() == self._pointer:
                if current.acquire():
                    return current
            current = self._switch()
            if current.acquire():
                return current
        raise IndexVersionError(f"domain '{self._domain.name}': could not open the published index version; it keeps changing")

    def _switch(self) -> _OpenVersion:
        with self._swap:
            if self._closed:
                self._closed = False  # searching again after close() reopens
            last_error: Exception | None = None
            for _ in range(_OPEN_ATTEMPTS):
                key = self._pointer_key()
                name = self._layout.read_current()
                if name is None:
                    raise IndexVersionError(no_index_message(self._domain))
                if self._open is not None and self._open.name == name:
                    self._pointer = key
                    return self._open
                try:
                    new = self._open_version(name)
                except FileNotFoundError as exc:  # pruned while we opened it: look again
                    last_error = exc
                    continue
                except IndexVersionError:
                    raise
                except Exception as exc:
                    if self._layout.read_current() != name:
                        last_error = exc
                        continue
                    raise IndexVersionError(
                        f"domain '{self._domain.name}': index version {name} cannot be opened: {type(exc).__name__}: {exc}"
                    ) from exc
                old, self._open, self._pointer = self._open, new, key
                if old is not None:
                    old.release()
                return new
            raise IndexVersionError(
                f"domain '{self._domain.name}': could not open the published index version ({last_error})"
            )

    def _open_version(self, name: str) -> _OpenVersion:
        layout = self._layout
        catalog = layout.read_catalog(name)  # FileNotFoundError when pruned meanwhile
        store = self._get_store()
        if catalog.store_id != store.store_id:
            raise IndexVersionError(
                f"domain '{self._domain.name}': index version {name} was built for store '{catalog.store_id}' but "
                f"retriever '{self._domain.retriever.name}' reads '{store.store_id}'; run "
                f"'fourfold index build {self._domain.manifest.path or 'MANIFEST'} --full'"
            )
        if store.needs_vectors and catalog.embedder and catalog.embedder != self._domain.embedder.model_id:
            raise IndexVersionError(
                f"domain '{self._domain.name}': index version {name} was embedded with '{catalog.embedder}' but the "
                f"manifest's embedder is now '{self._domain.embedder.model_id}'; run "
                f"'fourfold index build {self._domain.manifest.path or 'MANIFEST'}'"
            )
        unlock = layout.reader_lock(name)
        try:
            reader = store.open_version(layout.store_dir(name))
            try:
                reader.version = name
            except AttributeError:
                pass
        except BaseException:
            unlock()
            raise
        return _OpenVersion(name, catalog, reader, unlock)

    def _get_store(self) -> "IndexStore":
        if self._store is None:
            self._store = self._domain.retriever.open_store()
        return self._store

    def _check_compatible(self, retriever: "Retriever", current: _OpenVersion) -> None:
        if retriever is self._domain.retriever:
            return
        key = f"{retriever.name}:{retriever.config!r}"
        store_id = self._compatible.get(key)
        if store_id is None:
            store_id = retriever.open_store().store_id
            self._compatible[key] = store_id
        if store_id != current.catalog.store_id:
            raise IndexVersionError(
                f"retriever '{retriever.name}' reads store '{store_id}', but index version {current.name} of domain "
                f"'{self._domain.name}' was built for '{current.catalog.store_id}' (by '{current.catalog.retriever}'); "
                f"set retrieval.use to '{retriever.name}' and rebuild to search it that way"
            )


def _check_passages(retriever: "Retriever", passages: Any) -> None:
    """Refuse what a retriever returned unless it is a list of passages, saying what to return."""
    if not isinstance(passages, list):
        raise component_error(retriever, f"search() returned {type(passages).__name__}; return a list of fourfold.Passage, best first")
    for p in passages:
        if not isinstance(p, Passage):
            raise component_error(
                retriever,
                f"search() returned a list containing {type(p).__name__}; return fourfold.Passage(chunk=..., score=...) items, best first",
            )


def retriever_for(domain: "Domain", name: str) -> "Retriever":
    """Retriever ``name`` for searching ``domain``'s index instead of its own retriever.

    When the manifest's retriever builds on ``name`` (a ``{use: NAME, with: …}`` field of
    its config, e.g. a re-ranker wrapping ``hybrid``), that very component is used, with
    the configuration given there. Otherwise, a retriever from the same plugin as the
    manifest's gets the ``retrieval.with`` settings its ``Config`` also has (an
    index-time setting such as ``title_weight`` must match for it to read the same
    store), and its defaults for the rest; one from another plugin gets only its
    defaults, since equal option names need not mean the same there.
    """
    block = domain.manifest.retrieval
    if name == block.use:
        return domain.retriever
    spec = domain.host.get("retriever", name)
    if spec is None:
        raise ManifestError([domain.host.missing_component_message("retriever", name)])
    wrapped = _wrapped_retriever(domain, name)
    if wrapped is not None:
        return wrapped
    own = domain.host.get("retriever", block.use)
    shared = {}
    if own is not None and own.plugin == spec.plugin:
        fields = spec.cls.Config.model_fields
        shared = {k: v for k, v in block.with_.items() if k in fields}
    return domain.build("retriever", name, spec.cls.Config.model_validate(shared))  # type: ignore[return-value]


def _wrapped_retriever(domain: "Domain", name: str) -> "Retriever | None":
    """The retriever named ``name`` that the domain's retriever builds on, if any."""
    config = domain.retriever.config
    pending = [("retriever", config)]
    while pending:
        kind, current = pending.pop()
        for _, ref in component_refs(current):
            ref_kind = ref.kind or kind
            if ref_kind == "retriever" and ref.use == name:
                return domain.retriever.context.component(ref, kind="retriever")  # type: ignore[union-attr, return-value]
            spec = domain.host.get(ref_kind, ref.use)
            if spec is not None:
                try:
                    pending.append((ref_kind, spec.cls.Config.model_validate(ref.with_)))
                except ValueError:
                    continue
    return None
