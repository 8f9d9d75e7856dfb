"""What a loader says reaches the index and the user: several records per file, each
with its own title, url and metadata in chunks, filters and citations; its warnings in
the refresh report, the CLI and index status; per-source settings from the manifest; a
new loader version re-reads exactly its files; a refresh that changed nothing publishes
nothing, broken files included."""

from __future__ import annotations

import json
import types

import pytest
from pydantic import Field
from typer.testing import CliRunner

import fourfold
from fourfold.cli import app
from fourfold.domain import Domain
from fourfold.index import IndexLayout, refresh
from fourfold.testing import HashingEmbedder


class RowsLoader(fourfold.Loader):
    """One record per line ``question | answer | url``; a line without ``|`` is a warning."""

    name = "rows"
    extensions = ("rows",)
    version = "1"

    class Config(fourfold.ComponentConfig):
        topic: str = Field("general", description="Stored on every record as metadata 'topic'.")

    def load(self, file):
        records, warnings = [], []
        for number, line in enumerate(file.path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split("|")]
            if len(parts) != 3:
                warnings.append(f"line {number}: expected 'question | answer | url'; skipped")
                continue
            question, answer, url = parts
            records.append(
                fourfold.LoadedDocument(
                    title=question,
                    sections=[fourfold.Section(answer)],
                    metadata={"url": url, "topic": self.config.topic, "line": number},
                )
            )
        if records and warnings:
            records[0].metadata["warnings"] = warnings
        return records


@fourfold.hookimpl
def register_loaders(register):
    register(RowsLoader)


@fourfold.hookimpl
def register_embedders(register):
    register(HashingEmbedder)  # deterministic across processes, unlike the toy embedder


ROWS = (
    "How often are kittens fed? | Kittens need four small meals of wet food a day. | https://pets.example/kittens\n"
    "this line is broken\n"
    "How often are adult cats fed? | Adult cats are fed twice a day. | https://pets.example/cats\n"
)

MANIFEST = """
fourfold: 1
domain: rows
title: Rows
knowledge:
  sources:
    - path: faq
      include: ["*.rows"]
      loaders: {rows: {topic: pets}}
    - path: docs
embedding: {use: hashing}
retrieval: {use: bm25, with: {top_k: 3}}
generation: {use: extractive}
"""


@pytest.fixture
def rows_domain(host, write_manifest, tmp_path):
    plugin = types.ModuleType("fourfold_rows")
    plugin.FOURFOLD_PLUGIN_API = "1.1"
    plugin.register_loaders = register_loaders
    embedders = types.ModuleType("fourfold_hashing")
    embedders.FOURFOLD_PLUGIN_API = "1.1"
    embedders.register_embedders = register_embedders
    host.register(embedders, name="hashing", distribution="fourfold-hashing")
    host.register(plugin, name="rows", distribution="fourfold-rows")
    host.plugins["rows"].version = "0.1.0"
    (tmp_path / "faq").mkdir()
    (tmp_path / "faq" / "cats.rows").write_text(ROWS)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "dogs.md").write_text("# Dogs\n\nDogs need a walk twice daily.\n")
    return write_manifest(MANIFEST)


def test_each_record_is_chunked_and_cited_with_its_title_url_and_metadata(rows_domain, host):
    domain = Domain.from_file(rows_domain, host)
    report = refresh(domain)
    assert report.published
    passages, _ = domain.search("how often are kittens fed", top_k=3)
    kitten = next(p.chunk for p in passages if "Kittens" in p.chunk.text)
    assert kitten.title == "How often are kittens fed?" and kitten.source == "faq/cats.rows"
    assert kitten.url == "https://pets.example/kittens"
    assert kitten.metadata == {"topic": "pets", "line": 1}
    # two records of one file: two chunks, never packed together
    assert not any("Kittens" in p.chunk.text and "Adult" in p.chunk.text for p in passages)

    # what an answer cites is built from the passages it was given
    cited = {c.url: c for c in fourfold.citations_for([1, 2], passages)}
    assert "https://pets.example/kittens" in cited
    assert cited["https://pets.example/kittens"].metadata["topic"] == "pets"
    assert cited["https://pets.example/kittens"].title == "How often are kittens fed?"


def test_metadata_filters_select_records(rows_domain, host):
    domain = Domain.from_file(rows_domain, host)
    refresh(domain)
    only = fourfold.SearchFilters(metadata=(("line", 3),))
    passages, _ = domain.search("how often are cats fed", top_k=5, filters=only)
    assert [p.chunk.url for p in passages] == ["https://pets.example/cats"]


