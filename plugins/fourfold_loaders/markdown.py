"""Markdown, parsed with markdown-it-py (CommonMark plus tables and strikethrough)."""

from __future__ import annotations

import re
from typing import Any

import yaml
from markdown_it import MarkdownIt
from selectolax.lexbor import LexborHTMLParser

import fourfold
from fourfold_loaders.text import SectionWriter, one_line, read_text

__all__ = ["MarkdownLoader", "markdown_sections"]

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)
_LISTS = {"bullet_list_open", "ordered_list_open"}
# Building a parser compiles its rules; parse() keeps its state per call, so one parser
# serves every document and thread.
_PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])


class MarkdownLoader(fourfold.Loader):
    """Reads ``.md`` / ``.markdown``. Headings become the heading path; the text keeps
    words, link text, image alt text, code and table cells, and drops markup and inline
    HTML tags. The title is the first H1, else the front matter's ``title``, else the
    file name."""

    name = "markdown"
    description = "Markdown (CommonMark + tables): headings become sections, markup is dropped"
    extensions = ("md", "markdown")

    def load(self, file: fourfold.SourceFile) -> fourfold.LoadedDocument:
        text, front = _split_front_matter(read_text(file))
        writer = markdown_sections(text)
        title = writer.first_heading.get(1) or one_line(str(front.get("title") or "")) or file.path.stem
        metadata = {k: front[k] for k in ("title", "tags", "date", "author") if k in front}
        return fourfold.LoadedDocument(title=title, sections=writer.sections, metadata=metadata)


def _split_front_matter(text: str) -> tuple[str, dict[str, Any]]:
    match = _FRONT_MATTER.match(text)
    if not match:
        return text, {}
    try:
        data = yaml.safe_load(match.group(1) or "")
    except yaml.YAMLError:
        return text, {}  # not front matter after all: a rule, some text, a rule
    if not isinstance(data, dict):
        return text, {}
    return text[match.end() :], data


def markdown_sections(text: str) -> SectionWriter:
    """Walk markdown-it's block tokens and write them into sections."""
    tokens = _PARSER.parse(text)
    writer = SectionWriter()
    lists: list[dict[str, int | None]] = []  # open lists: the next number (None: bullets)
    cells = 0  # cells written in the current table row
    in_table = False
    i = 0
    while i < len(tokens):
        token = tokens[i]
        kind = token.type
        if kind == "heading_open":
            writer.heading(int(token.tag[1]), _inline_text(tokens[i + 1]))
            i += 3  # heading_open, inline, heading_close
            continue
        if kind in _LISTS:
            if not lists:
                writer.end_block()
            start = token.attrGet("start") if kind == "ordered_list_open" else None
            lists.append({"next": int(start or 1) if kind == "ordered_list_open" else None})
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
            if not lists:
                writer.end_block()
        elif kind == "list_item_open":
            current = lists[-1] if lists else {"next": None}
            marker = "-" if current["next"] is None else f"{current['next']}."
            if current["next"] is not None:
                current["next"] = int(current["next"]) + 1
            writer.write("\n" + marker + " ")  # nesting shows in the markers, not indentation
        elif kind == "inline":
            writer.write(_inline_text(token))
            writer.write(" " if lists or in_table else "\n")
        elif kind == "paragraph_close" and not lists:
            writer.end_block()
        elif kind in ("fence", "code_block"):
            writer.block(token.content, raw=True)
        elif kind == "html_block":
            text_of_html = _html_text(token.content)
            if text_of_html:
                writer.block(text_of_html)
        elif kind == "table_open":
            writer.end_block()
            in_table = True
        elif kind == "tr_open":
            cells = 0
        elif kind in ("th_open", "td_open"):
            if cells:
                writer.write(" | ")
            cells += 1
        elif kind == "tr_close":
            writer.write("\n")
        elif kind == "table_close":
            writer.end_block()
            in_table = False
        i += 1
    writer.flush()
    return writer


def _inline_text(token: Any) -> str:
    """Words of an inline token: text, code, link text and image alt text; no markup."""
    out: list[str] = []
    for child in token.children or ():
        kind = child.type
        if kind in ("text", "code_inline"):
            out.append(child.content)
        elif kind == "softbreak":
            out.append(" ")
        elif kind == "hardbreak":
            out.append("\n")
        elif kind == "image":
            out.append(child.content)  # the alt text
        # html_inline, link_open/close, em/strong markers: markup only, no words
    return "".join(out)


def _html_text(html: str) -> str:
    """The visible words of a block of raw HTML inside markdown."""
    tree = LexborHTMLParser(html)
    for node in tree.css("script, style, template"):
        node.decompose()
    root = tree.body or tree.root
    return root.text(separator=" ") if root is not None else ""
