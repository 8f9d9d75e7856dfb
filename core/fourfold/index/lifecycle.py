"""The index lifecycle: refresh, publish, roll back. The CLI and the Celery worker both
call these functions; nothing else writes an index.

A refresh builds a new immutable version as a *delta* on the published one:

1. scan the sources and hash every file; unchanged documents are not read at all;
2. changed and added documents are loaded and chunked; chunks whose id and fingerprint
   exist in the base version are kept as they are, removed documents' chunks dropped;
3. vectors for new chunk texts come from the vector cache or are embedded (only text
   never embedded before costs model time);
4. the store starts the new version as a copy of the closed base version and applies
   only the deletes and upserts; its own optimiser decides whether anything needs
   re-indexing, so a 1% edit costs about 1% of a build;
5. the version is validated (point count, the manifest's gate) and, when the manifest
   names evaluation questions, scored on them (``fourfold.index.quality``); its catalog is
   written (which marks it complete). When the quality gate holds it, it stays complete
   but unpublished, marked ``HELD``, and the refresh raises ``QualityGateRefused``;
6. otherwise it is published in one atomic step: ``CURRENT`` is replaced (a rename).
   Only then is the version marked ``PUBLISHED`` and its ``publish`` line appended to the
   history — both records of a fact that the rename made true;
7. versions beyond ``keep_versions`` are deleted, never the published one and never one
   a reader still serves.

A background writer also passes its fencing token (``fence``): right before the rename
the token is confirmed to still hold the domain's lease and compared with ``FENCE``, the
highest token that ever published here; a lower one (a writer whose lease was taken
over) does not publish.

Crash points and what the next writer finds (it repairs before it builds):

- before the catalog, or after it but before ``CURRENT``: a version that never served;
  it has no ``PUBLISHED`` marker and is removed (except the newest version the quality
  gate held, kept for ``fourfold index publish --force``). ``CURRENT``, the history and
  rollback are untouched.
- after ``CURRENT`` but before the marker or the history line: the version serves; the
  marker and the ``publish`` line are written (``recovered: true``).
- while pruning: a version renamed to ``.trash-…`` is removed.
- in any atomic write: its ``.NAME.*.tmp`` file is removed.

Rollback only ever picks a version that was published (``PUBLISHED``), so never one
that did not serve.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from fourfold._version import __version__
from fourfold.components import NullProgress, Progress
from fourfold import knowledge as kn
from fourfold.errors import FourfoldError, IndexVersionError, KnowledgeError
from fourfold.files import remove_tree
from fourfold.index import quality
from fourfold.index.layout import Catalog, DocumentEntry, IndexLayout, servable, version_number
from fourfold.index.report import RefreshReport
from fourfold.index.vector_cache import EmbedStats, VectorCache, embed_with_cache
from fourfold.types import Chunk, SourceFile, content_hash

if TYPE_CHECKING:
    import numpy as np

    from fourfold.components import Embedder, IndexStore
    from fourfold.domain import Domain

__all__ = ["refresh", "rollback", "RefreshReport", "embedding_text", "chunk_fingerprint", "write_version", "WRITE_BATCH"]

log = logging.getLogger("fourfold.index")

WRITE_BATCH = 256
"""Points handed to the store per upsert call."""

_FINGERPRINT_CHARS = 16
_HISTORY_WARNINGS = 50  # warnings kept per history line; the version's report keeps all


def embedding_text(chunk: Chunk) -> str:
    """The text embedded (and BM25-indexed by stores that index text) for ``chunk``:
    the knowledge module's header line of title and heading, then the text."""
    return kn.text_for_embedding(chunk)


def chunk_fingerprint(chunk: Chunk, text: str) -> str:
    """Changes whenever anything a reader sees of the chunk (payload) or its vector
    (embedded text) would change; a chunk is reused only when this is equal."""
    payload = json.dumps(chunk.payload(), sort_keys=True, separators=(",", ":"), default=str)
    return content_hash(payload + "\x00" + text)[:_FINGERPRINT_CHARS]


