"""File loaders: Markdown, plain text, HTML and PDF.

Each turns one file into a :class:`fourfold.LoadedDocument`: a title and the text as
sections with their heading path (and page, for PDF). Bytes of unknown encoding are
read as UTF-8 when they are, else in the most likely encoding; an empty file gives a
document without sections.
"""

from __future__ import annotations

import fourfold
from fourfold_loaders.html import HtmlLoader
from fourfold_loaders.markdown import MarkdownLoader
from fourfold_loaders.pdf import PdfError, PdfLoader
from fourfold_loaders.plaintext import TextLoader

FOURFOLD_PLUGIN_API = "1.4"

__all__ = ["MarkdownLoader", "TextLoader", "HtmlLoader", "PdfLoader", "PdfError"]


@fourfold.hookimpl
def register_loaders(register):
    for loader in (MarkdownLoader, TextLoader, HtmlLoader, PdfLoader):
        register(loader)
