"""The builtin loaders read what a person would call the document's text, and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

import fourfold
import fourfold_loaders
from fourfold.testing import LoaderContract
from fourfold_loaders import HtmlLoader, MarkdownLoader, PdfError, PdfLoader, TextLoader

from .pdf_maker import pdf_bytes, write_pdf


def source(path: Path) -> fourfold.SourceFile:
    return fourfold.SourceFile(path=path, relpath=path.name, size=path.stat().st_size)


def load(loader: fourfold.Loader, path: Path) -> fourfold.LoadedDocument:
    return loader.load(source(path))


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# -------------------------------------------------------------------------
# the contract every loader keeps
# -------------------------------------------------------------------------


class TestMarkdownContract(LoaderContract):
    component_class = MarkdownLoader
    plugin = fourfold_loaders


class TestTextContract(LoaderContract):
    component_class = TextLoader
    plugin = fourfold_loaders


class TestHtmlContract(LoaderContract):
    component_class = HtmlLoader
    plugin = fourfold_loaders


class TestPdfContract(LoaderContract):
    component_class = PdfLoader
    plugin = fourfold_loaders


def test_the_plugin_registers_four_loaders(host):
    loaders = host.components("loader")
    assert {name: spec.cls.extensions for name, spec in loaders.items()}.items() >= {
        "markdown": ("md", "markdown"),
        "text": ("txt",),
        "html": ("html", "htm"),
        "pdf": ("pdf",),
    }.items()
    assert all(loaders[n].plugin == "loaders" for n in ("markdown", "text", "html", "pdf"))


@pytest.mark.parametrize("loader, name", [(MarkdownLoader(), "empty.md"), (TextLoader(), "empty.txt"), (HtmlLoader(), "empty.html")])
def test_empty_files_give_a_document_without_sections(tmp_path, loader, name):
    doc = load(loader, write(tmp_path, name, ""))
    assert doc.sections == [] and doc.title == "empty"


# -------------------------------------------------------------------------
# markdown
# -------------------------------------------------------------------------


class TestMarkdown:
    def test_headings_become_the_heading_path(self, tmp_path):
        doc = load(
            MarkdownLoader(),
            write(
                tmp_path,
                "guide.md",
                "Intro before any heading.\n\n# Asthma\n\nOverview text.\n\n## Symptoms\n\nWheezing.\n\n### At night\n\nCoughing.\n\n## Treatment\n\nInhalers.\n",
            ),
        )
        assert doc.title == "Asthma"
        assert [(s.heading_path, s.text) for s in doc.sections] == [
            ((), "Intro before any heading."),
            (("Asthma",), "Overview text."),
            (("Asthma", "Symptoms"), "Wheezing."),
            (("Asthma", "Symptoms", "At night"), "Coughing."),
            (("Asthma", "Treatment"), "Inhalers."),
        ]
        assert all(s.page is None for s in doc.sections)

    def test_markup_is_dropped_and_words_are_kept(self, tmp_path):
        doc = load(
            MarkdownLoader(),
            write(
                tmp_path,
                "m.md",
                "# T\n\nSee the [asthma guide](https://example.org/asthma) for **more** _details_ and `peak-flow` "
                "readings.<span class=\"x\">Inline</span> ![lung diagram](lung.png)\n\n"
                "- first item\n- second item\n  1. nested step\n\n"
                "| drug | dose |\n|---|---|\n| salbutamol | 100 mcg |\n\n"
                "```python\ndef f():\n    return 1\n```\n\n"
                "<div class=\"note\">Raw <b>HTML</b> note<script>alert(1)</script></div>\n\n"
                "> Quoted advice.\n",
            ),
        )
        text = doc.text
        assert "See the asthma guide for more details and peak-flow readings.Inline lung diagram" in text
        for noise in ("https://example.org", "**", "_details_", "`", "<span", "](", "alert(1)", "<div"):
            assert noise not in text
        assert "- first item\n- second item\n1. nested step" in text
        assert "drug | dose\nsalbutamol | 100 mcg" in text
        assert "def f():\n    return 1" in text  # code keeps its indentation
        assert "Raw HTML note" in text and "Quoted advice." in text

    def test_title_falls_back_to_front_matter_then_file_name(self, tmp_path):
        with_front = load(MarkdownLoader(), write(tmp_path, "a.md", "---\ntitle: Peak flow\ntags: [lungs]\n---\n## Readings\n\nBody.\n"))
        assert with_front.title == "Peak flow"
        assert with_front.metadata["tags"] == ["lungs"]
        assert with_front.sections[0].heading_path == ("Readings",)
        assert "title:" not in with_front.text
        assert load(MarkdownLoader(), write(tmp_path, "plain-notes.md", "Just text.\n")).title == "plain-notes"
        h1_wins = load(MarkdownLoader(), write(tmp_path, "b.md", "---\ntitle: Front\n---\n# Heading one\n\nBody.\n"))
        assert h1_wins.title == "Heading one"

    def test_setext_headings_are_headings(self, tmp_path):
        doc = load(MarkdownLoader(), write(tmp_path, "s.md", "Title\n=====\n\nBody.\n\nPart\n----\n\nMore.\n"))
        assert doc.title == "Title"
        assert [s.heading_path for s in doc.sections] == [("Title",), ("Title", "Part")]

    def test_the_real_genetics_pages_read_cleanly(self, shared_data):
        path = sorted((shared_data / "kb-medical" / "genetics-home-reference").glob("*.md"))[0]
        doc = load(MarkdownLoader(), path)
        assert doc.title and not doc.title.startswith("#")
        assert len(doc.sections) >= 3
        assert all(len(s.heading_path) >= 1 for s in doc.sections)
        assert "##" not in doc.text


# -------------------------------------------------------------------------
# plain text
# -------------------------------------------------------------------------


class TestText:
    def test_setext_headings_and_title(self, tmp_path):
        doc = load(
            TextLoader(),
            write(
                tmp_path,
                "cfs.txt",
                "CHRONIC FATIGUE SYNDROME\n========================\nCDC - http://www.cdc.gov/cfs\n\n"
                "What is CFS ?\n-------------\nA complex disorder.\nIt lasts.\n\n"
                "What causes CFS ?\n---\nUnknown.\n",
            ),
        )
        assert doc.title == "CHRONIC FATIGUE SYNDROME"
        assert [(s.heading_path, s.text) for s in doc.sections] == [
            (("CHRONIC FATIGUE SYNDROME",), "CDC - http://www.cdc.gov/cfs"),
            (("CHRONIC FATIGUE SYNDROME", "What is CFS ?"), "A complex disorder.\nIt lasts."),
            (("CHRONIC FATIGUE SYNDROME", "What causes CFS ?"), "Unknown."),
        ]

    def test_a_rule_under_a_paragraph_is_not_a_heading(self, tmp_path):
        doc = load(TextLoader(), write(tmp_path, "n.txt", "Minutes of the meeting\nwere approved.\n-----\nNext item.\n"))
        assert all(s.heading_path == () for s in doc.sections)
        assert doc.title == "Minutes of the meeting"

    def test_title_is_the_first_line_cut_short(self, tmp_path):
        doc = load(TextLoader(), write(tmp_path, "long.txt", "\n\n" + "word " * 200 + "\n\nSecond paragraph.\n"))
        assert doc.title.startswith("word word") and len(doc.title) <= 201
        assert doc.sections[0].text.startswith("word word")

    @pytest.mark.parametrize(
        "encoded",
        [
            "Café au lait — naïve résumé".encode("utf-8"),
            "\ufeffCafé au lait — naïve résumé".encode("utf-8"),
            "Café au lait — naïve résumé".encode("utf-16"),
            "Café au lait — naïve résumé".encode("cp1252"),
        ],
        ids=["utf-8", "utf-8-bom", "utf-16", "cp1252"],
    )
    def test_encodings(self, tmp_path, encoded):
        doc = load(TextLoader(), write(tmp_path, "e.txt", encoded))
        assert doc.text == "Café au lait — naïve résumé"

    def test_long_legacy_text_is_recognised(self, tmp_path):
        text = "Договор вступает в силу с момента подписания сторонами. " * 60
        assert load(TextLoader(), write(tmp_path, "ru.txt", text.encode("cp1251"))).text == text.strip()

    def test_windows_newlines_and_control_characters(self, tmp_path):
        doc = load(TextLoader(), write(tmp_path, "w.txt", b"Title\r\n=====\r\n\r\nLine\x00 one\x07\r\nLine\ttwo   spaced\r\n"))
        assert doc.title == "Title"
        assert doc.sections[0].text == "Line one\nLine two spaced"

    def test_the_real_cdc_pages_read_cleanly(self, shared_data):
        path = sorted((shared_data / "kb-medical" / "cdc").glob("*.txt"))[0]
        doc = load(TextLoader(), path)
        assert doc.title.isupper()
        assert len(doc.sections) >= 3
        assert "-----" not in doc.text and "=====" not in doc.text


# -------------------------------------------------------------------------
# html
# -------------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html><head><title>Asthma | Health site</title><style>body { color: red }</style>
<script>var tracking = "SCRIPT-TEXT";</script></head>
<body>
<header><a href="/">Health site HEADER-TEXT</a></header>
<nav><ul><li>Home NAV-TEXT</li><li>Topics</li></ul></nav>
<main>
  <h1>Asthma</h1>
  <p>Asthma is a <b>chronic</b>
     disease of the airways.</p>
  <h2>Symptoms</h2>
  <ul><li>Wheezing</li><li>Shortness of breath</li></ul>
  <table><tr><th>Drug</th><th>Dose</th></tr><tr><td>Salbutamol</td><td>100 mcg</td></tr></table>
  <form><label>Email FORM-TEXT</label><input name="e"></form>
  <aside>Related: ASIDE-TEXT</aside>
  <h3>At night</h3>
  <p>Coughing<br>wakes people up.</p>
  <pre>peak  flow
  chart</pre>
  <noscript>NOSCRIPT-TEXT</noscript>
  <!-- COMMENT-TEXT -->
</main>
<footer>Copyright FOOTER-TEXT</footer>
<script>console.log("SCRIPT-TWO")</script>
</body></html>
"""