def write_version(
    store: "IndexStore", location: Path, chunks: Sequence[Chunk], vectors: "np.ndarray | None", progress: Progress | None = None
) -> None:
    """Write ``chunks`` (with ``vectors``, row for row, when the store keeps them) as a
    new version at ``location`` from scratch, outside any domain's lifecycle: an index
    to evaluate on. A failure aborts the version."""
    progress = progress or NullProgress()
    progress.start("write", len(chunks))
    writer = store.create_version(location, None)
    try:
        for i in range(0, len(chunks), WRITE_BATCH):
            part = chunks[i : i + WRITE_BATCH]
            writer.upsert(part, None if vectors is None else vectors[i : i + len(part)])
            progress.advance(len(part))
        progress.start("optimize")
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    store.publish(location)


# -------------------------------------------------------------------------
# refresh
# -------------------------------------------------------------------------


def refresh(
    domain: "Domain",
    progress: Progress | None = None,
    *,
    full: bool = False,
    wait: bool | float = False,
    fence: Callable[[], int] | None = None,
) -> RefreshReport:
    """Bring ``domain``'s index up to date with its knowledge sources.

    :param progress: receives the stages ``scan``, ``hash``, ``load``, ``embed``,
        ``write``, ``optimize``, ``publish`` with their sizes.
    :param full: re-read every document and build the version from scratch (vectors
        still come from the cache where the text is equal).
    :param wait: when another process is writing this index: False fails at once,
        True waits, a number waits at most that many seconds.
    :param fence: called right before publishing; returns the writer's fencing token
        (or raises when the writer lost its lease). A token lower than the highest that
        published here refuses the publish.
    :returns: the report; ``report.published`` is False when nothing changed.
    :raises IndexVersionError: another writer holds the index, or the new version failed
        validation (the published version is unchanged).
    :raises KnowledgeError: the domain has no knowledge sources.
    """
    progress = progress or NullProgress()
    report = RefreshReport(domain=domain.name, started=_now())
    started = time.perf_counter()
    layout = IndexLayout.for_domain(domain)
    lock = layout.writer_lock(wait=wait)
    locked = False
    try:
        if domain.manifest.knowledge is None:
            raise KnowledgeError(
                f"{domain.manifest.path or 'manifest'}: domain '{domain.name}' has no 'knowledge:' block, so there is nothing to index"
            )
        lock.acquire()
        locked = True
        _Refresh(domain, layout, progress, report, full=full, fence=fence).run()
    except BaseException as exc:
        report.timings["total"] = time.perf_counter() - started
        report.finished = _now()
        message = _one_line(exc)
        if locked and not isinstance(exc, quality.QualityGateRefused):  # recorded as "refused"
            try:
                layout.append_history("failed", error=message, version=None)
            except OSError:
                pass
        if isinstance(exc, Exception):
            _call_hook(domain, "index_refresh_failed", domain=domain.name, error=message)
        raise
    finally:
        if locked:
            lock.release()
    if report.published:
        _call_hook(domain, "index_published", domain=domain.name, version=report.version, report=report)
    return report


@dataclass
class _Document:
    file: SourceFile
    hash: str
    tags: tuple[str, ...]
    source: int | None = None


def _same_entries(new: dict[str, DocumentEntry], old: dict[str, DocumentEntry]) -> bool:
    return new.keys() == old.keys() and all(new[p].to_json() == old[p].to_json() for p in new)


