"""Rebuild the sample PDFs in the shipped domains' knowledge folders.

The PDFs under ``deploy/manifests/<domain>/knowledge/`` are generated from the small
Markdown-like sources in ``pdf-sources/<domain>/`` beside this script, so that their
text can be reviewed and edited like any other document. Only the authoring step needs
fpdf2 (``pip install fpdf2``); fourfold itself reads the PDFs with pypdf.

Source format (deliberately tiny):

    # Document title            first line, once
    ## Section heading
    ### Sub-heading
    A paragraph; consecutive lines are joined.
    - a bullet item
    > a notice, set in italics

Usage: python deploy/manifests/tools/build_sample_pdfs.py [medical|legal ...]
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

from fpdf import FPDF

HERE = Path(__file__).resolve().parent
MANIFESTS = HERE.parent
AUTHORS = {
    "medical": "fourfold sample health library",
    "legal": "Northwind Analytics Ltd (fictional)",
}
# The core PDF fonts only cover Latin-1; map the few typographic characters we use.
REPLACEMENTS = {"\u2014": "-", "\u2013": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'}
FIXED_DATE = datetime(2025, 1, 6, 9, 0, tzinfo=timezone.utc)  # reproducible output


class SampleDocument(FPDF):
    def __init__(self, title: str):
        super().__init__(format="A4")
        self.doc_title = title
        self.set_margins(22, 20, 22)
        self.set_auto_page_break(auto=True, margin=22)

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font("Helvetica", size=8)
        self.set_text_color(110)
        self.cell(0, 8, f"Page {self.page_no()} of {{nb}}", align="C")
        self.set_text_color(0)


def parse(text: str) -> tuple[str, list[tuple[str, str]]]:
    """Return the title and a list of (kind, text) blocks."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("# "):
        raise ValueError("the first line must be '# Title'")
    title = lines[0][2:].strip()
    blocks: list[tuple[str, str]] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            blocks.append(("p", " ".join(paragraph)))
            paragraph.clear()

    for line in lines[1:]:
        stripped = line.strip()
        if not stripped:
            flush()
        elif stripped.startswith("### "):
            flush()
            blocks.append(("h3", stripped[4:]))
        elif stripped.startswith("## "):
            flush()
            blocks.append(("h2", stripped[3:]))
        elif stripped.startswith("- "):
            flush()
            blocks.append(("li", stripped[2:]))
        elif stripped.startswith("> "):
            flush()
            blocks.append(("note", stripped[2:]))
        else:
            paragraph.append(stripped)
    flush()
    return title, blocks


def latin1(text: str, source: Path) -> str:
    for old, new in REPLACEMENTS.items():
        text = text.replace(old, new)
    try:
        text.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise SystemExit(f"{source}: character {text[exc.start]!r} is not Latin-1") from None
    return text


def render(source: Path, target: Path, author: str) -> int:
    title, blocks = parse(latin1(source.read_text(encoding="utf-8"), source))
    pdf = SampleDocument(title)
    pdf.set_title(title)
    pdf.set_author(author)
    pdf.set_creator("deploy/manifests/tools/build_sample_pdfs.py")
    pdf.set_creation_date(FIXED_DATE)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 18)
    pdf.multi_cell(0, 9, title, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    for kind, text in blocks:
        # keep a heading with the text under it rather than alone at a page's foot
        if kind in ("h2", "h3") and pdf.get_y() > pdf.h - pdf.b_margin - 30:
            pdf.add_page()
        if kind == "h2":
            pdf.ln(3)
            pdf.set_font("Helvetica", "B", 14)
            pdf.multi_cell(0, 7.5, text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1)
        elif kind == "h3":
            pdf.ln(1)
            pdf.set_font("Helvetica", "B", 12.8)
            pdf.multi_cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")
        elif kind == "li":
            pdf.set_font("Helvetica", size=11)
            pdf.set_x(pdf.l_margin + 4)
            pdf.cell(5, 6.2, "-")
            pdf.multi_cell(0, 6.2, text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(0.8)
        elif kind == "note":
            pdf.ln(3)
            pdf.set_font("Helvetica", "I", 9.5)
            pdf.multi_cell(0, 5.5, text, new_x="LMARGIN", new_y="NEXT")
        else:
            pdf.set_font("Helvetica", size=11)
            pdf.multi_cell(0, 6.2, text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2.5)
    target.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(target))
    return pdf.pages_count


def main(domains: list[str]) -> None:
    for domain in domains or sorted(AUTHORS):
        root = HERE / "pdf-sources" / domain
        for source in sorted(root.rglob("*.md")):
            rel = source.relative_to(root).with_suffix(".pdf")
            target = MANIFESTS / domain / "knowledge" / rel
            pages = render(source, target, AUTHORS[domain])
            print(f"{target.relative_to(MANIFESTS)}: {pages} pages, {target.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main(sys.argv[1:])