def test_loader_warnings_reach_the_report_the_cli_and_index_status(rows_domain, host):
    built = CliRunner().invoke(app, ["index", "build", str(rows_domain)])
    assert built.exit_code == 0, built.output
    assert "warning: faq/cats.rows: line 2: expected 'question | answer | url'; skipped" in built.output

    status = CliRunner().invoke(app, ["index", "status", str(rows_domain), "--json"])
    assert "faq/cats.rows: line 2: expected 'question | answer | url'; skipped" in json.loads(status.stdout)["last_refresh"]["warnings"]
    shown = CliRunner().invoke(app, ["index", "status", str(rows_domain)], env={"COLUMNS": "200"})
    assert "warnings of the last refresh (1)" in shown.output and "line 2: expected" in shown.output

    again = CliRunner().invoke(app, ["index", "build", str(rows_domain), "--json"])
    assert json.loads(again.stdout)["published"] is False


def test_source_loader_settings_are_validated_with_file_line_and_path(rows_domain, host):
    rows_domain.write_text(MANIFEST.replace("{topic: pets}", "{topic: pets, colour: red}"))
    result = CliRunner().invoke(app, ["validate", str(rows_domain)])
    assert result.exit_code == 1
    line = next(n for n, text in enumerate(rows_domain.read_text().splitlines(), 1) if "colour" in text)
    assert f"{rows_domain}:{line}: knowledge.sources[0].loaders.rows.colour: unknown key 'colour' (expected one of: topic)" in result.output


def test_a_new_loader_version_rereads_only_its_files_and_says_so(rows_domain, host, monkeypatch):
    domain = Domain.from_file(rows_domain, host)
    refresh(domain)
    monkeypatch.setattr(RowsLoader, "version", "2")
    report = refresh(Domain.from_file(rows_domain, host))
    assert report.reread == {"faq/cats.rows": "loader 'rows' changed (version 1 → 2)"}
    assert report.unchanged == ["docs/dogs.md"] and not report.full
    assert "1 re-read" in report.summary()

    host.plugins["rows"].version = "0.2.0"  # the distribution was upgraded
    report = refresh(Domain.from_file(rows_domain, host))
    assert report.reread == {"faq/cats.rows": "loader 'rows' changed (plugin_version 0.1.0 → 0.2.0)"}
    assert not report.full and report.unchanged == ["docs/dogs.md"]

    rows_domain.write_text(MANIFEST.replace("topic: pets", "topic: animals"))
    report = refresh(Domain.from_file(rows_domain, host))
    assert list(report.reread) == ["faq/cats.rows"] and "config" in report.reread["faq/cats.rows"]
    passages, _ = Domain.from_file(rows_domain, host).search("kittens", top_k=1)
    assert passages[0].chunk.metadata["topic"] == "animals"


def test_a_broken_file_does_not_publish_a_new_version_each_time(rows_domain, host, tmp_path):
    domain = Domain.from_file(rows_domain, host)
    first = refresh(domain)
    (tmp_path / "docs" / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (tmp_path / "docs" / "dogs.md").write_text("# Dogs\n\nDogs need a walk twice daily.\n")  # touched, same bytes
    for _ in range(2):
        report = refresh(domain)
        assert not report.published, report.summary()
        assert report.version == first.version and report.reason.startswith("no change")
        assert any("broken.pdf" in w for w in report.warnings)
    assert IndexLayout.for_domain(domain).complete_versions() == [first.version]

    # a changed file whose new bytes cannot be read keeps its old text and publishes nothing
    (tmp_path / "faq" / "cats.rows").write_bytes(b"\xff\xfe not utf-8")
    report = refresh(domain)
    assert not report.published and "faq/cats.rows" in report.skipped
    assert IndexLayout.for_domain(domain).complete_versions() == [first.version]


def test_a_new_embedder_version_embeds_every_chunk_again_and_says_so(rows_domain, host, monkeypatch):
    rows_domain.write_text(MANIFEST.replace("use: bm25", "use: dense"))
    first = refresh(Domain.from_file(rows_domain, host))
    assert first.chunks_embedded == first.chunks_total > 0
    assert not refresh(Domain.from_file(rows_domain, host)).published  # nothing changed

    monkeypatch.setattr(HashingEmbedder, "version", "2")
    report = refresh(Domain.from_file(rows_domain, host))
    assert report.published and report.full
    assert report.reason == "embedder 'hashing' changed (version - → 2); every chunk is embedded again"
    assert report.chunks_embedded == report.chunks_total and report.chunks_from_cache == 0