class _Refresh:
    def __init__(
        self, domain: "Domain", layout: IndexLayout, progress: Progress, report: RefreshReport, *, full: bool,
        fence: Callable[[], int] | None = None,
    ):
        self.fence = fence
        self.domain = domain
        self.layout = layout
        self.progress = progress
        self.report = report
        self.full = full
        self.started = time.perf_counter()
        self._stage_started = self.started

    # -- helpers ----------------------------------------------------------------------

    def _stage(self, name: str, total: int | None = None) -> None:
        now = time.perf_counter()
        self.progress.start(name, total)
        self._stage_started = now
        self._current_stage = name

    def _done(self, name: str) -> None:
        self.report.timings[name] = self.report.timings.get(name, 0.0) + time.perf_counter() - self._stage_started

    # -- the steps --------------------------------------------------------------------

    def run(self) -> None:
        domain, layout, report = self.domain, self.layout, self.report
        layout.ensure()
        retriever = domain.retriever
        store = retriever.open_store()
        self._remove_leftovers(store)
        embedder = domain.embedder
        knowledge = domain.manifest.knowledge
        assert knowledge is not None

        current = layout.read_current()
        base: Catalog | None = None
        if current is not None and layout.is_complete(current):
            base = layout.read_catalog(current)
        report.version = current
        signature = self._signature(embedder)

        rebuild_reason = ""
        if self.full:
            rebuild_reason = "full rebuild requested"
        elif base is None:
            rebuild_reason = "first build"
        elif base.store_id != store.store_id:
            rebuild_reason = f"the store changed ({base.store_id} → {store.store_id})"
        elif base.signature != signature:
            rebuild_reason = self._embedder_change(base, embedder) or "chunking, embedder, sources or fourfold changed"
        rebuild = bool(rebuild_reason)

        # 1. scan and hash
        self._stage("scan")
        previous = base.documents if base else {}
        # Sources that ask conditionally (HTTP validators) find their markers here.
        scan = kn.scan_domain(domain, {p: e.hash for p, e in previous.items()})
        report.warnings.extend(scan.warnings)
        self._done("scan")
        self._stage("hash", len(scan.files))
        documents: dict[str, _Document] = {}
        for file in scan.files:
            try:
                digest = scan.marker(file)
            except OSError as exc:
                report.skipped.append(file.relpath)
                if file.relpath in previous and not rebuild:
                    # Unreadable for a moment (being replaced, say): keep what it said.
                    digest = previous[file.relpath].hash
                    report.warnings.append(f"{file.relpath}: cannot be read ({exc}); kept the previous version of it")
                else:
                    report.warnings.append(f"{file.relpath}: cannot be read ({exc}); skipped")
                    self.progress.advance(1)
                    continue
            documents[file.relpath] = _Document(file, digest, scan.tags_for(file), scan.source_of(file))
            self.progress.advance(1)
        self._done("hash")

        # 2. what changed
        old = base.documents if base else {}
        added = sorted(p for p in documents if p not in old)
        removed = sorted(p for p in old if p not in documents)
        changed = sorted(p for p in documents if p in old and old[p].hash != documents[p].hash)
        loader_ids = self._loader_fingerprints(documents)
        reread = self._loader_changes(documents, old, loader_ids, base)
        unchanged = sorted(p for p in documents if p in old and old[p].hash == documents[p].hash and p not in reread)
        renamed = self._renames(added, removed, documents, old)
        renamed_to = {r["to"] for r in renamed}
        renamed_from = {r["from"] for r in renamed}
        report.added = [p for p in added if p not in renamed_to]
        report.removed = [p for p in removed if p not in renamed_from]
        report.changed, report.unchanged, report.renamed = changed, unchanged, renamed
        report.reread = reread
        report.full = rebuild
        report.reason = rebuild_reason
        report.base = None if rebuild else current

        if not rebuild and not added and not removed and not changed and not reread:
            report.reason = "no change"
            report.documents_total = len(old)
            report.chunks_total = base.chunk_count if base else 0
            self._finish_unchanged()
            return

        gate = knowledge.gate
        if gate.max_removed_fraction is not None and old:
            fraction = len(report.removed) / len(old)
            if fraction > gate.max_removed_fraction:
                raise IndexVersionError(
                    f"domain '{domain.name}': {len(report.removed)} of {len(old)} documents disappeared "
                    f"({fraction:.0%}), more than knowledge.gate.max_removed_fraction "
                    f"({gate.max_removed_fraction:.0%}); not publishing. Check the sources, or raise the limit"
                )

        # 3. load and chunk what must be read
        to_read = sorted(documents) if rebuild else sorted(set(added) | set(changed) | set(reread))
        entries: dict[str, DocumentEntry] = {}
        if not rebuild:
            entries.update({p: old[p] for p in unchanged})
        new_chunks: list[tuple[Chunk, str, str]] = []  # chunk, embedded text, fingerprint
        self._stage("load", len(to_read))
        for path in to_read:
            doc = documents[path]
            try:
                scan.fetch(doc.file)  # downloads a source component's document; folders' are in place
                records = kn.load_records(domain, doc.file, doc.source)
                if path in scan.urls:  # a web page or object links to where it lives
                    for record in records:
                        record.metadata.setdefault("url", scan.urls[path])
                chunks = []
                for i, record in enumerate(records):
                    number = None if len(records) == 1 else i
                    chunks += kn.chunk_document(
                        record, doc.file, embedder=embedder, chunking=knowledge.chunking, tags=doc.tags, record=number
                    )
            except FourfoldError as exc:
                self._unreadable(path, exc, old, entries, rebuild)
                self.progress.advance(1)
                continue
            for record in records:
                # What the loader said about the file reaches the report (and the user).
                report.warnings.extend(f"{path}: {w}" for w in record.metadata.get("warnings") or [])
            entry = DocumentEntry(hash=doc.hash, file_type=doc.file.suffix, loader=loader_ids.get(path, ("", None))[0])
            seen: set[str] = set()
            for chunk in chunks:
                if chunk.id in seen:
                    continue
                seen.add(chunk.id)
                text = embedding_text(chunk)
                fp = chunk_fingerprint(chunk, text)
                entry.chunks.append((chunk.id, fp))
                new_chunks.append((chunk, text, fp))
            entries[path] = entry
            self.progress.advance(1)
        self._done("load")

        # 4. the delta against the base version
        base_ids = base.chunk_ids() if (base and not rebuild) else {}
        wanted: dict[str, str] = {cid: fp for e in entries.values() for cid, fp in e.chunks}
        to_delete = [cid for cid in base_ids if cid not in wanted]  # changed ones are replaced by their upsert
        upserts = [(c, t, fp) for c, t, fp in new_chunks if base_ids.get(c.id) != fp]
        report.chunks_total = len(wanted)
        report.chunks_removed = len([cid for cid in base_ids if cid not in wanted])
        report.chunks_kept = len(wanted) - len(upserts)
        report.documents_total = len(entries)
        if not rebuild and base is not None and not to_delete and not upserts and _same_entries(entries, old):
            # Every change was a file that could not be read (its previous version kept)
            # or a re-read that gave the same chunks: the published version stands.
            report.reason = "no change" + (f" ({len(report.skipped)} documents could not be read)" if report.skipped else "")
            report.chunks_kept = report.chunks_total
            self._finish_unchanged()
            return
        if report.chunks_total < gate.min_chunks:
            raise IndexVersionError(
                f"domain '{domain.name}': the new version would hold {report.chunks_total} chunks, fewer than "
                f"knowledge.gate.min_chunks ({gate.min_chunks}); not publishing. Check the sources' paths and include patterns"
            )

        # 5. vectors: cache first, embed only new text
        vectors = None
        if store.needs_vectors and upserts:
            self._stage("embed", None)
            stats = EmbedStats()
            with VectorCache(self.layout.vector_cache_file, self._vector_key(embedder), embedder.dimension) as cache:
                vectors = embed_with_cache(embedder, [t for _, t, _ in upserts], cache, progress=self.progress, stats=stats)
            report.chunks_embedded = stats.embedded
            report.chunks_from_cache = stats.from_cache
            self._done("embed")

        # 6. write the new version
        name = layout.next_version_name()
        report.version = name
        layout.version_dir(name).mkdir(parents=True)
        location = layout.store_dir(name)
        base_location = None if rebuild else layout.store_dir(current)  # type: ignore[arg-type]
        writer = None
        try:
            self._stage("write", len(to_delete) + len(upserts))
            writer = store.create_version(location, base_location)
            for i in range(0, len(to_delete), WRITE_BATCH * 4):
                part = to_delete[i : i + WRITE_BATCH * 4]
                writer.delete(part)
                self.progress.advance(len(part))
            for i in range(0, len(upserts), WRITE_BATCH):
                part = upserts[i : i + WRITE_BATCH]
                writer.upsert([c for c, _, _ in part], None if vectors is None else vectors[i : i + len(part)])
                self.progress.advance(len(part))
            self._done("write")
            self._stage("optimize")
            writer.commit()
            writer = None
            self._done("optimize")

            self._stage("validate")
            reader = store.open_version(location)
            try:
                count = reader.count()
            finally:
                reader.close()
            if count != report.chunks_total:
                raise IndexVersionError(
                    f"domain '{domain.name}': version {name} holds {count} chunks after writing, expected "
                    f"{report.chunks_total}; not publishing"
                )
            self._done("validate")
            self._stage("gate")
            verdict = quality.check_gate(domain, layout, store, name, current, self._vector_key(embedder))
            report.quality = verdict.to_json() if verdict is not None else None
            self._done("gate")
        except BaseException:
            if writer is not None:
                try:
                    writer.abort()
                except Exception:  # the original error matters more
                    log.exception("aborting version %s of %s failed", name, domain.name)
            self._discard(store, name)
            raise

        catalog = Catalog(
            version=name,
            created=_now(),
            store_id=store.store_id,
            retriever=retriever.name,
            embedder=embedder.model_id,
            signature=signature,
            documents=entries,
            base=report.base,
            components={"embedder": domain.identity(embedder), "loaders": self._loaders_named(entries, loader_ids, base)},
        )
        if verdict is not None and not verdict.passed:
            report.reason = f"{name} held by the quality gate: " + "; ".join(verdict.reasons)
            report.version = current  # what still serves
            report.timings["total"] = time.perf_counter() - self.started
            report.finished = _now()
            layout.write_report(name, report.to_dict())
            layout.write_catalog(catalog)
            quality.hold(layout, verdict, summary=report.summary())
            for older in quality.held_versions(layout)[:-1]:  # only the newest held version is kept
                self._discard(store, older)
            raise quality.QualityGateRefused(verdict.message(domain.name, domain.manifest.path), verdict)
        # 7. publish: the catalog marks the version complete, CURRENT makes it live
        self._stage("publish")
        report.published = True
        report.timings["total"] = time.perf_counter() - self.started
        report.finished = _now()
        layout.write_report(name, report.to_dict())
        layout.write_catalog(catalog)
        if self.fence is not None:
            token = self.fence()
            highest = layout.read_fence()
            if token < highest:
                raise IndexVersionError(
                    f"domain '{domain.name}': not publishing {name}: a writer with a newer lease (fencing token "
                    f"{highest}) has published since this one (token {token}) started ({layout.fence_file})"
                )
            if token != highest:
                layout.write_fence(token)
        store.publish(location)
        layout.write_current(name)  # the one atomic step: from here on the version serves
        self._record_published(
            name,
            base=report.base,
            documents=len(entries),
            chunks=report.chunks_total,
            summary=report.summary(),
            warnings=report.warnings[:_HISTORY_WARNINGS],
        )
        self._done("publish")
        self._prune(store, name)
        report.timings["total"] = time.perf_counter() - self.started
        report.finished = _now()
        layout.write_report(name, report.to_dict())

    def _record_published(self, name: str, **fields: Any) -> None:
        _record_published(self.layout, name, **fields)

    # -- pieces ---------------------------------------------------------------------------

    def _signature(self, embedder: "Embedder") -> str:
        """Everything besides document content that decides the chunks and vectors."""
        manifest = self.domain.manifest
        knowledge = manifest.knowledge
        assert knowledge is not None
        # Loaders are not here: each document records the loader that read it, so a
        # loader change re-reads only its own documents.
        sources = [s.identity() for s in knowledge.sources]
        data = {
            "embedder": embedder.model_id,
            "embedder_identity": self.domain.identity(embedder),
            "chunking": knowledge.chunking.model_dump(),
            "limits": knowledge.limits.model_dump(),
            "sources": sources,
            "fourfold": __version__,
        }
        return content_hash(json.dumps(data, sort_keys=True, default=str))[:32]

    def _vector_key(self, embedder: "Embedder") -> str:
        """The vector cache's key for ``embedder``: its model id, plus its version and
        plugin version when it has them, so upgrading the embedder re-embeds."""
        return quality.vector_key(self.domain, embedder)

    def _embedder_change(self, base: Catalog, embedder: "Embedder") -> str:
        """Why the embedder no longer matches ``base``, in words ("" when it does)."""
        before = base.components.get("embedder")
        now = self.domain.identity(embedder)
        if base.embedder and base.embedder != embedder.model_id:
            return f"the embedder changed ({base.embedder} → {embedder.model_id})"
        if before and before != now:
            changes = [f"{k} {before.get(k) or '-'} → {now.get(k) or '-'}" for k in now if before.get(k) != now.get(k)]
            return f"embedder '{now['name']}' changed ({', '.join(changes)}); every chunk is embedded again"
        return ""

    def _loader_fingerprints(self, documents: dict[str, _Document]) -> dict[str, tuple[str, dict[str, Any] | None]]:
        """Each document's loader fingerprint and identity (``("", None)`` when no loader reads it)."""
        out: dict[str, tuple[str, dict[str, Any] | None]] = {}
        seen: dict[int, tuple[str, dict[str, Any]]] = {}
        for path, doc in documents.items():
            loader = kn.loader_for(self.domain, doc.file, doc.source)
            if loader is None:
                out[path] = ("", None)
                continue
            if id(loader) not in seen:
                identity = kn.loader_identity(self.domain, loader)
                fp = content_hash(json.dumps(identity, sort_keys=True, default=str))[:_FINGERPRINT_CHARS]
                seen[id(loader)] = (fp, identity)
            out[path] = seen[id(loader)]
        return out

    @staticmethod
    def _loaders_named(
        entries: dict[str, DocumentEntry], loader_ids: dict[str, tuple[str, dict[str, Any] | None]], base: Catalog | None
    ) -> dict[str, Any]:
        """The identity of every loader fingerprint the new catalog's documents name (a
        document kept from the base version may name an older loader)."""
        known = dict((base.components.get("loaders") if base else None) or {})
        known.update({fp: identity for fp, identity in loader_ids.values() if fp})
        return {e.loader: known[e.loader] for e in entries.values() if e.loader in known}

    def _loader_changes(
        self,
        documents: dict[str, _Document],
        old: dict[str, DocumentEntry],
        loader_ids: dict[str, tuple[str, dict[str, Any] | None]],
        base: Catalog | None,
    ) -> dict[str, str]:
        """Unchanged files whose loader (code version or settings) changed since they were
        read: path → why, e.g. "loader 'faq-rows' changed (version 1 → 2)"."""
        known = (base.components.get("loaders") if base else None) or {}
        out: dict[str, str] = {}
        for path, doc in documents.items():
            entry = old.get(path)
            fp, identity = loader_ids.get(path, ("", None))
            if entry is None or entry.hash != doc.hash or not entry.loader or not fp or entry.loader == fp:
                continue
            before = known.get(entry.loader) or {}
            now = identity or {}
            if before.get("name") and before.get("name") != now.get("name"):
                why = f"now read by loader '{now.get('name')}' instead of '{before.get('name')}'"
            else:
                changes = [f"{k} {before.get(k) or '-'} → {now.get(k) or '-'}" for k in now if before and before.get(k) != now.get(k)]
                why = f"loader '{now.get('name')}' changed" + (f" ({', '.join(changes)})" if changes else "")
            out[path] = why
        return out

    @staticmethod
    def _renames(added: list[str], removed: list[str], documents: dict[str, _Document], old: dict[str, DocumentEntry]) -> list[dict[str, str]]:
        by_hash: dict[str, list[str]] = {}
        for p in removed:
            by_hash.setdefault(old[p].hash, []).append(p)
        out = []
        for p in added:
            candidates = by_hash.get(documents[p].hash)
            if candidates:
                out.append({"from": candidates.pop(0), "to": p})
        return out

    def _unreadable(self, path: str, exc: Exception, old: dict[str, DocumentEntry], entries: dict[str, DocumentEntry], rebuild: bool) -> None:
        report = self.report
        report.skipped.append(path)
        if path in old and not rebuild:
            # A file caught half-written, or broken by an edit: keep serving what it said
            # before rather than dropping it; its old hash makes the next refresh retry.
            entries[path] = old[path]
            report.warnings.append(f"{_one_line(exc)}; kept the previous version of {path}")
        else:
            report.warnings.append(f"{_one_line(exc)}; skipped")
        for bucket in (report.added, report.changed):
            if path in bucket:
                bucket.remove(path)
        report.reread.pop(path, None)
        for r in list(report.renamed):
            if r["to"] == path:
                report.renamed.remove(r)

    def _finish_unchanged(self) -> None:
        report = self.report
        report.timings["total"] = time.perf_counter() - self.started
        report.finished = _now()
        # One history line per check keeps "last refreshed" answerable, without a version.
        self.layout.append_history(
            "unchanged", version=report.version, documents=report.documents_total, warnings=report.warnings[:_HISTORY_WARNINGS]
        )

    def _remove_leftovers(self, store: "IndexStore") -> None:
        """Repair what a crashed refresh left (see the module's crash points): records
        missing for the published version, versions that never served, half-deleted
        folders, temporary files."""
        layout = self.layout
        current = _record_unrecorded_publish(layout)
        newest_held = quality.held_versions(layout)[-1:]  # kept for `index publish --force`
        leftovers = [
            n
            for n in layout.version_names()
            if n != current and n not in newest_held and (not layout.is_complete(n) or not layout.was_published(n))
        ]
        if leftovers and current is not None and layout.is_complete(current):
            # A store that serves through its own pointer (a server alias) may have been
            # switched to a version that CURRENT never named: point it back first.
            try:
                store.publish(layout.store_dir(current))
            except Exception:
                log.exception("re-pointing the store of %s at %s failed", self.domain.name, current)
        for name in leftovers:
            log.info("removing index version %s of %s, which never served", name, self.domain.name)
            self._discard(store, name)
        if leftovers:
            _retain(layout, store)
        for trash in layout.trash():
            remove_tree(trash)
        for tmp in layout.stray_temporary_files():
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass

    def _discard(self, store: "IndexStore", name: str) -> None:
        try:
            store.delete_version(self.layout.store_dir(name))
        except Exception:
            log.exception("the store could not delete version %s of %s", name, self.domain.name)
        self.layout.delete_version(name, only_if_unread=False)

    def _prune(self, store: "IndexStore", current: str) -> None:
        knowledge = self.domain.manifest.knowledge
        assert knowledge is not None
        complete = self.layout.complete_versions()
        keep = set(complete[-knowledge.keep_versions :]) | {current}
        for name in complete:
            if name in keep:
                continue
            if not _delete_if_unread(self.layout, store, name):
                self.report.warnings.append(f"version {name} is still being served; a later refresh removes it")
        _retain(self.layout, store)


