"""Cutting a loaded document into chunks the embedder reads whole.

Chunks are measured in the embedder's own tokens and cut only between tokens. Near the
size limit a cut prefers, in this order, a paragraph break, a sentence end, a line
break, a clause mark, a space. Consecutive chunks of one section share ``overlap``
tokens. Chunks never span pages. A section far smaller than a chunk is packed with a
neighbouring section under the same heading (its own heading kept as a line of text),
so that a one-line answer does not become a context-free vector of its own.

Every chunk's embedding input, :func:`text_for_embedding` — the title and heading
followed by the text — fits the embedder's window: the text's budget is what remains of
``embedder.max_tokens`` after the header and the model's special tokens.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

from fourfold.components import Embedder
from fourfold.manifest.models import Chunking
from fourfold.types import Chunk, LoadedDocument, SourceFile, chunk_point_id, content_hash

__all__ = ["chunk_document", "text_for_embedding", "embedding_header", "HEADING_SEPARATOR"]

HEADING_SEPARATOR = " > "
SPECIAL_TOKENS = 2  # [CLS]/[SEP] or <s>/</s>: what encoders add around every input
MIN_CHUNK_TOKENS = 16
_TITLE_CHARS = 120  # the header stays a short line of context, whatever the document
_HEADING_CHARS = 160
_SEARCH_FRACTION = 0.3  # a cut is looked for in the last 30% of a full chunk
_SNAP_TOKENS = 8  # how far an overlap may grow to start on a whole word
_SENTENCE_END = ".!?"
_CLOSERS = "\"'”’)]»"


# -------------------------------------------------------------------------
# what is embedded
# -------------------------------------------------------------------------


def embedding_header(title: str, heading: str) -> str:
    """``Title > Heading > Subheading`` on one line (the heading's first part is dropped
    when it repeats the title), cut to a sensible length."""
    parts = [p for p in heading.split(HEADING_SEPARATOR) if p.strip()] if heading else []
    if parts and title and parts[0].strip().casefold() == title.strip().casefold():
        parts = parts[1:]
    path = HEADING_SEPARATOR.join(parts)
    if len(path) > _HEADING_CHARS:
        path = "…" + path[-_HEADING_CHARS:].lstrip()  # the deepest headings say the most
    title = title.strip()
    if len(title) > _TITLE_CHARS:
        title = title[:_TITLE_CHARS].rstrip() + "…"
    return HEADING_SEPARATOR.join(p for p in (title, path) if p)


def text_for_embedding(chunk: Chunk) -> str:
    """The text to embed (densely and sparsely) for ``chunk``: its header line, a blank
    line, then ``chunk.text``. A passage's words alone often lack what it is about
    ("It is inherited in an autosomal recessive pattern"); the title and heading say it.
    ``chunk.text`` stays what users see."""
    header = embedding_header(chunk.title, chunk.heading)
    return f"{header}\n\n{chunk.text}" if header else chunk.text


# -------------------------------------------------------------------------
# chunking
# -------------------------------------------------------------------------


@dataclass
class _Unit:
    """Text chunked as one: a section, or tiny neighbouring sections packed together."""

    pieces: list[tuple[tuple[str, ...], str]]
    page: int | None
    spans: list[tuple[int, int]]  # tokens of text(), computed once

    @property
    def tokens(self) -> int:
        return len(self.spans)

    @property
    def path(self) -> tuple[str, ...]:
        common = self.pieces[0][0]
        for path, _ in self.pieces[1:]:
            n = 0
            while n < min(len(common), len(path)) and common[n] == path[n]:
                n += 1
            common = common[:n]
        return common

    def text(self) -> str:
        common = len(self.path)
        out = []
        for path, text in self.pieces:
            own = path[common:]
            out.append(f"{HEADING_SEPARATOR.join(own)}\n{text}" if own else text)
        return "\n\n".join(out)


def chunk_document(
    doc: LoadedDocument,
    file: SourceFile,
    *,
    embedder: Embedder,
    chunking: Chunking,
    tags: Sequence[str] = (),
    record: int | None = None,
) -> list[Chunk]:
    """Cut ``doc`` (read from ``file``) into chunks of at most ``chunking.max_tokens``
    tokens of ``embedder``'s tokenizer.

    Deterministic: the same document, settings and embedder give the same chunks and
    ids. A chunk's id is ``chunk_point_id(embedder.model_id, file.relpath, text_hash,
    occurrence)``, where ``occurrence`` counts identical texts earlier in the document;
    for record ``record`` of a file that holds several, ``file.relpath#record``
    replaces ``file.relpath``. ``doc.metadata["url"]`` and the rest of its metadata
    (``warnings`` aside) go onto every chunk.
    """
    model_id = embedder.model_id
    tags = tuple(tags)
    file_type = file.suffix
    id_source = file.relpath if record is None else f"{file.relpath}#{record}"
    url, metadata = chunk_metadata(doc)
    chunks: list[Chunk] = []
    seen: Counter[str] = Counter()
    budgets: dict[str, tuple[int, int]] = {}
    for unit in _units(doc, embedder, chunking):
        heading = HEADING_SEPARATOR.join(unit.path)
        text = unit.text()
        if heading not in budgets:
            budgets[heading] = _budget(embedder, chunking, doc.title, heading)
        limit, overlap = budgets[heading]
        for start, end in _cuts(text, unit.spans, embedder, limit, overlap):
            piece = text[start:end].strip()
            if not piece:
                continue
            text_hash = content_hash(piece)
            occurrence = seen[text_hash]
            seen[text_hash] += 1
            chunks.append(
                Chunk(
                    id=chunk_point_id(model_id, id_source, text_hash, occurrence),
                    text=piece,
                    source=file.relpath,
                    title=doc.title,
                    heading=heading,
                    page=unit.page,
                    ordinal=len(chunks),
                    text_hash=text_hash,
                    file_type=file_type,
                    tags=tags,
                    url=url,
                    metadata=dict(metadata),
                )
            )
    return chunks


def chunk_metadata(doc: LoadedDocument) -> tuple[str | None, dict[str, Any]]:
    """The url and the metadata a document's chunks carry: ``metadata["url"]`` as a
    string, the rest as JSON values (dates and other objects as strings), without
    ``warnings``."""
    url = doc.metadata.get("url")
    metadata = {str(k): _plain(v) for k, v in doc.metadata.items() if k not in ("url", "warnings") and v is not None}
    return (str(url) if url else None), metadata


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _budget(embedder: Embedder, chunking: Chunking, title: str, heading: str) -> tuple[int, int]:
    """Tokens a chunk's text may have, and the overlap, so that header + text + special
    tokens fit the embedder's window and never get truncated."""
    header = embedding_header(title, heading)
    header_tokens = len(embedder.token_spans(header)) if header else 0
    room = embedder.max_tokens - SPECIAL_TOKENS - header_tokens
    limit = max(MIN_CHUNK_TOKENS, min(chunking.max_tokens, room))
    return limit, min(chunking.overlap, limit // 2)


def _units(doc: LoadedDocument, embedder: Embedder, chunking: Chunking) -> list[_Unit]:
    """Sections in order, the ones sharing heading and page joined, tiny ones packed."""
    units: list[_Unit] = []
    for section in doc.sections:
        text = section.text.strip()
        if not text:
            continue
        spans = embedder.token_spans(text)
        last = units[-1] if units else None
        if last and len(last.pieces) == 1 and last.pieces[0][0] == section.heading_path and last.page == section.page:
            before = last.pieces[0][1]
            shift = len(before) + 2  # the blank line between them holds no token
            joined = _Unit([(section.heading_path, f"{before}\n\n{text}")], section.page, last.spans)
            joined.spans = last.spans + [(a + shift, b + shift) for a, b in spans]
            units[-1] = joined
            continue
        units.append(_Unit([(section.heading_path, text)], section.page, spans))
    return _pack(units, doc.title, embedder, chunking)


def _pack(units: list[_Unit], title: str, embedder: Embedder, chunking: Chunking) -> list[_Unit]:
    tiny = max(MIN_CHUNK_TOKENS, chunking.max_tokens // 4)
    packed: list[_Unit] = []
    for unit in units:
        last = packed[-1] if packed else None
        if last is not None and _may_pack(last, unit, tiny, chunking):
            merged = _Unit(last.pieces + unit.pieces, unit.page, [])
            merged.spans = embedder.token_spans(merged.text())
            limit, _ = _budget(embedder, chunking, title, HEADING_SEPARATOR.join(merged.path))
            if merged.tokens <= limit:
                packed[-1] = merged
                continue
        packed.append(unit)
    return packed


def _may_pack(a: _Unit, b: _Unit, tiny: int, chunking: Chunking) -> bool:
    """Same page, one of them tiny, both small enough together, and siblings or parent
    and child in the heading tree."""
    if a.page != b.page or min(a.tokens, b.tokens) >= tiny or a.tokens + b.tokens > chunking.max_tokens:
        return False
    pa, pb = a.path, b.path
    common = 0
    while common < min(len(pa), len(pb)) and pa[common] == pb[common]:
        common += 1
    return common >= max(len(pa), len(pb)) - 1


def _cuts(text: str, spans: list[tuple[int, int]], embedder: Embedder, limit: int, overlap: int) -> list[tuple[int, int]]:
    """Character ranges of the chunks of ``text`` (whose tokens are ``spans``)."""
    n = len(spans)
    if n == 0:
        return []
    out: list[tuple[int, int]] = []
    start = 0
    while True:
        cut = n if n - start <= limit else _best_cut(text, spans, start, start + limit, limit)
        cut = _fit(text, spans, embedder, start, cut, limit)
        out.append((spans[start][0], spans[cut - 1][1]))
        if cut == n:
            return out
        start = max(start + 1, _word_start(text, spans, cut - overlap, floor=start + 1)) if overlap else cut


def _best_cut(text: str, spans: list[tuple[int, int]], start: int, end: int, limit: int) -> int:
    """The token index to end a chunk before (exclusive), in ``(start, end]``: the
    strongest boundary in the last part of the window, the latest among equals."""
    lowest = max(start + 1, end - max(1, int(limit * _SEARCH_FRACTION)))
    best, best_score = end, -1.0
    for cut in range(end, lowest - 1, -1):
        score = _boundary(text, spans, cut)
        if score > best_score:
            best, best_score = cut, score
            if score >= 5:
                break
    return best


def _boundary(text: str, spans: list[tuple[int, int]], cut: int) -> float:
    """How good a place to cut the gap before token ``cut`` is."""
    gap = text[spans[cut - 1][1] : spans[cut][0]]
    if not gap:
        return 0.0  # inside a word
    if gap.count("\n") >= 2:
        return 5.0  # paragraph
    last = text[spans[cut - 1][0] : spans[cut - 1][1]].rstrip(_CLOSERS) or text[spans[cut - 1][0] : spans[cut - 1][1]]
    if last[-1:] in _SENTENCE_END:
        return 4.0
    if "\n" in gap:
        return 3.0  # a line: list item, table row, or a PDF's wrapped line
    if last[-1:] in ";:":
        return 2.0
    if last[-1:] == ",":
        return 1.5
    return 1.0


def _fit(text: str, spans: list[tuple[int, int]], embedder: Embedder, start: int, cut: int, limit: int) -> int:
    """Retokenised on its own, a chunk cut inside a word can need a token or two more
    than its share of the whole text's tokens; shorten it until it fits."""
    if cut - start < limit - _SNAP_TOKENS:
        return cut  # far below the limit: a retokenised word cannot add that many
    starts_on_word = start == 0 or text[spans[start - 1][1] : spans[start][0]] != ""
    ends_on_word = cut == len(spans) or text[spans[cut - 1][1] : spans[cut][0]] != ""
    if starts_on_word and ends_on_word:
        return cut  # cut at spaces, the text tokenises exactly as it did in place
    while cut > start + 1 and len(embedder.token_spans(text[spans[start][0] : spans[cut - 1][1]])) > limit:
        cut -= 1
    return cut


def _word_start(text: str, spans: list[tuple[int, int]], index: int, *, floor: int) -> int:
    """``index``, moved back by a few tokens when that lets the chunk start on a whole word."""
    index = max(index, floor)
    for k in range(index, max(floor, index - _SNAP_TOKENS) - 1, -1):
        if k == 0 or text[spans[k - 1][1] : spans[k][0]]:
            return k
    return index
