"""What every loader needs: decoding bytes of unknown encoding, tidying whitespace, and
collecting text into sections under a heading path."""

from __future__ import annotations

import codecs
import re
from pathlib import Path
from typing import Callable

import fourfold

__all__ = ["decode", "read_text", "normalise_newlines", "tidy", "one_line", "SectionWriter"]

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# C0 controls other than tab and newline, DEL, and zero-width characters: invisible
# noise that only costs tokens (form feeds become line breaks first).
_INVISIBLE = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\u200b\u200c\u200d\u2060\ufeff]")
_HSPACE = re.compile(r"[ \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
_BLANK_RUNS = re.compile(r"\n{3,}")
# Below this, statistics cannot tell single-byte code pages apart (cp1250 and cp1252
# both decode "naïve", differently).
_GUESS_MIN_BYTES = 2048


def decode(data: bytes, declared: Callable[[], str | None] | None = None) -> str:
    """Text of ``data``: a byte-order mark decides; else UTF-8 when the bytes are valid
    UTF-8; else the encoding ``declared()`` names (an HTML ``<meta charset>``); else, for text
    long enough to judge, the most likely encoding (charset-normalizer); else
    Windows-1252, the usual legacy encoding; else Latin-1, which never fails."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    name = declared() if declared else None
    if name:
        try:
            return data.decode(name, errors="replace")
        except LookupError:
            pass  # an unknown name in the page: guess like for any other file
    if len(data) >= _GUESS_MIN_BYTES:
        from charset_normalizer import from_bytes

        best = from_bytes(data[:1_000_000]).best()
        if best is not None and best.encoding:
            return data.decode(best.encoding, errors="replace")
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_text(file: fourfold.SourceFile) -> str:
    """The file's text, decoded and with newlines normalised to ``\\n``."""
    return normalise_newlines(decode(Path(file.path).read_bytes()))


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def tidy(text: str) -> str:
    """One space between words, no trailing spaces, at most one blank line in a row."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n").replace("\u2028", "\n").replace("\u2029", "\n\n")
    text = _INVISIBLE.sub("", text)
    lines = [_HSPACE.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def one_line(text: str, limit: int = 200) -> str:
    """``text`` on one line, cut at a word boundary to at most ``limit`` characters."""
    flat = _HSPACE.sub(" ", _INVISIBLE.sub("", text).replace("\n", " ")).strip()
    if len(flat) <= limit:
        return flat
    cut = flat.rfind(" ", 0, limit)
    return flat[: cut if cut > limit // 2 else limit].rstrip() + "…"


class SectionWriter:
    """Collects a document's text into :class:`fourfold.Section` objects.

    Text arrives inline (``write``) and is tidied when a block ends, or as whole blocks
    (``block``; ``raw=True`` keeps indentation, for code). A heading or a new page
    closes the current section.
    """

    def __init__(self) -> None:
        self.sections: list[fourfold.Section] = []
        self.page: int | None = None
        self.first_heading: dict[int, str] = {}
        """The first heading seen at each level (titles come from here)."""
        self.earliest_heading: str | None = None
        self._headings: dict[int, str] = {}
        self._inline: list[str] = []
        self._blocks: list[str] = []

    @property
    def heading_path(self) -> tuple[str, ...]:
        return tuple(self._headings[level] for level in sorted(self._headings))

    def heading(self, level: int, text: str) -> None:
        """Start a section under ``text``, replacing headings of ``level`` and deeper."""
        text = one_line(text)
        if not text:
            return
        self.flush()
        self.first_heading.setdefault(level, text)
        self.earliest_heading = self.earliest_heading or text
        self._headings = {k: v for k, v in self._headings.items() if k < level}
        self._headings[level] = text

    def new_page(self, page: int) -> None:
        self.flush()
        self.page = page

    def write(self, text: str) -> None:
        self._inline.append(text)

    def end_block(self) -> None:
        if self._inline:
            text = tidy("".join(self._inline))
            self._inline = []
            if text:
                self._blocks.append(text)

    def block(self, text: str, *, raw: bool = False) -> None:
        self.end_block()
        if raw:
            lines = [line.rstrip() for line in text.replace("\t", "    ").split("\n")]
            text = _INVISIBLE.sub("", "\n".join(lines)).strip("\n")
        else:
            text = tidy(text)
        if text.strip():
            self._blocks.append(text)

    def flush(self) -> None:
        self.end_block()
        if self._blocks:
            self.sections.append(fourfold.Section("\n\n".join(self._blocks), self.heading_path, self.page))
            self._blocks = []
