"""The retriever contract: its index store round-trips chunks through index versions,
and ``search`` honours ``top_k``, ``filters`` and score order."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from fourfold.components import Embedder, IndexStore, Retriever, VersionReader
from fourfold.testing.base import ComponentContract, call, expect, label, type_name
from fourfold.testing.corpus import sample_chunks
from fourfold.types import Chunk, Passage, SearchFilters

__all__ = ["RetrieverContract", "build_version"]

# One distinctive word from every sample chunk: a query every chunk matches.
_EVERYTHING_QUERY = "cats brush dogs puppies goldfish green black espresso store bicycle tyres kettle"


def build_version(retriever: Retriever, embedder: Embedder, location: Path, chunks: list[Chunk]) -> VersionReader:
    """Index ``chunks`` into a new committed version at ``location`` the way fourfold's
    lifecycle does (vectors only when the store needs them) and open it for reading."""
    __tracebackhide__ = True
    store: IndexStore = call(retriever, "open_store", fix="return the retriever's fourfold.IndexStore")
    writer = call(store, "create_version", location, None, fix="create_version(location, base) must start a new version")
    vectors = embedder.embed_documents([c.text for c in chunks]) if store.needs_vectors and chunks else None
    if chunks:
        call(writer, "upsert", chunks, vectors, fix="upsert(chunks, vectors) must store the chunks")
    call(writer, "commit", fix="commit() must finish the version")
    return call(store, "open_version", location, fix="open_version(location) must open a committed version")


class RetrieverContract(ComponentContract):
    """Checks a :class:`fourfold.Retriever` and the :class:`fourfold.IndexStore` it opens.

    The contract indexes a small sample knowledge base (:data:`fourfold.testing.SAMPLE_DOCUMENTS`)
    with the ``embedder`` fixture (the domain's embedder: a
    :class:`~fourfold.testing.HashingEmbedder` unless you override it) and searches it. Set ``config`` to the ``with:`` block to test; it must
    allow ``top_k`` of at least 3.
    """

    kind = "retriever"
    config: dict[str, Any] = {"top_k": 3}

    @pytest.fixture
    def chunks(self, embedder: Embedder) -> list[Chunk]:
        return sample_chunks(embedder.model_id)

    @pytest.fixture
    def reader(self, component, embedder, chunks, tmp_path):
        """The sample knowledge base, indexed in a committed version and opened."""
        reader = build_version(component, embedder, tmp_path / "versions" / "v000001", chunks)
        yield reader
        reader.close()

    def search(self, component: Retriever, reader: VersionReader, query: str, **kwargs: Any) -> list[Passage]:
        __tracebackhide__ = True
        found = call(component, "search", reader, query, fix="search() must return a list of fourfold.Passage, best first", **kwargs)
        expect(
            isinstance(found, list),
            f"{label(component)}: search() returned {type_name(found)}; return a list of fourfold.Passage (an empty list when nothing matches)",
        )
        for p in found:
            expect(
                isinstance(p, Passage),
                f"{label(component)}: search() returned a list containing {type_name(p)}; return fourfold.Passage(chunk=..., score=...) items",
            )
            expect(isinstance(p.chunk, Chunk), f"{label(component)}: a Passage's chunk is {type_name(p.chunk)}; use the fourfold.Chunk you indexed")
            expect(
                isinstance(p.score, (int, float)) and math.isfinite(float(p.score)),
                f"{label(component)}: passage {p.chunk.id} has score {p.score!r}; scores must be finite floats, higher is better",
            )
        return found

    # -- the index store ------------------------------------------------------------

    def test_store_has_an_id(self, component):
        store = call(component, "open_store", fix="return the retriever's fourfold.IndexStore")
        expect(isinstance(store, IndexStore), f"{label(component)}: open_store() returned {type_name(store)}; return a fourfold.IndexStore")
        expect(
            isinstance(store.store_id, str) and store.store_id,
            f"{label(component)}: the store's store_id is {store.store_id!r}; return a non-empty string naming its on-disk layout",
        )

    def test_a_version_round_trips_chunks(self, component, reader, chunks):
        expect(
            call(reader, "count", fix="count() returns the chunks in the version") == len(chunks),
            f"{label(component)}: after indexing {len(chunks)} chunks the version counts {reader.count()}; count() must return the chunks stored",
        )
        stored = {c.id: c for c in call(reader, "chunks", fix="chunks() yields every chunk")}
        expect(
            set(stored) == {c.id for c in chunks},
            f"{label(component)}: chunks() yielded {len(stored)} of the {len(chunks)} chunks indexed; yield every chunk, with its id",
        )
        for c in chunks:
            expect(
                stored[c.id] == c,
                f"{label(component)}: chunk {c.id} came back as {stored[c.id]!r}, indexed as {c!r}; store every Chunk field (use Chunk.payload() / Chunk.from_payload())",
            )

    def test_url_and_metadata_round_trip(self, component, reader, chunks):
        stored = {c.id: c for c in call(reader, "chunks", fix="chunks() yields every chunk")}
        for c in chunks:
            if c.url is None and not c.metadata:
                continue
            back = stored.get(c.id)
            expect(
                back is not None and back.url == c.url and back.metadata == c.metadata,
                f"{label(component)}: chunk {c.id} was indexed with url={c.url!r} metadata={c.metadata!r} and came back with "
                f"url={getattr(back, 'url', None)!r} metadata={getattr(back, 'metadata', None)!r}; store the whole chunk "
                "(Chunk.payload() / Chunk.from_payload()) so citations keep a record's link and metadata",
            )
        for p in self.search(component, reader, "tea coffee espresso caffeine brewing storage", top_k=5):
            original = next(c for c in chunks if c.id == p.chunk.id)
            expect(
                (p.chunk.url, p.chunk.metadata) == (original.url, original.metadata),
                f"{label(component)}: search() returned chunk {p.chunk.id} with url={p.chunk.url!r} metadata={p.chunk.metadata!r}, "
                f"indexed with url={original.url!r} metadata={original.metadata!r}; return the stored chunk whole",
            )

    def test_a_new_version_starts_from_its_base(self, component, embedder, chunks, tmp_path):
        store = component.open_store()
        first = build_version(component, embedder, tmp_path / "v1", chunks)
        first.close()
        writer = call(store, "create_version", tmp_path / "v2", tmp_path / "v1", fix="create_version(location, base) starts as a copy of base")
        expect(
            writer.count() == len(chunks),
            f"{label(component)}: a version created from a base with {len(chunks)} chunks starts with {writer.count()}; copy the base so a refresh only applies the change",
        )
        unknown = "00000000-0000-5000-8000-000000000000"  # well-formed, like every chunk id, but never indexed
        call(writer, "delete", [chunks[0].id, unknown], fix="delete(ids) removes chunks and ignores unknown ids")
        call(writer, "commit", fix="commit() must finish the version")
        second = store.open_version(tmp_path / "v2")
        ids = {c.id for c in second.chunks()}
        second.close()
        expect(chunks[0].id not in ids, f"{label(component)}: a deleted chunk is still in the committed version; delete(ids) must remove it")
        expect(len(ids) == len(chunks) - 1, f"{label(component)}: after deleting 1 of {len(chunks)} chunks the version has {len(ids)}")
        again = store.open_version(tmp_path / "v1")
        expect(again.count() == len(chunks), f"{label(component)}: building v2 from v1 changed v1 (now {again.count()} chunks); versions must be immutable once committed")
        again.close()

    def test_search_on_an_empty_version_returns_nothing(self, component, embedder, tmp_path):
        reader = build_version(component, embedder, tmp_path / "empty", [])
        found = self.search(component, reader, "anything at all")
        reader.close()
        expect(found == [], f"{label(component)}: search() on an empty version returned {len(found)} passages; return []")

    # -- search ---------------------------------------------------------------------

    @pytest.mark.parametrize("top_k", [1, 3])
    def test_top_k_is_honoured(self, component, reader, top_k):
        found = self.search(component, reader, _EVERYTHING_QUERY, top_k=top_k)
        expect(
            len(found) <= top_k,
            f"{label(component)}: search() returned {len(found)} passages with top_k={top_k}: return at most top_k",
        )
        expect(
            len(found) == top_k,
            f"{label(component)}: search() returned {len(found)} passages with top_k={top_k} although every indexed chunk matches the query: return the top_k best",
        )

    def test_default_top_k_comes_from_the_config(self, component, reader):
        configured = getattr(component.config, "top_k", None)
        if configured is None:
            pytest.skip("the retriever's Config has no top_k")
        found = self.search(component, reader, _EVERYTHING_QUERY)
        expect(
            len(found) <= configured,
            f"{label(component)}: search() without top_k returned {len(found)} passages but config.top_k is {configured}: use config.top_k when top_k is None",
        )

    @pytest.mark.parametrize(
        ("query", "top_k", "filters"),
        [
            (_EVERYTHING_QUERY, 5, None),
            ("How often should adult cats be fed each day?", 3, None),
            ("coffee beans pressure espresso", 4, None),
            ("tea coffee caffeine", 3, SearchFilters(source_prefix="faq/")),
            ("bicycle tyres pressure kettle", 10, SearchFilters(tags=("tools",))),
        ],
        ids=["everything", "cats", "coffee", "filtered", "many"],
    )
    def test_scores_descend(self, component, reader, query, top_k, filters):
        found = self.search(component, reader, query, top_k=top_k, filters=filters)
        scores = [float(p.score) for p in found]
        expect(
            scores == sorted(scores, reverse=True),
            f"{label(component)}: search({query!r}) returned scores {scores}: return the best passage first, scores descending "
            "(a retriever that re-orders another's results must give each passage its new score, not keep the old one)",
        )
        ids = [p.chunk.id for p in found]
        expect(len(set(ids)) == len(ids), f"{label(component)}: search() returned the same chunk twice: {ids}; return each chunk at most once")

    def test_finds_the_passage_that_answers(self, component, reader, chunks):
        found = self.search(component, reader, "How often should adult cats be fed each day?", top_k=3)
        expected = chunks[0]
        expect(
            any(p.chunk.id == expected.id for p in found),
            f"{label(component)}: searching 'How often should adult cats be fed each day?' did not return the passage "
            f"{expected.source} '{expected.text[:40]}…' in the top 3 (got {[p.chunk.source for p in found]}); rank passages by relevance",
        )

    def test_passages_carry_the_indexed_chunk(self, component, reader, chunks):
        by_id = {c.id: c for c in chunks}
        for p in self.search(component, reader, _EVERYTHING_QUERY, top_k=5):
            expect(p.chunk.id in by_id, f"{label(component)}: search() returned chunk id {p.chunk.id!r}, which was never indexed")
            expect(
                p.chunk == by_id[p.chunk.id],
                f"{label(component)}: search() returned {p.chunk!r} for a chunk indexed as {by_id[p.chunk.id]!r}; citations need every field (source, title, heading, page, tags)",
            )

    @pytest.mark.parametrize(
        ("filters", "query"),
        [
            (SearchFilters(source_prefix="faq/"), "coffee tea cats bicycle"),
            (SearchFilters(file_types=("pdf",)), "coffee tea cats bicycle kettle"),
            (SearchFilters(tags=("health",)), "caffeine vaccines cats coffee"),
            (SearchFilters(source_prefix="guides/", tags=("health",)), "caffeine vaccines puppies"),
            (SearchFilters(metadata=(("topic", "tea"),)), "tea coffee caffeine espresso"),
            (SearchFilters(metadata=(("authors", "bo"), ("topic", "coffee"))), "tea coffee caffeine espresso"),
        ],
        ids=["source_prefix", "file_types", "tags", "prefix-and-tags", "metadata", "metadata-list"],
    )
    def test_filters_are_honoured(self, component, reader, chunks, filters, query):
        found = self.search(component, reader, query, top_k=10, filters=filters)
        for p in found:
            expect(
                filters.matches(p.chunk),
                f"{label(component)}: search() with {filters} returned {p.chunk.source} (tags {list(p.chunk.tags)}, type {p.chunk.file_type}, "
                f"metadata {p.chunk.metadata}); "
                "return only chunks for which filters.matches(chunk) is true",
            )
        matching = [c for c in chunks if filters.matches(c)]
        expect(
            found,
            f"{label(component)}: search() with {filters} returned nothing although {len(matching)} indexed chunks match it and the query; "
            "apply filters to the candidates, not after cutting to top_k",
        )

    def test_search_is_deterministic(self, component, reader):
        first = [(p.chunk.id, round(float(p.score), 6)) for p in self.search(component, reader, "coffee beans pressure", top_k=3)]
        second = [(p.chunk.id, round(float(p.score), 6)) for p in self.search(component, reader, "coffee beans pressure", top_k=3)]
        expect(first == second, f"{label(component)}: the same search gave {first} then {second}; searching the same version twice must give the same passages")