def _record_published(layout: IndexLayout, name: str, **fields: Any) -> None:
    """The records of a publish that ``CURRENT`` already made: the version's marker
    (rollback chooses among marked versions) and the history line."""
    layout.mark_published(name)
    layout.append_history("publish", version=name, **fields)


def _record_unrecorded_publish(layout: IndexLayout) -> str | None:
    """Write the records of a publish whose writer died right after replacing
    ``CURRENT`` (see the crash points above). Returns the published version."""
    current = layout.read_current()
    if current is None or not layout.is_complete(current):
        return current
    served = [e.get("version") for e in layout.history() if e.get("event") in ("publish", "rollback")]
    if not served or served[-1] != current:
        log.warning("index version %s of %s serves but its publish was not recorded; recording it", current, layout.domain)
        catalog = layout.read_catalog(current)
        layout.append_history(
            "publish", version=current, base=catalog.base, documents=len(catalog.documents), chunks=catalog.chunk_count,
            recovered=True,
        )
    if not layout.was_published(current):
        layout.mark_published(current)
    return current


def _retain(layout: IndexLayout, store: "IndexStore") -> None:
    """Let the store drop what it keeps for versions that are gone (a store shared by
    hosts keeps versions inside one collection)."""
    kept = set(layout.complete_versions())
    current = layout.read_current()
    if current:
        kept.add(current)
    try:
        store.retain([layout.store_dir(n) for n in sorted(kept)])
    except Exception:
        log.exception("the store could not drop the data of removed versions of %s (a later refresh tries again)", layout.domain)


