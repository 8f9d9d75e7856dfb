"""HTML: the page's main text only, parsed with selectolax (lexbor, an HTML5 parser)."""

from __future__ import annotations

from typing import Any

from selectolax.lexbor import LexborHTMLParser

import fourfold
from pathlib import Path

from fourfold_loaders.text import SectionWriter, decode, normalise_newlines, one_line

__all__ = ["HtmlLoader"]

# Never content: code, styling, embedded objects, forms and widgets.
_ALWAYS_DROP = (
    "script, style, noscript, template, iframe, object, embed, svg, canvas, form, button, select, "
    "textarea, input, dialog, nav, aside, footer, [hidden], [aria-hidden=true], "
    "[role=navigation], [role=search], [role=complementary], [role=contentinfo]"
)
# Page chrome around the main text. Dropped when the whole body is read; inside <main>
# or <article> a <header> usually holds the article's own title, so it stays.
_PAGE_CHROME = "header, [role=banner]"
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_BLOCKS = {
    "p", "div", "section", "article", "main", "blockquote", "ul", "ol", "dl", "dt", "dd",
    "table", "thead", "tbody", "tfoot", "figure", "figcaption", "caption", "address", "hr",
    "details", "summary", "center", "fieldset", "header",
}  # fmt: skip


class HtmlLoader(fourfold.Loader):
    """Reads ``.html`` / ``.htm``: the text of ``<main>`` (else the largest
    ``<article>``, else ``<body>``) without scripts, styles, navigation, page headers and
    footers, asides or forms. ``h1``–``h6`` become the heading path; the title is
    ``<title>``, else the first ``h1``, else the file name."""

    name = "html"
    description = "HTML main text (selectolax): drops scripts, navigation, headers, footers, asides, forms"
    extensions = ("html", "htm")

    def load(self, file: fourfold.SourceFile) -> fourfold.LoadedDocument:
        data = Path(file.path).read_bytes()
        tree = LexborHTMLParser(normalise_newlines(decode(data, declared=lambda: _declared_charset(data))))
        title_node = tree.css_first("head title") or tree.css_first("title")
        title = one_line(title_node.text()) if title_node is not None else ""
        root = _main_content(tree)
        writer = SectionWriter()
        if root is not None:
            for node in root.css(_ALWAYS_DROP):
                node.decompose()
            if root.tag in ("body", "html"):
                for node in root.css(_PAGE_CHROME):
                    node.decompose()
            _write(root, writer)
        writer.flush()
        h1 = writer.first_heading.get(1)
        title = _without_site_name(title, h1) if title and h1 else title
        title = title or h1 or file.path.stem
        return fourfold.LoadedDocument(title=title, sections=writer.sections)


_SEPARATORS = (" | ", " - ", " – ", " — ", " :: ", " · ")


def _without_site_name(title: str, h1: str) -> str:
    """``<title>`` often adds the site's name ("Asthma | MedlinePlus"); when the page's
    first ``h1`` is the rest of it, the ``h1`` is the document's own title."""
    for sep in _SEPARATORS:
        if title.startswith(h1 + sep) or title.endswith(sep + h1):
            return h1
    return title


def _declared_charset(data: bytes) -> str | None:
    """The encoding a page declares in ``<meta charset>`` or ``<meta http-equiv>``
    (read from the first bytes, whose markup is ASCII in every such encoding)."""
    head = LexborHTMLParser(data[:4096].decode("latin-1"))
    for meta in head.css("meta"):
        attributes = meta.attributes
        if attributes.get("charset"):
            return str(attributes["charset"]).strip()
        if str(attributes.get("http-equiv") or "").lower() == "content-type":
            for part in str(attributes.get("content") or "").split(";"):
                key, _, value = part.partition("=")
                if key.strip().lower() == "charset" and value.strip():
                    return value.strip().strip("'\"")
    return None


def _main_content(tree: LexborHTMLParser) -> Any:
    main = tree.css_first("main, [role=main]")
    if main is not None:
        return main
    articles = tree.css("article")
    if articles:
        return max(articles, key=lambda a: len(a.text(deep=True)))
    return tree.body or tree.root


def _write(root: Any, writer: SectionWriter) -> None:
    """Depth-first walk in document order (a stack, not recursion: pages nest deeply)."""
    stack: list[tuple[Any, bool]] = [(root, False)]
    cells: list[int] = []  # cells written in each open table row
    while stack:
        node, leaving = stack.pop()
        tag = node.tag
        if leaving:
            if tag == "tr":
                cells.pop()
                writer.write("\n")
            elif tag in _BLOCKS:
                writer.end_block()
            continue
        if tag == "-text":
            # Source line breaks in HTML text are spaces; keep the spaces at the edges so
            # "a <b>b</b>" stays two words.
            raw = node.text_content or ""
            words = " ".join(raw.split())
            if words:
                writer.write((" " if raw[:1].isspace() else "") + words + (" " if raw[-1:].isspace() else ""))
            elif raw:
                writer.write(" ")
            continue
        if tag is None or tag.startswith("-"):  # comments, doctype
            continue
        if tag in _HEADINGS:
            children = list(node.iter(include_text=True))
            # An unclosed heading swallows the blocks after it ("<h1>Title<p>Text…");
            # the heading is its text up to the first block, the blocks stay content.
            first_block = next((i for i, c in enumerate(children) if c.tag in _BLOCKS or c.tag in _HEADINGS), len(children))
            words = [c.text(deep=True, separator=" ") if c.tag != "-text" else (c.text_content or "") for c in children[:first_block]]
            writer.heading(_HEADINGS[tag], " ".join(w for w in words if w and w.strip()))
            stack.extend((child, False) for child in reversed(children[first_block:]))
            continue
        if tag == "pre":
            writer.block(node.text(deep=True), raw=True)
            continue
        if tag == "br":
            writer.write("\n")
            continue
        if tag == "img":
            alt = (node.attributes.get("alt") or "").strip()
            if alt:
                writer.write(f" {alt} ")
            continue
        if tag in _BLOCKS:
            writer.end_block()
        elif tag == "li":
            writer.write("\n- ")
        elif tag == "tr":
            cells.append(0)
        elif tag in ("td", "th") and cells:
            if cells[-1]:
                writer.write(" | ")
            cells[-1] += 1
        stack.append((node, True))
        children = list(node.iter(include_text=True))
        stack.extend((child, False) for child in reversed(children))
