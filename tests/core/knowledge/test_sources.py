"""Sources other than folders, as the refresh sees them: listed with change markers,
downloaded only when read, failures named. A source kept in memory stands in for a
remote store here; the builtin s3 and web sources are tried against real servers in
tests/plugins/fourfold_sources."""

from __future__ import annotations

import hashlib
import io
import textwrap

import pytest

import fourfold
import fourfold_sources
from fourfold.index import IndexLayout, index_status, refresh
from fourfold.knowledge import scan_domain, scan_sources
from fourfold.testing import SourceContract

SHELVES: dict[str, dict] = {}


class MemorySource(fourfold.Source):
    """Documents held in SHELVES[shelf]: {"docs": {key: text}, "down": bool, "broken": set}."""

    name = "memory"

    class Config(fourfold.ComponentConfig):
        shelf: str

    @property
    def location(self) -> str:
        return f"shelf '{self.config.shelf}'"

    @property
    def shelf(self) -> dict:
        return SHELVES[self.config.shelf]

    def documents(self, previous, warn):
        if self.shelf.get("down"):
            raise ConnectionError("the shelf is closed")
        return [
            fourfold.SourceDocument(key, "sha256:" + hashlib.sha256(text.encode()).hexdigest(), len(text.encode()))
            for key, text in self.shelf["docs"].items()
        ]

    def open(self, document):
        self.shelf.setdefault("opened", []).append(document.key)
        if document.key in self.shelf.get("broken", ()):
            raise OSError("the page is torn")
        return io.BytesIO(self.shelf["docs"][document.key].encode())


class MemoryPlugin:
    FOURFOLD_PLUGIN_API = "1.3"

    @fourfold.hookimpl
    def register_sources(self, register):
        register(MemorySource)


@pytest.fixture
def shelf(register_plugin):
    register_plugin(MemoryPlugin(), name="memory-plugin")
    SHELVES["main"] = {
        "docs": {
            "cats.md": "# Cats\n\nAdult cats should be fed twice a day.\n",
            "dogs.md": "# Dogs\n\nDogs need a walk at least twice daily.\n",
            "tea/green.txt": "Green tea brews best with water at eighty degrees.\n",
        }
    }
    yield SHELVES["main"]
    SHELVES.clear()


