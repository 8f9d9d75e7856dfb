"""What a refresh did, and what an index holds: plain records for people and for JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["RefreshReport", "IndexStatus", "VersionInfo"]


@dataclass
class RefreshReport:
    """The outcome of one :func:`fourfold.index.refresh`.

    :ivar version: the version built and published; when nothing changed (or the
        refresh was refused) the version still serving.
    :ivar published: whether a new version was published.
    :ivar base: the version the new one was built from as a delta (None: from scratch).
    :ivar full: whether every document was re-read and re-chunked (``--full``, a first
        build, or a change of chunking, embedder, sources or store).
    :ivar reason: why the refresh rebuilt everything or published nothing.
    :ivar added, changed, removed, unchanged: document paths (as cited).
    :ivar renamed: ``{"from": old, "to": new}`` for documents that moved unchanged.
    :ivar reread: unchanged documents read again because their loader's code version or
        settings changed, path → why.
    :ivar skipped: documents that could not be read (see ``warnings``).
    :ivar chunks_total: chunks in the resulting version.
    :ivar chunks_kept: chunks carried over untouched from the base version.
    :ivar chunks_embedded: chunks whose vectors were computed by this refresh.
    :ivar chunks_from_cache: new chunks whose vectors came from the vector cache.
    :ivar chunks_removed: chunks of the base version left out of the new one.
    :ivar timings: seconds per stage (scan, hash, load, embed, write, optimize,
        validate, gate, publish) and ``total``.
    :ivar quality: the new version's score on the evaluation questions and the gate's
        verdict (see :mod:`fourfold.index.quality`); None when none are named.
    """

    domain: str
    version: str | None = None
    published: bool = False
    base: str | None = None
    full: bool = False
    reason: str = ""
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    renamed: list[dict[str, str]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    reread: dict[str, str] = field(default_factory=dict)
    chunks_total: int = 0
    chunks_kept: int = 0
    chunks_embedded: int = 0
    chunks_from_cache: int = 0
    chunks_removed: int = 0
    documents_total: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    quality: dict[str, Any] | None = None
    started: str = ""
    finished: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["timings"] = {k: round(v, 4) for k, v in self.timings.items()}
        data["summary"] = self.summary()
        return data

    def summary(self) -> str:
        """One line for logs and the CLI."""
        docs = (
            f"{len(self.added)} added, {len(self.changed)} changed, {len(self.removed)} removed, "
            f"{len(self.renamed)} renamed, {len(self.unchanged)} unchanged"
        )
        if self.reread:
            docs += f", {len(self.reread)} re-read"
        if self.skipped:
            docs += f", {len(self.skipped)} skipped"
        took = f"{self.timings.get('total', 0.0):.2f} s"
        if not self.published:
            why = self.reason or "nothing published"
            return f"{self.domain}: {why}; {self.version or 'no version'} still serving ({docs}; {took})"
        chunks = (
            f"{self.chunks_total} chunks: {self.chunks_embedded} embedded, {self.chunks_from_cache} from cache, "
            f"{self.chunks_kept} kept, {self.chunks_removed} removed"
        )
        how = f"full build: {self.reason}" if self.full and self.reason else ("full build" if self.full else f"delta on {self.base}")
        return f"{self.domain}: published {self.version} ({how}; {docs}; {chunks}; {took})"


@dataclass
class VersionInfo:
    version: str
    created: str
    documents: int
    chunks: int
    published: bool
    store_id: str
    embedder: str | None
    held: bool = False  # refused by the quality gate, never published
    ndcg_at_10: float | None = None  # on the evaluation questions, when measured


@dataclass
class IndexStatus:
    """What :func:`fourfold.index.index_status` reports about a domain's index."""

    domain: str
    published: str | None
    documents: int = 0
    chunks: int = 0
    created: str | None = None
    store_id: str | None = None
    retriever: str | None = None
    embedder: str | None = None
    versions: list[VersionInfo] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    last_refresh: dict[str, Any] | None = None
    writer: dict[str, Any] | None = None
    held: list[dict[str, Any]] = field(default_factory=list)  # versions the quality gate refused: version, summary, reasons, worse

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
