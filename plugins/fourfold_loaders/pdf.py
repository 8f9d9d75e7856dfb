"""PDF text layers, read with pypdf; page numbers are kept for citations."""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass

from pydantic import Field
from pypdf import PdfReader
from pypdf.errors import PdfReadError

import fourfold
from fourfold_loaders.text import SectionWriter, one_line

__all__ = ["PdfLoader", "PdfError"]

log = logging.getLogger("fourfold.loaders.pdf")

_HEADING_SCALE = 1.15  # a line this much larger than body text is a heading
_MAX_HEADING_CHARS = 200
_MAX_HEADING_LEVELS = 4


class PdfError(ValueError):
    """A PDF fourfold cannot read (encrypted, damaged, not a PDF)."""


@dataclass
class _Line:
    text: str
    size: float  # font size (points) of most of the line's characters


class PdfLoader(fourfold.Loader):
    """Reads the text layer of ``.pdf`` files, one or more sections per page with the
    page number (1-based). Lines set clearly larger than the body text become headings,
    and headings carry over to the next pages. Scanned pages without a text layer give
    no text. Encrypted PDFs (unless the empty password opens them) and damaged ones
    raise :class:`PdfError`."""

    name = "pdf"
    description = "PDF text layer (pypdf) with page numbers; larger-font lines become headings"
    extensions = ("pdf",)

    class Config(fourfold.ComponentConfig):
        max_pages: int = Field(
            2000, ge=1, description="Pages read per file; fourfold sets it from knowledge.limits.max_pdf_pages."
        )

    def load(self, file: fourfold.SourceFile) -> fourfold.LoadedDocument:
        try:
            reader = PdfReader(str(file.path), strict=False)
            if reader.is_encrypted and not _open_with_empty_password(reader):
                raise PdfError("the PDF is encrypted with a password; fourfold cannot read it")
            total = len(reader.pages)
            info = reader.metadata
        except PdfError:
            raise
        except (PdfReadError, OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise PdfError(f"damaged or not a PDF ({type(exc).__name__}: {exc})") from exc
        warnings: list[str] = []
        read = min(total, self.config.max_pages)
        if total > read:
            warnings.append(f"read the first {read} of {total} pages (knowledge.limits.max_pdf_pages)")
        pages: list[list[_Line]] = []
        failures: list[str] = []
        for number in range(read):
            try:
                pages.append(_page_lines(reader.pages[number]))
            except Exception as exc:  # one bad page should not cost the rest of the file
                failures.append(f"page {number + 1} could not be read ({type(exc).__name__}: {exc})")
                pages.append([])
        if read and len(failures) == read:
            raise PdfError(f"damaged: no page could be read; {failures[0]}")
        warnings.extend(failures)
        pages = _drop_running_lines(pages)
        writer = _sections(pages)
        title = _metadata_title(info) or writer.first_heading.get(1) or _first_line(pages) or file.path.stem
        return fourfold.LoadedDocument(
            title=title, sections=writer.sections, metadata={"pages": total, "pages_read": read, "warnings": warnings}
        )


def _open_with_empty_password(reader: PdfReader) -> bool:
    """Many PDFs are encrypted only against editing; an empty user password opens them."""
    try:
        return bool(reader.decrypt(""))
    except Exception:  # unsupported algorithm, missing crypto library
        return False


def _page_lines(page) -> list[_Line]:
    """The page's text lines with their font sizes (pypdf's visitor sees each run of
    text with its size; together the runs are exactly ``extract_text()``)."""
    runs: list[tuple[str, float]] = []

    def visit(text, cm, tm, font_dict, font_size):
        if text:
            runs.append((text, float(font_size or 0) * _scale(cm, tm)))

    page.extract_text(visitor_text=visit)
    lines: list[_Line] = []
    current: list[str] = []
    sizes: Counter[float] = Counter()
    for text, size in runs:
        parts = text.split("\n")
        for k, part in enumerate(parts):
            if k:
                lines.append(_Line("".join(current), _dominant(sizes)))
                current, sizes = [], Counter()
            current.append(part)
            visible = len(part.strip())
            if visible:
                sizes[round(size * 2) / 2] += visible
    lines.append(_Line("".join(current), _dominant(sizes)))
    return [line for line in lines if line.text.strip()]


def _scale(cm, tm) -> float:
    """How much the current and text matrices enlarge a glyph (their determinant's root)."""
    try:
        a = tm[0] * cm[0] + tm[1] * cm[2]
        b = tm[0] * cm[1] + tm[1] * cm[3]
        c = tm[2] * cm[0] + tm[3] * cm[2]
        d = tm[2] * cm[1] + tm[3] * cm[3]
        scale = math.sqrt(abs(a * d - b * c))
        return scale if scale > 0 else 1.0
    except (TypeError, IndexError):
        return 1.0


def _dominant(sizes: Counter[float]) -> float:
    return sizes.most_common(1)[0][0] if sizes else 0.0


def _drop_running_lines(pages: list[list[_Line]]) -> list[list[_Line]]:
    """Without running headers and footers ("Page 3 of 12", the document's name on every
    page): a page's first or last line that recurs as first or last line, digits aside,
    on at least half of three or more pages. They say nothing and would break sentences
    across pages."""
    if len([p for p in pages if p]) < 3:
        return pages

    def key(line: _Line) -> str:
        return "".join("#" if ch.isdigit() else ch for ch in " ".join(line.text.split()).lower())

    def edges(lines: list[_Line]) -> list[_Line]:
        return [lines[0], lines[-1]] if len(lines) >= 2 else []  # a page's only line is its content

    seen: Counter[str] = Counter()
    for lines in pages:
        seen.update({key(line) for line in edges(lines)})
    running = {k for k, n in seen.items() if n >= 3 and n * 2 >= len(pages)}
    if not running:
        return pages
    out = []
    for lines in pages:
        edge = {id(line) for line in edges(lines)}
        out.append([line for line in lines if not (id(line) in edge and key(line) in running)])
    return out


def _sections(pages: list[list[_Line]]) -> SectionWriter:
    """Headings are lines in a font clearly larger than the body text (the size most
    characters use); bigger sizes are higher levels."""
    weights: Counter[float] = Counter()
    for lines in pages:
        for line in lines:
            weights[line.size] += len(line.text)
    body = _dominant(weights)
    heading_sizes = sorted(
        {line.size for lines in pages for line in lines if _is_heading(line, body)}, reverse=True
    )[:_MAX_HEADING_LEVELS]
    level_of = {size: level for level, size in enumerate(heading_sizes, start=1)}
    writer = SectionWriter()
    for number, lines in enumerate(pages, start=1):
        writer.new_page(number)
        for line in lines:
            if line.size in level_of and _is_heading(line, body):
                writer.heading(level_of[line.size], line.text)
            else:
                writer.write(line.text + "\n")
    writer.flush()
    return writer


def _is_heading(line: _Line, body: float) -> bool:
    text = line.text.strip()
    return (
        body > 0
        and line.size >= body * _HEADING_SCALE
        and len(text) <= _MAX_HEADING_CHARS
        and any(ch.isalpha() for ch in text)
    )


def _metadata_title(info) -> str:
    try:
        title = info.title if info is not None else None
    except Exception:  # damaged metadata dictionaries
        return ""
    return one_line(str(title)) if title and str(title).strip() else ""


def _first_line(pages: list[list[_Line]]) -> str:
    for lines in pages:
        for line in lines:
            return one_line(line.text)
    return ""
