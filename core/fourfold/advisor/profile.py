"""What the advisor knows about a domain: its corpus (measured by reading it the way a
refresh does), how fast it changes (from its refresh history, or a flag), and how often
it is refreshed (from its schedule).

Reading the corpus also times the work a refresh does before embedding (loading and
chunking every file; scanning and hashing them), so those parts of the estimates are
measurements on this machine, not models. Corpora too big to read within the advisor's
time budget are sampled (files in a fixed pseudo-random order up to a byte budget) and
the counts extrapolated by bytes; the profile says so.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from fourfold.advisor.figures import Figure, Input
from fourfold.errors import FourfoldError

if TYPE_CHECKING:
    from fourfold.domain import Domain
    from fourfold.types import Chunk

__all__ = ["CorpusProfile", "ChangeProfile", "profile_corpus", "profile_changes", "refreshes_per_day", "padded_tokens", "SAMPLE_BYTES", "DEFAULT_CHANGE_SHARE"]

SAMPLE_BYTES = 6 * 2**20
SAMPLE_FILES = 400
DEFAULT_CHANGE_SHARE = 0.01  # assumed documents changed per day when nothing says otherwise
MIN_SECTION_CHARS = 80  # as the fine-tuners derive pairs from knowledge
_SUMMARY_COUNTS = re.compile(r"(\d+) added, (\d+) changed, (\d+) removed")
_SUMMARY_EMBEDDED = re.compile(r"(\d+) embedded")


@dataclass
class CorpusProfile:
    """The domain's knowledge as a refresh sees it.

    :ivar tokens: tokens of the documents' text (embedder tokenizer).
    :ivar embedded_tokens: tokens the embedder reads in a full build (every chunk with its
        title/heading line and special tokens, capped at the embedder's window).
    :ivar padded_tokens: what the embedder computes for them: chunks sorted by length
        and batched, each batch padded to its longest chunk.
    :ivar sections: sections of 80+ characters (the pairs fine-tuners derive).
    :ivar scale: corpus bytes / bytes read (1 unless sampled).
    :ivar load_s: seconds spent loading and chunking what was read, scaled to the corpus.
    :ivar scan_s: seconds to list and hash every file (a refresh with no change).
    """

    files: int = 0
    files_read: int = 0
    documents: int = 0
    bytes: int = 0
    chars: int = 0
    tokens: int = 0
    chunks: int = 0
    embedded_tokens: int = 0
    padded_tokens: int = 0
    sections: int = 0
    section_chars: int = 0
    scale: float = 1.0
    load_s: float = 0.0
    scan_s: float = 0.0
    warnings: list[str] = field(default_factory=list)
    sample_chunks: list["Chunk"] = field(default_factory=list, repr=False)

    @property
    def sampled(self) -> bool:
        return self.files_read < self.files

    def figures(self) -> dict[str, Figure]:
        how = "counted" if not self.sampled else f"extrapolated by bytes from {self.files_read} of {self.files} files"
        src = f"{how} with the embedder's tokenizer"
        return {
            "documents": Figure(self.documents, "documents", "", {}, note="" if not self.sampled else how),
            "bytes": Figure(self.bytes, "B", "", {}),
            "tokens": Figure(self.tokens, "tokens", "Σ tokens of each document's text", {}, note=src),
            "chunks": Figure(self.chunks, "chunks", "chunks as the manifest's chunking cuts them", {}, note=how),
            "embedded_tokens": Figure(self.embedded_tokens, "tokens", "Σ min(window, tokens of title line + chunk + 2)", {}, note=src),
            "padded_tokens": Figure(self.padded_tokens, "tokens", "Σ over length-sorted batches of batch size × longest chunk", {}, note="what the embedder computes"),
            "load_s": Figure(self.load_s, "s", "measured: load + chunk every file", {}, note="" if not self.sampled else f"scaled ×{self.scale:.3g} from the sample"),
            "scan_s": Figure(self.scan_s, "s", "measured: list + hash every file", {}),
        }

    def to_dict(self) -> dict[str, Any]:
        return {k: v.to_dict() for k, v in self.figures().items()} | {
            "files": self.files, "files_read": self.files_read, "sampled": self.sampled, "sections": self.sections,
            "warnings": self.warnings[:20],
        }


def padded_tokens(lengths: list[int], batch_size: int) -> int:
    """Tokens the encoder computes for texts of ``lengths``: it sorts them longest first
    and pads each batch of ``batch_size`` to its longest text."""
    ordered = sorted(lengths, reverse=True)
    return sum(ordered[i] * len(ordered[i : i + batch_size]) for i in range(0, len(ordered), batch_size))


def profile_corpus(
    domain: "Domain", *, batch_size: int = 32, sample_bytes: int = SAMPLE_BYTES, sample_files: int = SAMPLE_FILES
) -> CorpusProfile:
    """Scan, hash, load and chunk ``domain``'s knowledge (a sample of it when large).

    :param batch_size: texts the embedder embeds per forward pass (its cost description's).

    :raises FourfoldError: the domain has no ``knowledge:`` block.
    """
    from fourfold import knowledge as kn

    manifest = domain.manifest
    if manifest.knowledge is None:
        raise FourfoldError(f"{manifest.path}: domain '{domain.name}' has no 'knowledge:' block; there is no corpus to profile")
    profile = CorpusProfile()
    started = time.perf_counter()
    scan = kn.scan_sources(manifest)
    for file in scan.files:
        try:
            kn.file_hash(file)
        except OSError:
            pass
    profile.scan_s = time.perf_counter() - started
    profile.warnings.extend(scan.warnings)
    files = sorted(scan.files, key=lambda f: f.relpath)
    profile.files = len(files)
    profile.bytes = sum(f.size for f in files)
    chosen = files
    if profile.bytes > sample_bytes or len(files) > sample_files:
        ordered = sorted(files, key=lambda f: hashlib.sha256(f.relpath.encode()).digest())
        chosen, total = [], 0
        for f in ordered:
            if chosen and (total + f.size > sample_bytes or len(chosen) >= sample_files):
                break
            chosen.append(f)
            total += f.size
    embedder = domain.embedder
    window = embedder.max_tokens
    lengths: list[int] = []
    started = time.perf_counter()
    read_bytes = 0
    for file in chosen:
        try:
            doc = kn.load_document(domain, file)
            chunks = kn.chunk_document(doc, file, embedder=embedder, chunking=manifest.knowledge.chunking, tags=scan.tags_for(file))
        except FourfoldError as exc:
            profile.warnings.append(f"{file.relpath}: {exc}")
            continue
        read_bytes += file.size
        profile.files_read += 1
        profile.documents += 1
        text = "\n\n".join(s.text for s in doc.sections)
        profile.chars += len(text)
        profile.tokens += len(embedder.token_spans(text))
        for s in doc.sections:
            if len(" ".join(s.text.split())) >= MIN_SECTION_CHARS:
                profile.sections += 1
                profile.section_chars += min(len(s.text), 1200)
        for chunk in chunks:
            lengths.append(min(window, len(embedder.token_spans(kn.text_for_embedding(chunk))) + 2))
        profile.chunks += len(chunks)
        if len(profile.sample_chunks) < 64:
            profile.sample_chunks.extend(chunks[:2])
    profile.load_s = time.perf_counter() - started
    profile.embedded_tokens = sum(lengths)
    profile.padded_tokens = padded_tokens(lengths, batch_size)
    if profile.files_read < profile.files and read_bytes:
        # Only files read count toward the sample; unreadable ones are dropped by a refresh too.
        profile.scale = profile.bytes / read_bytes
        for name in ("documents", "chars", "tokens", "chunks", "embedded_tokens", "padded_tokens", "sections", "section_chars"):
            setattr(profile, name, int(round(getattr(profile, name) * profile.scale)))
        profile.load_s *= profile.scale
    return profile


# -------------------------------------------------------------------------
# change rate
# -------------------------------------------------------------------------


@dataclass
class ChangeProfile:
    """How much of the knowledge changes per day, and how it was found out."""

    documents_per_day: Figure
    chunks_per_day: Figure | None
    refreshes_per_day: Figure
    source: str  # "flag", "history" or "assumption"

    def to_dict(self) -> dict[str, Any]:
        return {
            "documents_per_day": self.documents_per_day.to_dict(),
            "chunks_per_day": self.chunks_per_day.to_dict() if self.chunks_per_day else None,
            "refreshes_per_day": self.refreshes_per_day.to_dict(),
            "source": self.source,
        }


def refreshes_per_day(domain: "Domain") -> Figure:
    """Scheduled refreshes per day: ``every`` → 1 day / interval; ``cron`` → the times
    it fires in a week / 7; no schedule → 1 (on demand; assumed daily)."""
    from fourfold.manifest.models import parse_duration

    knowledge = domain.manifest.knowledge
    refresh = knowledge.refresh if knowledge else None
    if refresh is None:
        return Figure(1.0, "refreshes", "assumption: one refresh a day", {}, note="the manifest has no knowledge.refresh schedule; refreshes run on demand")
    if refresh.every:
        seconds = parse_duration(refresh.every).total_seconds()
        return Figure(86400 / seconds, "refreshes", "1 day / interval", {"interval": Input(refresh.every, "", "manifest knowledge.refresh.every")})
    fires = _cron_fires_per_week(refresh.cron or "")
    return Figure(fires / 7, "refreshes", "times the cron fires in a week / 7", {"cron": Input(refresh.cron, "", "manifest knowledge.refresh.cron")})


def _cron_field(text: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part in ("*", ""):
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = int(a), int(b)
        else:
            start = end = int(part)
        values.update(range(start, end + 1, step))
    return values


def _cron_fires_per_week(cron: str) -> int:
    try:
        minute, hour, dom, month, dow = cron.split()
        minutes, hours = _cron_field(minute, 0, 59), _cron_field(hour, 0, 23)
        days_of_week = {d % 7 for d in _cron_field(dow, 0, 7)}
        restricted_dom = dom != "*"
        restricted_dow = dow != "*"
    except ValueError:
        return 7
    # A week of days; a day-of-month restriction is approximated as firing on 7/30 of its days.
    per_day = len(minutes) * len(hours)
    if restricted_dom and not restricted_dow:
        return max(1, round(per_day * len(_cron_field(dom, 1, 31)) * 7 / 30))
    return per_day * (len(days_of_week) if restricted_dow else 7)


def _parse_time(text: str) -> datetime | None:
    for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"):
        try:
            value = datetime.strptime(text, fmt)
            return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        except (TypeError, ValueError):
            continue
    return None


def profile_changes(domain: "Domain", corpus: CorpusProfile, *, changes_per_day: float | None = None, min_window_hours: float = 1.0) -> ChangeProfile:
    """Documents changed per day: the flag when given; else the refresh history (delta
    refreshes' added + changed + removed documents over the time the history spans,
    at least ``min_window_hours``); else an assumed 1% of the documents."""
    from fourfold.index.layout import IndexLayout

    per_day = refreshes_per_day(domain)
    if changes_per_day is not None:
        fig = Figure(changes_per_day, "documents/day", "given", {"changes per day": Input(changes_per_day, "documents", "flag --changes-per-day")})
        return ChangeProfile(fig, None, per_day, "flag")
    layout = IndexLayout.for_domain(domain)
    history = layout.history()
    refreshes = [e for e in history if e.get("event") in ("publish", "unchanged")]
    times = [t for t in (_parse_time(str(e.get("time"))) for e in refreshes) if t is not None]
    if len(times) >= 2:
        window = max(times[-1], datetime.now(timezone.utc)) - min(times)
        if window >= timedelta(hours=min_window_hours):
            docs = embedded = 0
            deltas = 0
            for e in refreshes:
                if e.get("event") != "publish" or not e.get("base"):
                    continue  # a first or full build says nothing about the rate of change
                counts = _SUMMARY_COUNTS.search(str(e.get("summary") or ""))
                emb = _SUMMARY_EMBEDDED.search(str(e.get("summary") or ""))
                if counts:
                    docs += sum(int(x) for x in counts.groups())
                    deltas += 1
                if emb:
                    embedded += int(emb.group(1))
            days = window.total_seconds() / 86400
            src = f"index history: {len(refreshes)} refreshes ({deltas} published deltas) over {days * 24:.1f} h"
            fig = Figure(docs / days, "documents/day", "documents added + changed + removed in delta refreshes / days of history",
                         {"documents": Input(docs, "documents", src), "days": Input(round(days, 3), "days", src)})
            chunks = Figure(embedded / days, "chunks/day", "chunks embedded by delta refreshes / days of history",
                            {"chunks": Input(embedded, "chunks", src), "days": Input(round(days, 3), "days", src)})
            return ChangeProfile(fig, chunks, per_day, "history")
    share = DEFAULT_CHANGE_SHARE
    fig = Figure(corpus.documents * share, "documents/day", "share × documents",
                 {"share": Input(share, "", "assumption: 1% of the documents change per day"), "documents": Input(corpus.documents, "documents", "corpus")},
                 note="no refresh history spanning an hour yet; pass --changes-per-day for your real rate")
    return ChangeProfile(fig, None, per_day, "assumption")