class TestHtml:
    def test_only_the_main_text_is_read(self, tmp_path):
        doc = load(HtmlLoader(), write(tmp_path, "asthma.html", PAGE))
        text = doc.text + " ".join(" ".join(s.heading_path) for s in doc.sections)
        for noise in ("SCRIPT", "HEADER-TEXT", "NAV-TEXT", "FORM-TEXT", "ASIDE-TEXT", "NOSCRIPT", "COMMENT", "FOOTER-TEXT", "color: red"):
            assert noise not in text
        assert doc.title == "Asthma"  # the site name in <title> is dropped: the h1 is the rest of it
        assert [(s.heading_path, s.text) for s in doc.sections] == [
            (("Asthma",), "Asthma is a chronic disease of the airways."),
            (("Asthma", "Symptoms"), "- Wheezing\n- Shortness of breath\n\nDrug | Dose\nSalbutamol | 100 mcg"),
            (("Asthma", "Symptoms", "At night"), "Coughing\nwakes people up.\n\npeak  flow\n  chart"),
        ]

    @pytest.mark.parametrize("title, expected", [
        ("Topic - Clinic", "Topic"), ("Clinic — Topic", "Topic"), ("Topic: a guide", "Topic: a guide"), ("Other | Clinic", "Other | Clinic"),
    ])
    def test_a_site_name_around_the_h1_is_dropped_from_the_title(self, tmp_path, title, expected):
        doc = load(HtmlLoader(), write(tmp_path, "t.html", f"<html><head><title>{title}</title></head><body><h1>Topic</h1><p>Text.</p></body></html>"))
        assert doc.title == expected

    def test_without_main_the_body_is_read_without_page_chrome(self, tmp_path):
        doc = load(
            HtmlLoader(),
            write(
                tmp_path,
                "page.htm",
                "<html><body><header>SITE-BANNER</header><h1>Topic</h1><div>Body text <i>here</i>.</div>"
                "<div role=navigation>MENU</div><footer>FOOT</footer></body></html>",
            ),
        )
        assert doc.title == "Topic"  # no <title>: the first h1
        assert doc.text == "Body text here."

    def test_the_largest_article_is_the_main_text(self, tmp_path):
        doc = load(
            HtmlLoader(),
            write(
                tmp_path,
                "blog.html",
                "<body><article><h2>Teaser</h2><p>short</p></article>"
                "<article><header><h1>Real story</h1></header><p>A much longer article body that is the real content.</p>"
                "<footer>Tags: ARTICLE-FOOTER</footer></article></body>",
            ),
        )
        assert doc.sections[0].heading_path == ("Real story",)
        assert "A much longer article body" in doc.text
        assert "short" not in doc.text and "ARTICLE-FOOTER" not in doc.text

    def test_broken_markup_still_reads(self, tmp_path):
        doc = load(HtmlLoader(), write(tmp_path, "broken.html", "<html><body><h1>Unclosed<p>First <b>bold<p>Second</div></span>"))
        assert doc.title == "Unclosed"
        assert [(s.heading_path, s.text) for s in doc.sections] == [(("Unclosed",), "First bold\n\nSecond")]

    def test_legacy_encodings(self, tmp_path):
        html = '<html><head><meta charset="windows-1252"><title>Caf\xe9</title></head><body><p>R\xe9sum\xe9 na\xefve</p></body></html>'
        doc = load(HtmlLoader(), write(tmp_path, "latin.html", html.encode("cp1252")))
        assert doc.title == "Café" and doc.text == "Résumé naïve"

    def test_the_real_niddk_pages_read_cleanly(self, shared_data):
        path = sorted((shared_data / "kb-medical" / "niddk").glob("*.html"))[0]
        doc = load(HtmlLoader(), path)
        assert doc.title and "<" not in doc.text
        assert len(doc.sections) >= 3


