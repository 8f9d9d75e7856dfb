"""Reading scanned files with the domain's loaders."""

from __future__ import annotations

import pytest

import fourfold
from fourfold.knowledge import load_document, loaders_for, scan_sources
from tests.plugins.fourfold_loaders.pdf_maker import pdf_bytes, write_pdf

from .conftest import write


def test_each_extension_gets_its_builtin_loader(tmp_path, knowledge_domain):
    (tmp_path / "kb").mkdir()
    loaders = loaders_for(knowledge_domain("sources: [{path: kb}]"))
    assert {ext: loader.name for ext, loader in loaders.items()}.items() >= {
        "md": "markdown",
        "markdown": "markdown",
        "txt": "text",
        "html": "html",
        "htm": "html",
        "pdf": "pdf",
        "toy": "toy-loader",
    }.items()


def test_the_manifest_page_limit_reaches_the_pdf_loader(tmp_path, knowledge_domain):
    write_pdf(tmp_path / "kb" / "long.pdf", [[(11, f"Page {n} text.")] for n in range(1, 5)])
    domain = knowledge_domain("sources: [{path: kb}]\nlimits: {max_pdf_pages: 3}")
    (file,) = scan_sources(domain.manifest).files
    doc = load_document(domain, file)
    assert [s.page for s in doc.sections] == [1, 2, 3]
    assert doc.metadata["warnings"] == ["read the first 3 of 4 pages (knowledge.limits.max_pdf_pages)"]


def test_a_broken_file_is_an_error_naming_it_and_the_others_still_load(tmp_path, knowledge_domain):
    data = pdf_bytes([[(11, "Text.")]])
    write(tmp_path / "kb", "reports/cut.pdf", data[: len(data) // 2])
    write(tmp_path / "kb", "fine.md", "# Fine\n\nReadable.\n")
    write(tmp_path / "kb", "empty.txt", "")
    domain = knowledge_domain("sources: [{path: kb}]")
    loaded, errors = {}, []
    for file in scan_sources(domain.manifest).files:
        try:
            loaded[file.relpath] = load_document(domain, file)
        except fourfold.KnowledgeError as exc:
            errors.append(str(exc))
    assert set(loaded) == {"fine.md", "empty.txt"}
    assert loaded["empty.txt"].sections == []  # no text: the refresh reports it
    assert len(errors) == 1
    assert errors[0].startswith("reports/cut.pdf: ") and "damaged" in errors[0]


def test_an_extension_without_a_loader_is_an_error(tmp_path, knowledge_domain):
    write(tmp_path / "kb", "notes.rtf", "{\\rtf1 hello}")
    domain = knowledge_domain('sources: [{path: kb, include: ["*.rtf"]}]')
    (file,) = scan_sources(domain.manifest).files
    with pytest.raises(fourfold.KnowledgeError, match=r"notes.rtf: no loader reads '.rtf' files \(installed loaders read: htm, html, "):
        load_document(domain, file)


def test_a_loader_crash_names_the_loader_and_plugin(tmp_path, knowledge_domain, host):
    class Crashing(fourfold.Loader):
        name = "crashing"
        extensions = ("crash",)

        def load(self, file):
            raise RuntimeError("boom")

    class Plugin:
        FOURFOLD_PLUGIN_API = "1.0"

        @staticmethod
        @fourfold.hookimpl
        def register_loaders(register):
            register(Crashing)

    host.register(Plugin, name="crashy")
    write(tmp_path / "kb", "x.crash", "data")
    domain = knowledge_domain('sources: [{path: kb, include: ["*.crash"]}]')
    (file,) = scan_sources(domain.manifest).files
    with pytest.raises(fourfold.KnowledgeError, match=r"x.crash: loader 'crashing' \(plugin 'crashy'\) could not read it: RuntimeError: boom"):
        load_document(domain, file)
