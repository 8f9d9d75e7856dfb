"""What a domain's index holds and what happened to it, read without opening the store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fourfold import knowledge as kn
from fourfold.index.layout import IndexLayout
from fourfold.index.quality import is_held, read_quality
from fourfold.index.report import IndexStatus, VersionInfo

if TYPE_CHECKING:
    from fourfold.domain import Domain

__all__ = ["index_status", "changed_documents", "HISTORY_SHOWN"]

HISTORY_SHOWN = 20


def index_status(domain: "Domain") -> IndexStatus:
    """The published version of ``domain``'s index, its counts, the versions kept for
    rollback, recent history, and the writer at work (if any)."""
    layout = IndexLayout.for_domain(domain)
    current = layout.read_current()
    status = IndexStatus(domain=domain.name, published=current)
    for name in layout.complete_versions():
        report = layout.read_report(name) or {}
        info = VersionInfo(
            version=name,
            created=report.get("finished") or "",
            documents=int(report.get("documents_total") or 0),
            chunks=int(report.get("chunks_total") or 0),
            published=name == current,
            store_id="",
            embedder=None,
        )
        verdict = read_quality(layout, name)
        if verdict is not None:
            info.ndcg_at_10 = verdict.quality.ndcg_at_10
        if is_held(layout, name):
            info.held = True
            status.held.append(
                {
                    "version": name,
                    "summary": verdict.summary() if verdict else "refused by knowledge.gate",
                    "reasons": verdict.reasons if verdict else [],
                    "worse": verdict.worse if verdict else [],
                }
            )
        if name == current:
            catalog = layout.read_catalog(name)
            info.documents, info.chunks = len(catalog.documents), catalog.chunk_count
            info.store_id, info.embedder, info.created = catalog.store_id, catalog.embedder, catalog.created
            status.documents, status.chunks, status.created = info.documents, info.chunks, catalog.created
            status.store_id, status.retriever, status.embedder = catalog.store_id, catalog.retriever, catalog.embedder
        status.versions.append(info)
    history = layout.history()
    status.history = history[-HISTORY_SHOWN:]
    refreshes = [e for e in history if e.get("event") in ("publish", "unchanged", "failed", "refused")]
    status.last_refresh = refreshes[-1] if refreshes else None
    status.writer = _writer(layout, domain.name)
    return status


def changed_documents(domain: "Domain") -> list[str] | None:
    """The documents added, changed or removed in ``domain``'s sources since its
    published version (paths as cited), found by listing and hashing the files as a
    refresh's first step does, without loading or embedding anything; None when nothing
    is published. A file that cannot be read counts as changed.
    """
    layout = IndexLayout.for_domain(domain)
    current = layout.read_current()
    if current is None:
        return None
    published = layout.read_catalog(current).documents
    scan = kn.scan_domain(domain, {p: e.hash for p, e in published.items()})
    changed = []
    seen = set()
    for file in scan.files:
        seen.add(file.relpath)
        entry = published.get(file.relpath)
        try:
            if entry is not None and scan.marker(file) == entry.hash:
                continue
        except OSError:
            pass
        changed.append(file.relpath)
    changed.extend(sorted(p for p in published if p not in seen))
    return changed


def _writer(layout: IndexLayout, domain: str) -> dict | None:
    """The process holding the writer lock now, or None."""
    return layout.writer_holder()
