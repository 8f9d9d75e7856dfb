"""Chunking by the real embedder's tokens: sizes, overlap, boundaries, ids, pages."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fourfold
from fourfold.knowledge import chunk_document, embedding_header, text_for_embedding
from fourfold.manifest.models import Chunking

FILE = fourfold.SourceFile(path=Path("/kb/guides/asthma.md"), relpath="guides/asthma.md", size=1)
SENTENCES = [
    "Asthma is a chronic disease of the airways.",
    "It causes wheezing, breathlessness and coughing, often at night.",
    "Inhaled corticosteroids reduce the inflammation.",
    "Short-acting bronchodilators relieve symptoms within minutes!",
    "Does exercise help?",
    "Regular activity improves fitness; people with asthma should warm up first.",
    "Triggers include pollen, dust mites, cold air and smoke.",
]


def prose(n_sentences: int, offset: int = 0) -> str:
    return " ".join(SENTENCES[(offset + i) % len(SENTENCES)] + f" ({offset + i})" for i in range(n_sentences))


def doc(*sections: fourfold.Section, title: str = "Asthma") -> fourfold.LoadedDocument:
    return fourfold.LoadedDocument(title=title, sections=list(sections))


def tokens(embedder, text: str) -> int:
    return len(embedder.token_spans(text))


def chunk(document, embedder, max_tokens=64, overlap=8, **kw):
    return chunk_document(document, FILE, embedder=embedder, chunking=Chunking(max_tokens=max_tokens, overlap=overlap), **kw)


class TestSizes:
    @pytest.mark.parametrize("max_tokens, overlap", [(16, 0), (32, 8), (64, 16), (256, 32)])
    def test_every_chunk_fits_and_every_embedding_input_fits_the_model(self, minilm, max_tokens, overlap):
        text = "\n\n".join(prose(9, k) for k in range(6))
        chunks = chunk(doc(fourfold.Section(text, ("Asthma", "Living with asthma"))), minilm, max_tokens, overlap)
        assert len(chunks) > 1
        for c in chunks:
            assert tokens(minilm, c.text) <= max_tokens
            assert tokens(minilm, text_for_embedding(c)) + 2 <= minilm.max_tokens

    def test_the_header_takes_its_room_from_the_chunk_not_from_the_model(self, minilm):
        long_title = "A very long document title about asthma management in adults and children " * 3
        chunks = chunk(doc(fourfold.Section(prose(80), ("Section",)), title=long_title), minilm, max_tokens=256, overlap=0)
        assert max(tokens(minilm, text_for_embedding(c)) for c in chunks) + 2 <= minilm.max_tokens
        assert all(tokens(minilm, c.text) < 256 for c in chunks)

    def test_a_short_section_is_one_chunk_with_its_exact_text(self, minilm):
        (c,) = chunk(doc(fourfold.Section("  Asthma is common.  ", ("Asthma",))), minilm)
        assert c.text == "Asthma is common."

    def test_an_empty_document_has_no_chunks(self, minilm):
        assert chunk(doc(), minilm) == []
        assert chunk(doc(fourfold.Section("   \n  ")), minilm) == []


class TestBoundariesAndOverlap:
    def test_cuts_fall_on_sentence_ends_near_the_limit(self, minilm):
        chunks = chunk(doc(fourfold.Section(prose(40))), minilm, max_tokens=64, overlap=0)
        assert len(chunks) >= 5
        for c in chunks[:-1]:
            assert c.text.endswith(")") or c.text[-1] in ".!?", c.text
            assert tokens(minilm, c.text) >= 64 * 0.7 - 8  # not cut far too early

    def test_paragraph_breaks_win_over_sentence_ends(self, minilm):
        text = prose(5) + "\n\n" + prose(5, 5) + "\n\n" + prose(5, 10)
        chunks = chunk(doc(fourfold.Section(text)), minilm, max_tokens=tokens(minilm, prose(5)) + 12, overlap=0)
        assert [c.text for c in chunks] == [prose(5), prose(5, 5), prose(5, 10)]

    def test_consecutive_chunks_share_the_overlap(self, minilm):
        overlap = 12
        text = prose(30)
        chunks = chunk(doc(fourfold.Section(text)), minilm, max_tokens=48, overlap=overlap)
        assert len(chunks) > 3
        positions = [text.index(c.text) for c in chunks]
        assert positions == sorted(positions)
        for a, b, start_a, start_b in zip(chunks, chunks[1:], positions, positions[1:]):
            shared = text[start_b : start_a + len(a.text)]
            assert a.text.endswith(shared) and b.text.startswith(shared)
            assert overlap <= tokens(minilm, shared) <= overlap + 8  # grown only to start on a whole word
            assert text[start_b - 1] in " \n"  # chunks start on a word

    def test_chunks_are_cut_only_between_tokens_and_cover_the_text(self, minilm):
        text = "Pneumonoultramicroscopicsilicovolcanoconiosis" * 20 + " and then ordinary words follow here."
        chunks = chunk(doc(fourfold.Section(text)), minilm, max_tokens=32, overlap=4)
        spans = minilm.token_spans(text)
        starts, ends = {a for a, _ in spans}, {b for _, b in spans}
        covered = 0
        for c in chunks:
            at = text.index(c.text, max(0, covered - len(c.text)))
            assert at in starts and at + len(c.text) in ends
            assert at <= covered  # no gap between chunks
            covered = at + len(c.text)
            assert tokens(minilm, c.text) <= 32
        assert covered == len(text)


class TestIdentity:
    def test_chunks_carry_what_citations_need(self, minilm):
        chunks = chunk(
            doc(fourfold.Section(prose(20), ("Asthma", "Treatment"), page=3)), minilm, tags=["health", "lungs"]
        )
        assert len(chunks) > 1
        for i, c in enumerate(chunks):
            assert (c.source, c.title, c.heading, c.page, c.ordinal) == ("guides/asthma.md", "Asthma", "Asthma > Treatment", 3, i)
            assert (c.file_type, c.tags) == ("md", ("health", "lungs"))
            assert c.text_hash == fourfold.content_hash(c.text)
            assert c.id == fourfold.chunk_point_id(minilm.model_id, "guides/asthma.md", c.text_hash, 0)

    def test_the_same_input_gives_the_same_chunks(self, minilm):
        document = doc(fourfold.Section(prose(25), ("A",)), fourfold.Section(prose(12, 3), ("A", "B"), page=None))
        assert chunk(document, minilm) == chunk(document, minilm)

    def test_identical_chunks_in_one_document_get_distinct_ids(self, minilm):
        repeated = prose(6)
        chunks = chunk(
            doc(fourfold.Section(repeated, ("Q1",)), fourfold.Section(repeated, ("Q2",)), fourfold.Section(repeated, ("Q3",))),
            minilm,
            max_tokens=256,
        )
        assert [c.text for c in chunks] == [repeated] * 3
        assert len({c.text_hash for c in chunks}) == 1
        assert len({c.id for c in chunks}) == 3
        assert chunks[2].id == fourfold.chunk_point_id(minilm.model_id, FILE.relpath, chunks[0].text_hash, 2)

    def test_ids_change_with_the_source_path(self, minilm):
        document = doc(fourfold.Section(prose(3)))
        moved = fourfold.SourceFile(path=Path("/kb/other.md"), relpath="other.md", size=1)
        a = chunk(document, minilm)[0]
        b = chunk_document(document, moved, embedder=minilm, chunking=Chunking(max_tokens=64, overlap=8))[0]
        assert a.text_hash == b.text_hash and a.id != b.id


class TestPagesAndPacking:
    def test_chunks_never_span_pages(self, minilm):
        pages = [fourfold.Section(f"Page {n} says: " + prose(3, n), ("Guide",), page=n) for n in (1, 2, 3)]
        chunks = chunk(doc(*pages), minilm, max_tokens=256)
        assert [(c.page, c.text.split(" says")[0]) for c in chunks] == [(1, "Page 1"), (2, "Page 2"), (3, "Page 3")]

    def test_long_sections_split_within_their_page(self, minilm):
        chunks = chunk(doc(fourfold.Section(prose(30), ("G",), page=1), fourfold.Section(prose(30, 2), ("G",), page=2)), minilm)
        assert {c.page for c in chunks} == {1, 2}
        assert all(c.text in prose(30) for c in chunks if c.page == 1)

    def test_tiny_sibling_sections_are_packed_under_their_parent(self, minilm):
        chunks = chunk(
            doc(
                fourfold.Section("Asthma is a chronic disease of the airways.", ("Asthma", "What is it?")),
                fourfold.Section("About 1 in 12 people.", ("Asthma", "How common is it?")),
                fourfold.Section("It is not inherited in a simple pattern.", ("Asthma", "Is it inherited?")),
            ),
            minilm,
            max_tokens=128,
        )
        assert len(chunks) == 1
        assert chunks[0].heading == "Asthma"
        assert chunks[0].text == (
            "What is it?\nAsthma is a chronic disease of the airways.\n\n"
            "How common is it?\nAbout 1 in 12 people.\n\n"
            "Is it inherited?\nIt is not inherited in a simple pattern."
        )

    def test_sections_of_substance_keep_their_own_heading(self, minilm):
        chunks = chunk(
            doc(fourfold.Section(prose(6), ("Asthma", "Symptoms")), fourfold.Section(prose(6, 1), ("Asthma", "Treatment"))),
            minilm,
            max_tokens=256,
        )
        assert [c.heading for c in chunks] == ["Asthma > Symptoms", "Asthma > Treatment"]

    def test_tiny_sections_on_different_pages_or_branches_stay_apart(self, minilm):
        chunks = chunk(
            doc(
                fourfold.Section("One line.", ("A", "x"), page=1),
                fourfold.Section("Two line.", ("A", "y"), page=2),
                fourfold.Section("Three line.", ("B", "z", "deep"), page=2),
            ),
            minilm,
        )
        assert [c.heading for c in chunks] == ["A > x", "A > y", "B > z > deep"]


class TestEmbeddingText:
    def test_title_and_heading_lead_the_embedded_text(self):
        c = fourfold.Chunk(id="1", text="It is inherited.", source="a.md", title="Asthma", heading="Asthma > Causes > Genes")
        assert text_for_embedding(c) == "Asthma > Causes > Genes\n\nIt is inherited."
        other = fourfold.Chunk(id="2", text="Body.", source="b.md", title="Handbook", heading="Leave > Parental")
        assert text_for_embedding(other) == "Handbook > Leave > Parental\n\nBody."
        bare = fourfold.Chunk(id="3", text="Body.", source="c.md", title="", heading="")
        assert text_for_embedding(bare) == "Body."

    def test_the_header_stays_short(self):
        header = embedding_header("T" * 500, " > ".join(f"Heading {i}" for i in range(60)))
        assert len(header) < 320
        assert header.endswith("Heading 59")  # the deepest heading is kept


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    paragraphs=st.lists(
        st.lists(st.sampled_from(SENTENCES + ["Dose:", "5 mg/kg,", "e.g.", "naïve café", "x" * 20, "—", "1.2.3"]), min_size=1, max_size=30),
        min_size=1,
        max_size=6,
    ),
    max_tokens=st.integers(16, 96),
    overlap_fraction=st.floats(0, 0.45),
)
def test_chunking_properties_hold_for_any_text(minilm, paragraphs, max_tokens, overlap_fraction):
    overlap = int(max_tokens * overlap_fraction)
    # numbered words make every chunk's place in the text unambiguous
    text = "\n\n".join(" ".join(f"{w} {p}.{i}" for i, w in enumerate(words)) for p, words in enumerate(paragraphs))
    document = doc(fourfold.Section(text, ("P",), page=2))
    chunks = chunk(document, minilm, max_tokens=max_tokens, overlap=overlap)
    assert chunks == chunk(document, minilm, max_tokens=max_tokens, overlap=overlap)
    assert len({c.id for c in chunks}) == len(chunks)
    covered = 0
    for c in chunks:
        assert c.text and c.text == c.text.strip() and c.page == 2
        assert tokens(minilm, c.text) <= max_tokens
        at = text.find(c.text, max(0, covered - len(c.text)))
        assert 0 <= at <= covered + 2  # chunks follow each other without gaps (but whitespace)
        covered = max(covered, at + len(c.text))
    assert text[covered:].strip() == ""
