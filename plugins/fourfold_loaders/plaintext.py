"""Plain text, with setext-style headings (a line underlined with ``===`` or ``---``)."""

from __future__ import annotations

import re

import fourfold
from fourfold_loaders.text import SectionWriter, one_line, read_text

__all__ = ["TextLoader"]

_UNDERLINE = re.compile(r"^\s*(=+|-+)\s*$")
_MAX_HEADING_CHARS = 200  # a longer line above a rule is a paragraph, not a heading


class TextLoader(fourfold.Loader):
    """Reads ``.txt`` files. A short line directly under a blank line (or at the top)
    and directly above a line of 3+ ``=`` (level 1) or ``-`` (level 2) is a heading.
    The title is the first heading, else the first line."""

    name = "text"
    description = "Plain text; setext headings (=== / --- underlines) become sections"
    extensions = ("txt",)

    def load(self, file: fourfold.SourceFile) -> fourfold.LoadedDocument:
        lines = read_text(file).split("\n")
        writer = SectionWriter()
        first_line: str | None = None
        i = 0
        while i < len(lines):
            line = lines[i]
            if first_line is None and line.strip():
                first_line = line
            if _is_heading(lines, i):
                writer.heading(1 if lines[i + 1].strip().startswith("=") else 2, line)
                i += 2
                continue
            if line.strip():
                writer.write(line + "\n")
            else:
                writer.end_block()
            i += 1
        writer.flush()
        title = writer.earliest_heading or (one_line(first_line) if first_line else "") or file.path.stem
        return fourfold.LoadedDocument(title=title, sections=writer.sections)


def _is_heading(lines: list[str], i: int) -> bool:
    if i + 1 >= len(lines):
        return False
    text, rule = lines[i].strip(), lines[i + 1]
    if not text or len(text) > _MAX_HEADING_CHARS or _UNDERLINE.match(lines[i]):
        return False
    if not _UNDERLINE.match(rule) or len(rule.strip()) < 3:
        return False
    # A rule under the last line of a paragraph is a separator, not an underline.
    return i == 0 or not lines[i - 1].strip() or bool(_UNDERLINE.match(lines[i - 1]))