def _delete_if_unread(layout: IndexLayout, store: "IndexStore", name: str) -> bool:
    def drop_store() -> None:
        try:
            store.delete_version(layout.store_dir(name))
        except Exception:
            log.exception("the store could not delete version %s", name)

    return layout.delete_version(name, only_if_unread=True, before_remove=drop_store)


# -------------------------------------------------------------------------
# rollback
# -------------------------------------------------------------------------


def rollback(domain: "Domain", to: str | None = None, *, wait: bool | float = False) -> str:
    """Publish an earlier version again.

    :param to: the version to publish (e.g. ``"v000003"``); None: the newest complete
        version older than the published one.
    :returns: the version now published.
    :raises IndexVersionError: no such version, or nothing to roll back to.
    """
    layout = IndexLayout.for_domain(domain)
    with layout.writer_lock(wait=wait):
        current = _record_unrecorded_publish(layout)
        complete = layout.complete_versions()
        if to is None:
            if current is None:
                raise IndexVersionError(f"domain '{domain.name}' has no published index to roll back")
            older = [v for v in complete if version_number(v) < version_number(current) and layout.was_published(v)]
            if not older:
                raise IndexVersionError(
                    f"domain '{domain.name}': no version older than {current} is kept (keep_versions); nothing to roll back to"
                )
            target = older[-1]
        else:
            target = to.strip()
            if quality.is_held(layout, target):
                raise IndexVersionError(
                    f"domain '{domain.name}': version {target} was held by the quality gate and never published; "
                    f"publish it with 'fourfold index publish MANIFEST {target} --force --reason …'"
                )
            served = [v for v in complete if layout.was_published(v)]
            if target not in served:
                kept = ", ".join(served) or "none"
                if target in complete:
                    raise IndexVersionError(
                        f"domain '{domain.name}': index version '{target}' never served (a refresh stopped before "
                        f"publishing it); roll back to one that did (kept: {kept})"
                    )
                raise IndexVersionError(f"domain '{domain.name}' has no index version '{target}' (kept: {kept})")
        catalog, store = servable(domain, layout, target)
        store.publish(layout.store_dir(target))
        layout.write_current(target)
        layout.append_history("rollback", version=target, previous=current, documents=len(catalog.documents), chunks=catalog.chunk_count)
    return target


# -------------------------------------------------------------------------


def _call_hook(owner: "Domain", name: str, **kwargs: Any) -> None:
    try:
        getattr(owner.host.hook, name)(**kwargs)
    except Exception:
        log.exception("a plugin's %s hook failed for domain %s (ignored)", name, owner.name)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    if isinstance(exc, FourfoldError):
        return first or type(exc).__name__
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