def domain_for(tmp_path, sources: str, gate: str = "{min_chunks: 1}") -> fourfold.Domain:
    path = tmp_path / "domain.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            fourfold: 1
            domain: shelved
            title: Shelved knowledge
            knowledge:
              sources: {sources}
              chunking: {{max_tokens: 64, overlap: 8}}
              gate: {gate}
            retrieval: {{use: bm25}}
            """
        ).lstrip()
    )
    from fourfold.plugins import get_host

    return fourfold.Domain(fourfold.load_manifest(path, get_host()), get_host())


def test_only_new_and_changed_documents_are_opened(tmp_path, shelf):
    domain = domain_for(tmp_path, "[{use: memory, with: {shelf: main}}]")
    first = refresh(domain)
    assert first.published and sorted(shelf.pop("opened")) == ["cats.md", "dogs.md", "tea/green.txt"]
    assert not refresh(domain).published and "opened" not in shelf
    shelf["docs"]["cats.md"] = "# Cats\n\nKittens eat four small meals a day.\n"
    del shelf["docs"]["dogs.md"]
    report = refresh(domain)
    assert shelf["opened"] == ["cats.md"] and report.changed == ["cats.md"] and report.removed == ["dogs.md"]
    cache = domain.state_dir / "sources" / "0-memory"
    assert sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file()) == ["cats.md", "tea/green.txt"]
    assert IndexLayout.for_domain(domain).read_catalog(report.version).documents["cats.md"].hash.startswith("sha256:")


def test_a_source_that_cannot_be_listed_is_named_and_nothing_is_published(tmp_path, shelf):
    domain = domain_for(tmp_path, "[{use: memory, with: {shelf: main}}]")
    published = refresh(domain).version
    shelf["down"] = True
    with pytest.raises(fourfold.KnowledgeError) as caught:
        refresh(domain)
    assert str(caught.value).endswith(
        "knowledge.sources[0]: source 'memory' (shelf 'main') could not be listed: ConnectionError: the shelf is closed; "
        "the published index is unchanged"
    )
    assert index_status(domain).published == published and index_status(domain).documents == 3


def test_a_document_whose_bytes_cannot_be_had_keeps_what_it_said(tmp_path, shelf):
    domain = domain_for(tmp_path, "[{use: memory, with: {shelf: main}}]")
    refresh(domain)
    shelf["docs"]["cats.md"] += "Water should always be available.\n"
    shelf["docs"]["birds.md"] = "# Birds\n\nParrots need company.\n"
    shelf["broken"] = {"cats.md"}
    report = refresh(domain)
    assert report.added == ["birds.md"] and report.changed == [] and report.skipped == ["cats.md"]
    assert any(w.startswith("cats.md: ") and "knowledge.sources[0]: source 'memory' (shelf 'main') could not give its bytes: "
               "OSError: the page is torn; kept the previous version of cats.md" in w for w in report.warnings), report.warnings
    shelf["broken"] = set()
    assert refresh(domain).changed == ["cats.md"]  # its old marker makes the next refresh try again


def test_keys_that_leave_the_cache_are_skipped(tmp_path, shelf):
    shelf["docs"]["../../escape.md"] = "# Out\n"
    shelf["docs"]["/etc/abs.md"] = "# Abs\n"
    domain = domain_for(tmp_path, "[{use: memory, with: {shelf: main}}]")
    scan = scan_domain(domain)
    assert sorted(f.relpath for f in scan.files) == ["cats.md", "dogs.md", "tea/green.txt"]
    assert sum("skipped" in w and ("escape.md" in w or "abs.md" in w) for w in scan.warnings) == 2


def test_folders_and_other_sources_side_by_side(tmp_path, shelf):
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "cats.md").write_text("# Cats\n\nA folder's cat.\n")
    domain = domain_for(tmp_path, "[{path: kb}, {use: memory, with: {shelf: main}, tags: [shelf]}]")
    scan = scan_domain(domain)
    assert [f.relpath for f in scan.files] == ["kb/cats.md", "memory/cats.md", "memory/dogs.md", "memory/tea/green.txt"]
    assert scan.markers.keys() == {"memory/cats.md", "memory/dogs.md", "memory/tea/green.txt"}
    assert scan.tags["memory/dogs.md"] == ("shelf",)
    assert [f.relpath for f in scan_sources(domain.manifest).files] == ["kb/cats.md"]  # folders only, without a domain
    report = refresh(domain)
    assert sorted(report.added) == ["kb/cats.md", "memory/cats.md", "memory/dogs.md", "memory/tea/green.txt"]


def test_use_folder_is_the_path_form(tmp_path):
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "cats.md").write_text("# Cats\n\nFed twice a day.\n")
    (kb / "notes.txt").write_text("Not included.\n")
    by_path = domain_for(tmp_path, "[{path: kb, include: ['**/*.md']}]")
    by_name = domain_for(tmp_path, "[{use: folder, with: {path: kb, include: ['**/*.md']}}]")
    assert by_path.manifest.knowledge.sources == by_name.manifest.knowledge.sources
    assert by_path.manifest.knowledge.sources[0].identity() == {
        "path": "kb", "include": ["**/*.md"], "exclude": [], "tags": [], "prefix": None
    }  # what index signatures held before sources were components: existing indexes are not rebuilt
    report = refresh(by_name)
    assert report.added == ["cats.md"]
    assert len(IndexLayout.for_domain(by_name).read_catalog(report.version).documents["cats.md"].hash) == 64


class TestFolderSource(SourceContract):
    component_class = fourfold.FolderSource
    plugin = fourfold_sources

    @pytest.fixture
    def component_config(self, tmp_path):
        self.kb = tmp_path / "domain" / "kb"
        (self.kb / "guides").mkdir(parents=True)
        (self.kb / "cats.md").write_text("# Cats\n\nFed twice a day.\n")
        (self.kb / "guides" / "tea.txt").write_text("Green tea at eighty degrees.\n")
        return {"path": "kb"}

    @pytest.fixture
    def change_document(self):
        return lambda d: (self.kb / d.key).write_text("Changed.\n")

    @pytest.fixture
    def remove_document(self):
        return lambda d: (self.kb / d.key).unlink()


def test_the_manifest_schema_knows_each_source(tmp_path):
    import jsonschema

    from fourfold.manifest.schema import manifest_json_schema
    from fourfold.plugins import get_host

    schema = manifest_json_schema(get_host())
    base = {"fourfold": 1, "domain": "kb", "title": "KB"}

    def valid(sources) -> bool:
        return jsonschema.Draft202012Validator(schema).is_valid({**base, "knowledge": {"sources": sources}})

    assert valid([{"path": "kb", "include": ["*.md"], "tags": ["a"]}])
    assert valid([{"use": "s3", "with": {"bucket": "docs", "prefix": "kb/"}, "prefix": "kb"}])
    assert valid([{"use": "web", "with": {"sitemap": "https://example.org/sitemap.xml"}}])
    assert not valid([{"use": "s3", "with": {"bucket": "docs", "buckit": "x"}}])
    assert not valid([{"use": "no-such-source"}])