# -------------------------------------------------------------------------
# pdf
# -------------------------------------------------------------------------


class TestPdf:
    def test_pages_headings_and_title(self, tmp_path):
        path = write_pdf(
            tmp_path / "guide.pdf",
            [
                [(20, "Asthma guide"), (11, "Asthma is common."), (14, "Symptoms"), (11, "Wheezing and coughing.")],
                [(11, "More symptoms on page two."), (14, "Treatment"), (11, "Inhalers help.")],
                [(11, "Page three text.")],
            ],
        )
        doc = load(PdfLoader(), path)
        assert doc.title == "Asthma guide"
        assert [(s.page, s.heading_path, s.text) for s in doc.sections] == [
            (1, ("Asthma guide",), "Asthma is common."),
            (1, ("Asthma guide", "Symptoms"), "Wheezing and coughing."),
            (2, ("Asthma guide", "Symptoms"), "More symptoms on page two."),
            (2, ("Asthma guide", "Treatment"), "Inhalers help."),
            (3, ("Asthma guide", "Treatment"), "Page three text."),
        ]
        assert doc.metadata["pages"] == 3 and doc.metadata["warnings"] == []

    def test_running_headers_and_footers_are_dropped(self, tmp_path):
        pages = [
            [(9, "Acme clinic handbook"), (11, f"Body text of page {n}, about triage."), (11, f"Second line {n}."), (9, f"Page {n} of 4")]
            for n in range(1, 5)
        ]
        doc = load(PdfLoader(), write_pdf(tmp_path / "handbook.pdf", pages))
        assert "Acme clinic handbook" not in doc.text and "of 4" not in doc.text
        assert [s.page for s in doc.sections] == [1, 2, 3, 4]
        assert all(f"Body text of page {n}, about triage." in doc.text for n in range(1, 5))

    def test_metadata_title_wins(self, tmp_path):
        path = write_pdf(tmp_path / "t.pdf", [[(11, "Body only.")]], title="Official title")
        assert load(PdfLoader(), path).title == "Official title"

    def test_page_limit(self, tmp_path):
        path = write_pdf(tmp_path / "long.pdf", [[(11, f"Text of page {n}.")] for n in range(1, 6)])
        doc = load(PdfLoader(PdfLoader.Config(max_pages=2)), path)
        assert [s.page for s in doc.sections] == [1, 2]
        assert "page 3" not in doc.text
        assert doc.metadata["warnings"] == ["read the first 2 of 5 pages (knowledge.limits.max_pdf_pages)"]

    def test_a_page_without_text_gives_no_section(self, tmp_path):
        path = write_pdf(tmp_path / "scan.pdf", [[(11, "Only page one has text.")], []])
        assert [s.page for s in load(PdfLoader(), path).sections] == [1]

    def test_truncated_pdf_raises_a_clear_error(self, tmp_path):
        data = pdf_bytes([[(11, "Some text.")], [(11, "More text.")]])
        path = write(tmp_path, "cut.pdf", data[: len(data) // 2])
        with pytest.raises(PdfError, match="damaged"):
            load(PdfLoader(), path)

    def test_not_a_pdf_raises(self, tmp_path):
        with pytest.raises(PdfError, match="damaged or not a PDF"):
            load(PdfLoader(), write(tmp_path, "fake.pdf", b"<html>this is not a pdf</html>"))

    def test_password_protected_pdf_raises(self, tmp_path):
        path = write_pdf(tmp_path / "secret.pdf", [[(11, "Classified.")]], password="secret")
        with pytest.raises(PdfError, match="encrypted with a password"):
            load(PdfLoader(), path)

    def test_pdf_encrypted_only_against_editing_reads(self, tmp_path):
        path = write_pdf(tmp_path / "locked.pdf", [[(11, "Readable by anyone.")]], password="")
        assert load(PdfLoader(), path).text == "Readable by anyone."

    def test_the_real_cancer_summaries_read_with_pages_and_headings(self, shared_data):
        path = sorted((shared_data / "kb-medical" / "national-cancer-institute-pdq").glob("*.pdf"))[0]
        doc = load(PdfLoader(), path)
        pages = {s.page for s in doc.sections}
        assert min(pages) == 1 and max(pages) == doc.metadata["pages"] > 1
        headings = {s.heading_path[-1] for s in doc.sections if len(s.heading_path) > 1}
        assert any(h.startswith("What is (are)") for h in headings)
        assert doc.title == "Adult Acute Lymphoblastic Leukemia"
